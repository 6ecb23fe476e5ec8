using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>
/// The webhook outbox, leased across nodes. A lease records its owner (this store's node id): a node frees only its
/// own leases at start, and another node's lease is respected until it runs out.
/// </summary>
public sealed class PostgresOutbox : IOutbox
{
    readonly PostgresDatabase _db;

    internal PostgresOutbox(PostgresDatabase db) => _db = db;

    /// <summary>Serialises lease statements across nodes (each holds it for its own short transaction), so a destination's cap is exact.</summary>
    const long LeaseLockKey = 0x7061726C6579 + 1;

    internal const string DeliveryColumns =
        "id, destination, message_id, conversation_id, body, due_at, state, attempts, last_status, last_error, created_at, delivered_at";

    internal static OutboxDelivery ReadDelivery(NpgsqlDataReader r) => new(
        new OutboxItem(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), (byte[])r.GetValue(4), Time(r.GetInt64(5))),
        Parse<DeliveryState>(r.GetString(6)), r.GetInt32(7), r.IsDBNull(8) ? null : r.GetInt32(8), StringOrNull(r, 9),
        Time(r.GetInt64(10)), TimeOrNull(r, 11));

    /// <summary>A conversation's deliveries go one at a time, oldest first: only its oldest pending one may be leased.</summary>
    const string HeadOfConversation =
        "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.conversation_id = o.conversation_id AND e.state = 'Pending' AND e.seq < o.seq)";

    /// <summary>
    /// One batch, one transaction: the lease lock, then one statement that locks the candidates (<c>FOR UPDATE SKIP
    /// LOCKED</c>), ranks them per destination, and leases those within each destination's room: the cap less what this
    /// relay has in flight less the unexpired leases other nodes hold. The lock makes concurrent leases take turns, and
    /// the statement after it (a new snapshot under READ COMMITTED) sees every lease committed before, so the cap holds
    /// across nodes and no row is leased twice.
    /// </summary>
    public Task<IReadOnlyList<OutboxDelivery>> LeaseDueAsync(DateTimeOffset now, TimeSpan lease, int max, int perDestination,
        IReadOnlyDictionary<string, int> inFlight, CancellationToken ct) => _db.WriteAsync<IReadOnlyList<OutboxDelivery>>(async _ =>
    {
        await using var batch = _db.Source.CreateBatch();
        batch.BatchCommands.Add(BatchCommand($"SELECT pg_advisory_xact_lock({LeaseLockKey})"));
        batch.BatchCommands.Add(BatchCommand(
            "WITH candidates AS (" +
            "  SELECT o.id, o.destination, o.due_at FROM outbox o " +
            "  WHERE o.state = 'Pending' AND o.due_at <= $1 AND (o.lease_until IS NULL OR o.lease_until <= $1) AND " + HeadOfConversation +
            "  FOR UPDATE OF o SKIP LOCKED), " +
            "others AS (" +
            "  SELECT destination, COUNT(*) AS n FROM outbox WHERE state = 'Pending' AND lease_until > $1 AND lease_owner IS DISTINCT FROM $2 " +
            "  GROUP BY destination), " +
            "mine AS (SELECT * FROM unnest($3::text[], $4::int[]) AS m (destination, n)), " +
            "ranked AS (" +
            "  SELECT c.id, c.due_at, ROW_NUMBER() OVER (PARTITION BY c.destination ORDER BY c.due_at) AS n, " +
            "         $5 - COALESCE(others.n, 0) - COALESCE(mine.n, 0) AS room " +
            "  FROM candidates c LEFT JOIN others USING (destination) LEFT JOIN mine USING (destination)), " +
            "chosen AS (SELECT id FROM ranked WHERE n <= room ORDER BY due_at LIMIT $6) " +
            "UPDATE outbox o SET lease_until = $7, lease_owner = $2 FROM chosen WHERE o.id = chosen.id " +
            $"RETURNING {string.Join(", ", DeliveryColumns.Split(", ").Select(c => "o." + c))}",
            Int8(Ms(now)), Text(_db.NodeId), TextArray([.. inFlight.Keys]), Int4Array([.. inFlight.Values]), Int4(perDestination), Int4(max),
            Int8(Ms(now + lease))));
        var list = new List<OutboxDelivery>();
        await using var r = await batch.ExecuteReaderAsync(CancellationToken.None);
        await r.NextResultAsync(CancellationToken.None);
        while (await r.ReadAsync(CancellationToken.None)) list.Add(ReadDelivery(r));
        return list;
    }, ct);

    public Task MarkDeliveredAsync(string id, int status, DateTimeOffset at, CancellationToken ct) =>
        _db.ExecuteAsync("UPDATE outbox SET state = 'Delivered', attempts = attempts + 1, last_status = $1, last_error = NULL, " +
            "delivered_at = $2, lease_until = NULL, lease_owner = NULL WHERE id = $3", ct, Int4(status), Int8(Ms(at)), Text(id));

    public Task MarkRetryAsync(string id, int attempts, DateTimeOffset dueAt, int? status, string error, CancellationToken ct) =>
        _db.ExecuteAsync("UPDATE outbox SET attempts = $1, due_at = $2, last_status = $3, last_error = $4, lease_until = NULL, lease_owner = NULL WHERE id = $5",
            ct, Int4(attempts), Int8(Ms(dueAt)), Int4(status), Text(error), Text(id));

    public Task MarkDeadAsync(string id, int attempts, int? status, string error, CancellationToken ct) =>
        _db.ExecuteAsync("UPDATE outbox SET state = 'Dead', attempts = $1, last_status = $2, last_error = $3, lease_until = NULL, lease_owner = NULL WHERE id = $4",
            ct, Int4(attempts), Int4(status), Text(error), Text(id));

    public Task<OutboxDelivery?> GetDeliveryAsync(string id, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync($"SELECT {DeliveryColumns} FROM outbox WHERE id = $1", ReadDelivery, c, Text(id))).FirstOrDefault(), ct);

    public Task<Page<OutboxDelivery>> ListDeliveriesAsync(DeliveryState state, string? destination, int pageSize, int pageNumber, CancellationToken ct) =>
        _db.ReadAsync(async c =>
        {
            const string Where = "WHERE state = $1 AND ($2::text IS NULL OR destination = $2)";
            var total = await _db.CountAsync($"SELECT COUNT(*) FROM outbox {Where}", c, Text(state.ToString()), Text(destination));
            var list = await _db.ListAsync($"SELECT {DeliveryColumns} FROM outbox {Where} ORDER BY created_at DESC, id LIMIT $3 OFFSET $4", ReadDelivery, c,
                Text(state.ToString()), Text(destination), Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
            return new Page<OutboxDelivery>(list, pageSize, pageNumber, total);
        }, ct);

    public async Task<bool> RedeliverAsync(string id, DateTimeOffset now, CancellationToken ct) =>
        await _db.ExecuteAsync("UPDATE outbox SET state = 'Pending', attempts = 0, due_at = $1, lease_until = NULL, lease_owner = NULL " +
            "WHERE id = $2 AND state = 'Dead'", ct, Int8(Ms(now)), Text(id)) == 1;

    /// <summary>Frees this node's own leases only: those it held when it last stopped. Another node's leases run out on their own.</summary>
    public Task<int> ReleaseLeasesAsync(CancellationToken ct) =>
        _db.ExecuteAsync("UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE state = 'Pending' AND lease_until IS NOT NULL AND lease_owner = $1",
            ct, Text(_db.NodeId));

    public Task<DateTimeOffset?> NextDueAsync(CancellationToken ct) => _db.ReadAsync(async c =>
    {
        await using var cmd = _db.Command(
            "SELECT MIN(GREATEST(o.due_at, COALESCE(o.lease_until, 0))) FROM outbox o WHERE o.state = 'Pending' AND " + HeadOfConversation);
        return await cmd.ExecuteScalarAsync(c) is long ms ? Time(ms) : (DateTimeOffset?)null;
    }, ct);
}
