using System.Text.Json;

namespace Parley.Storage.Sqlite;

/// <summary>
/// The webhook outbox: its rows are written by the conversation commit; the relay leases, sends and marks them here. A
/// lease records its owner, <paramref name="nodeId"/>: this store frees only its own at start, and counts other owners'
/// unexpired leases against a destination's cap.
/// </summary>
sealed class SqliteOutbox(SqliteDatabase db, string nodeId) : IOutbox
{
    internal const string DeliveryColumns =
        "id, destination, message_id, conversation_id, body, due_at, state, attempts, last_status, last_error, created_at, delivered_at";

    internal static OutboxDelivery ReadDelivery(SqliteDataReader r) => new(
        new OutboxItem(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), (byte[])r.GetValue(4), Time(r.GetInt64(5))),
        Parse<DeliveryState>(r.GetString(6)), r.GetInt32(7), r.IsDBNull(8) ? null : r.GetInt32(8), StringOrNull(r, 9),
        Time(r.GetInt64(10)), TimeOrNull(r, 11));

    /// <summary>A conversation's deliveries go one at a time, oldest first: only its oldest pending one may be leased.</summary>
    const string HeadOfConversation =
        "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.conversation_id = o.conversation_id AND e.state = 'Pending' AND e.rowid < o.rowid)";

    public Task<IReadOnlyList<OutboxDelivery>> LeaseDueAsync(DateTimeOffset now, TimeSpan lease, int max, int perDestination,
        IReadOnlyDictionary<string, int> inFlight, CancellationToken ct) =>
        db.WriteAsync<IReadOnlyList<OutboxDelivery>>(async tx =>
        {
            var list = new List<OutboxDelivery>();
            await using var cmd = Command(tx,
                "UPDATE outbox SET lease_until = $lease, lease_owner = $owner WHERE id IN (SELECT id FROM (" +
                "SELECT o.id, o.due_at, o.destination, ROW_NUMBER() OVER (PARTITION BY o.destination ORDER BY o.due_at) AS n FROM outbox o " +
                "WHERE o.state = 'Pending' AND o.due_at <= $now AND (o.lease_until IS NULL OR o.lease_until <= $now) AND " + HeadOfConversation +
                ") AS c WHERE c.n <= $cap - COALESCE((SELECT value FROM json_each($inflight) WHERE key = c.destination), 0) " +
                // What other nodes hold leased (and not yet expired) to the destination counts against its cap too.
                "- (SELECT COUNT(*) FROM outbox b WHERE b.destination = c.destination AND b.state = 'Pending' AND b.lease_until > $now " +
                "AND b.lease_owner IS NOT $owner) " +
                $"ORDER BY c.due_at LIMIT $max) RETURNING {DeliveryColumns}",
                ("$lease", Ms(now + lease)), ("$now", Ms(now)), ("$max", max), ("$cap", perDestination),
                ("$inflight", JsonSerializer.Serialize(inFlight)), ("$owner", nodeId));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) list.Add(ReadDelivery(r));
            return list;
        }, ct);

    public Task MarkDeliveredAsync(string id, int status, DateTimeOffset at, CancellationToken ct) =>
        db.WriteAsync("UPDATE outbox SET state = 'Delivered', attempts = attempts + 1, last_status = $s, last_error = NULL, " +
            "delivered_at = $at, lease_until = NULL, lease_owner = NULL WHERE id = $id", ct, ("$s", status), ("$at", Ms(at)), ("$id", id));

    public Task MarkRetryAsync(string id, int attempts, DateTimeOffset dueAt, int? status, string error, CancellationToken ct) =>
        db.WriteAsync("UPDATE outbox SET attempts = $n, due_at = $due, last_status = $s, last_error = $e, lease_until = NULL, lease_owner = NULL WHERE id = $id",
            ct, ("$n", attempts), ("$due", Ms(dueAt)), ("$s", status), ("$e", error), ("$id", id));

    public Task MarkDeadAsync(string id, int attempts, int? status, string error, CancellationToken ct) =>
        db.WriteAsync("UPDATE outbox SET state = 'Dead', attempts = $n, last_status = $s, last_error = $e, lease_until = NULL, lease_owner = NULL WHERE id = $id",
            ct, ("$n", attempts), ("$s", status), ("$e", error), ("$id", id));

    public async Task<OutboxDelivery?> GetDeliveryAsync(string id, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, $"SELECT {DeliveryColumns} FROM outbox WHERE id = $id", ("$id", id));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? ReadDelivery(r) : null;
    }

    public async Task<Page<OutboxDelivery>> ListDeliveriesAsync(DeliveryState state, string? destination, int pageSize, int pageNumber,
        CancellationToken ct)
    {
        var where = "WHERE state = $state" + (destination is null ? "" : " AND destination = $dest");
        await using var c = await db.ReadAsync(ct);
        long total;
        await using (var count = Command(c, $"SELECT COUNT(*) FROM outbox {where}", ("$state", state.ToString()), ("$dest", destination)))
            total = (long)(await count.ExecuteScalarAsync(ct))!;
        var list = new List<OutboxDelivery>();
        await using var cmd = Command(c, $"SELECT {DeliveryColumns} FROM outbox {where} ORDER BY created_at DESC, id LIMIT $limit OFFSET $offset",
            ("$state", state.ToString()), ("$dest", destination), ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(ReadDelivery(r));
        return new Page<OutboxDelivery>(list, pageSize, pageNumber, total);
    }

    public async Task<bool> RedeliverAsync(string id, DateTimeOffset now, CancellationToken ct) =>
        await db.WriteAsync("UPDATE outbox SET state = 'Pending', attempts = 0, due_at = $now, lease_until = NULL, lease_owner = NULL WHERE id = $id AND state = 'Dead'",
            ct, ("$now", Ms(now)), ("$id", id)) == 1;

    /// <summary>Frees this node's own leases (and those taken before leases had owners); another node's run out on their own.</summary>
    public Task<int> ReleaseLeasesAsync(CancellationToken ct) =>
        db.WriteAsync("UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE state = 'Pending' AND lease_until IS NOT NULL " +
            "AND (lease_owner = $owner OR lease_owner IS NULL)", ct, ("$owner", nodeId));

    public async Task<DateTimeOffset?> NextDueAsync(CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c,
            "SELECT MIN(MAX(o.due_at, COALESCE(o.lease_until, 0))) FROM outbox o WHERE o.state = 'Pending' AND " + HeadOfConversation);
        var value = await cmd.ExecuteScalarAsync(ct);
        return value is long ms ? Time(ms) : null;
    }
}
