using Npgsql;
using NpgsqlTypes;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>
/// Termination receipts: the socket rows nodes record (a batch is one statement, so one transaction), read back with the
/// audit row and the outbox rows the termination's commit linked to it (<c>termination_deliveries</c>).
/// </summary>
public sealed class PostgresReceiptStore : IReceiptStore
{
    readonly PostgresDatabase _db;

    internal PostgresReceiptStore(PostgresDatabase db) => _db = db;

    public Task RecordSocketsAsync(IReadOnlyList<SocketReceipt> rows, CancellationToken ct) => rows.Count == 0 ? Task.CompletedTask :
        _db.ExecuteAsync(
            "INSERT INTO socket_receipts (termination_id, conversation_id, node_id, socket_id, delivered, at, error) " +
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::bigint[], $7::text[]) ON CONFLICT DO NOTHING", ct,
            TextArray([.. rows.Select(r => r.TerminationId)]), TextArray([.. rows.Select(r => r.ConversationId)]),
            TextArray([.. rows.Select(r => r.NodeId)]), TextArray([.. rows.Select(r => r.SocketId)]),
            new NpgsqlParameter { Value = rows.Select(r => r.Delivered).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean },
            new NpgsqlParameter { Value = rows.Select(r => Ms(r.At)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint },
            new NpgsqlParameter { Value = rows.Select(r => r.Error).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });

    public Task<TerminationAudit?> GetAuditAsync(string terminationId, CancellationToken ct) => _db.ReadAsync(async c =>
        (await _db.ListAsync(
            "SELECT id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified, user_id, user_name FROM termination_audit WHERE id = $1",
            r => new TerminationAudit(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Parse<EndLever>(r.GetString(3)), r.GetString(4),
                StringOrNull(r, 5), Time(r.GetInt64(6)), r.IsDBNull(7) ? null : r.GetInt32(7), StringOrNull(r, 8), StringOrNull(r, 9)),
            c, Text(terminationId))).FirstOrDefault(), ct);

    public Task<IReadOnlyList<SocketReceipt>> ListSocketsAsync(string terminationId, CancellationToken ct) =>
        _db.ReadAsync<IReadOnlyList<SocketReceipt>>(async c => await _db.ListAsync(
            "SELECT termination_id, conversation_id, node_id, socket_id, delivered, at, error FROM socket_receipts " +
            "WHERE termination_id = $1 ORDER BY node_id, at, socket_id",
            r => new SocketReceipt(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetBoolean(4), Time(r.GetInt64(5)), StringOrNull(r, 6)),
            c, Text(terminationId)), ct);

    public Task<IReadOnlyList<OutboxDelivery>> ListChannelDeliveriesAsync(string terminationId, CancellationToken ct) =>
        _db.ReadAsync<IReadOnlyList<OutboxDelivery>>(async c => await _db.ListAsync(
            $"SELECT {PostgresOutbox.DeliveryColumns} FROM outbox JOIN termination_deliveries d ON d.outbox_id = outbox.id " +
            "WHERE d.audit_id = $1 ORDER BY outbox.seq", PostgresOutbox.ReadDelivery, c, Text(terminationId)), ct);

    public Task<string?> TerminationOfDeliveryAsync(string outboxId, CancellationToken ct) => _db.ReadAsync(async c =>
        (await _db.ListAsync("SELECT audit_id FROM termination_deliveries WHERE outbox_id = $1", r => r.GetString(0), c, Text(outboxId))).FirstOrDefault(), ct);
}
