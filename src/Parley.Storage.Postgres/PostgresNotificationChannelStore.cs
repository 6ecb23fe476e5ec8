using System.Collections.Immutable;
using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>Notification channels and their subscriptions (docs/notifications.md "Several nodes"); subscriptions go with their channel (ON DELETE CASCADE).</summary>
public sealed class PostgresNotificationChannelStore : INotificationChannelStore
{
    readonly PostgresDatabase _db;

    internal PostgresNotificationChannelStore(PostgresDatabase db) => _db = db;

    // One row per channel; its topics ordered, as one array (empty when it has none).
    const string Select = "SELECT c.id, c.client_id, c.user_id, c.expires, " +
        "COALESCE((SELECT array_agg(s.topic ORDER BY s.topic) FROM notification_subscriptions s WHERE s.channel_id = c.id), '{}') " +
        "FROM notification_channels c ";

    static NotificationChannelState Read(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), Time(r.GetInt64(3)), [.. r.GetFieldValue<string[]>(4)]);

    public Task CreateAsync(string id, string clientId, string? userId, DateTimeOffset expires, CancellationToken ct) =>
        _db.ExecuteAsync("INSERT INTO notification_channels (id, client_id, user_id, expires) VALUES ($1, $2, $3, $4)", ct,
            Text(id), Text(clientId), Text(userId), Int8(Ms(expires)));

    public Task<NotificationChannelState?> GetAsync(string id, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync(Select + "WHERE c.id = $1", Read, c, Text(id))).FirstOrDefault(), ct);

    public Task<IReadOnlyList<NotificationChannelState>> ListByClientAsync(string clientId, DateTimeOffset now, CancellationToken ct) =>
        _db.ReadAsync<IReadOnlyList<NotificationChannelState>>(async c =>
            await _db.ListAsync(Select + "WHERE c.client_id = $1 AND c.expires > $2 ORDER BY c.expires, c.id", Read, c, Text(clientId), Int8(Ms(now))), ct);

    public Task<IReadOnlyList<NotificationChannelState>> ListByUserAsync(string userId, DateTimeOffset now, CancellationToken ct) =>
        _db.ReadAsync<IReadOnlyList<NotificationChannelState>>(async c =>
            await _db.ListAsync(Select + "WHERE c.user_id = $1 AND c.expires > $2 ORDER BY c.expires, c.id", Read, c, Text(userId), Int8(Ms(now))), ct);

    /// <summary>One transaction: the expiry (whose row lock orders concurrent changes to the channel), the topics, the result.</summary>
    public Task<NotificationChannelState?> SubscribeAsync(string id, IReadOnlyCollection<string> topics, bool replace, DateTimeOffset expires,
        CancellationToken ct) => _db.WriteAsync(async c =>
    {
        await using var connection = await _db.Source.OpenConnectionAsync(c);
        await using var tx = await connection.BeginTransactionAsync(c);
        await using (var update = new NpgsqlCommand("UPDATE notification_channels SET expires = $1 WHERE id = $2", connection, tx))
        {
            update.Parameters.Add(Int8(Ms(expires)));
            update.Parameters.Add(Text(id));
            if (await update.ExecuteNonQueryAsync(c) == 0) return null;
        }
        if (replace)
        {
            await using var clear = new NpgsqlCommand("DELETE FROM notification_subscriptions WHERE channel_id = $1", connection, tx);
            clear.Parameters.Add(Text(id));
            await clear.ExecuteNonQueryAsync(c);
        }
        if (topics.Count > 0)
        {
            await using var add = new NpgsqlCommand(
                "INSERT INTO notification_subscriptions (channel_id, topic) SELECT $1, unnest($2) ON CONFLICT DO NOTHING", connection, tx);
            add.Parameters.Add(Text(id));
            add.Parameters.Add(TextArray([.. topics]));
            await add.ExecuteNonQueryAsync(c);
        }
        NotificationChannelState? after;
        await using (var read = new NpgsqlCommand(Select + "WHERE c.id = $1", connection, tx))
        {
            read.Parameters.Add(Text(id));
            await using var r = await read.ExecuteReaderAsync(c);
            after = await r.ReadAsync(c) ? Read(r) : null;
        }
        await tx.CommitAsync(c);
        return after;
    }, ct);

    public async Task<bool> DeleteAsync(string id, CancellationToken ct) =>
        await _db.ExecuteAsync("DELETE FROM notification_channels WHERE id = $1", ct, Text(id)) == 1;

    public Task<int> DeleteExpiredAsync(DateTimeOffset now, CancellationToken ct) =>
        _db.ExecuteAsync("DELETE FROM notification_channels WHERE expires <= $1", ct, Int8(Ms(now)));
}
