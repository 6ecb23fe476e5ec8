using System.Collections.Immutable;

namespace Parley.Storage.Sqlite;

/// <summary>Notification channels and their subscriptions (docs/notifications.md "Several nodes").</summary>
sealed class SqliteNotificationChannelStore(SqliteDatabase db) : INotificationChannelStore
{
    public Task CreateAsync(string id, string clientId, string? userId, DateTimeOffset expires, CancellationToken ct) =>
        db.WriteAsync("INSERT INTO notification_channels (id, client_id, user_id, expires) VALUES ($id, $client, $user, $expires)", ct,
            ("$id", id), ("$client", clientId), ("$user", userId), ("$expires", Ms(expires)));

    public async Task<NotificationChannelState?> GetAsync(string id, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        return (await ReadAsync(c, "WHERE id = $v", ct, ("$v", id))).FirstOrDefault();
    }

    public async Task<IReadOnlyList<NotificationChannelState>> ListByClientAsync(string clientId, DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        return await ReadAsync(c, "WHERE client_id = $v AND expires > $now ORDER BY expires, id", ct, ("$v", clientId), ("$now", Ms(now)));
    }

    public async Task<IReadOnlyList<NotificationChannelState>> ListByUserAsync(string userId, DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        return await ReadAsync(c, "WHERE user_id = $v AND expires > $now ORDER BY expires, id", ct, ("$v", userId), ("$now", Ms(now)));
    }

    static async Task<List<NotificationChannelState>> ReadAsync(SqliteConnection c, string where, CancellationToken ct, params (string, object?)[] args)
    {
        var rows = new List<(string Id, string Client, string? User, long Expires)>();
        await using (var cmd = Command(c, "SELECT id, client_id, user_id, expires FROM notification_channels " + where, args))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) rows.Add((r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetInt64(3)));
        var list = new List<NotificationChannelState>(rows.Count);
        foreach (var (id, client, user, expires) in rows)
        {
            await using var topics = Command(c, TopicsSql, ("$id", id));
            list.Add(new NotificationChannelState(id, client, user, Time(expires), await TopicsAsync(topics, ct)));
        }
        return list;
    }

    const string TopicsSql = "SELECT topic FROM notification_subscriptions WHERE channel_id = $id ORDER BY topic";

    static async Task<ImmutableArray<string>> TopicsAsync(SqliteCommand cmd, CancellationToken ct)
    {
        var topics = ImmutableArray.CreateBuilder<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) topics.Add(r.GetString(0));
        return topics.ToImmutable();
    }

    public Task<NotificationChannelState?> SubscribeAsync(string id, IReadOnlyCollection<string> topics, bool replace, DateTimeOffset expires,
        CancellationToken ct) => db.WriteAsync<NotificationChannelState?>(async tx =>
    {
        string client;
        string? user;
        await using (var update = Command(tx, "UPDATE notification_channels SET expires = $expires WHERE id = $id RETURNING client_id, user_id",
            ("$id", id), ("$expires", Ms(expires))))
        await using (var owner = await update.ExecuteReaderAsync(CancellationToken.None))
        {
            if (!await owner.ReadAsync(CancellationToken.None)) return null;
            client = owner.GetString(0);
            user = owner.IsDBNull(1) ? null : owner.GetString(1);
        }
        if (replace)
        {
            await using var clear = Command(tx, "DELETE FROM notification_subscriptions WHERE channel_id = $id", ("$id", id));
            await clear.ExecuteNonQueryAsync(CancellationToken.None);
        }
        foreach (var topic in topics)
        {
            await using var add = Command(tx, "INSERT OR IGNORE INTO notification_subscriptions (channel_id, topic) VALUES ($id, $topic)",
                ("$id", id), ("$topic", topic));
            await add.ExecuteNonQueryAsync(CancellationToken.None);
        }
        await using var read = Command(tx, TopicsSql, ("$id", id));
        return new NotificationChannelState(id, client, user, expires, await TopicsAsync(read, CancellationToken.None));
    }, ct);

    public Task<bool> DeleteAsync(string id, CancellationToken ct) => db.WriteAsync(async tx =>
    {
        await using (var subs = Command(tx, "DELETE FROM notification_subscriptions WHERE channel_id = $id", ("$id", id)))
            await subs.ExecuteNonQueryAsync(CancellationToken.None);
        await using var channel = Command(tx, "DELETE FROM notification_channels WHERE id = $id", ("$id", id));
        return await channel.ExecuteNonQueryAsync(CancellationToken.None) == 1;
    }, ct);

    public Task<int> DeleteExpiredAsync(DateTimeOffset now, CancellationToken ct) => db.WriteAsync(async tx =>
    {
        await using (var subs = Command(tx, "DELETE FROM notification_subscriptions WHERE channel_id IN " +
            "(SELECT id FROM notification_channels WHERE expires <= $now)", ("$now", Ms(now))))
            await subs.ExecuteNonQueryAsync(CancellationToken.None);
        await using var channels = Command(tx, "DELETE FROM notification_channels WHERE expires <= $now", ("$now", Ms(now)));
        return await channels.ExecuteNonQueryAsync(CancellationToken.None);
    }, ct);
}
