namespace Parley.Storage.Sqlite;

/// <summary>
/// Termination receipts: the socket rows nodes record (a batch is one write of the group commit), read back with the audit
/// row and the outbox rows the termination's commit linked to it (<c>termination_deliveries</c>).
/// </summary>
sealed class SqliteReceiptStore(SqliteDatabase db) : IReceiptStore
{
    public Task RecordSocketsAsync(IReadOnlyList<SocketReceipt> rows, CancellationToken ct) => rows.Count == 0 ? Task.CompletedTask :
        db.WriteAsync<object?>(async tx =>
        {
            foreach (var s in rows)
                await db.Prepared(tx,
                    "INSERT OR IGNORE INTO socket_receipts (termination_id, conversation_id, node_id, socket_id, delivered, at, error) " +
                    "VALUES ($t,$c,$n,$s,$d,$at,$e)",
                    ("$t", s.TerminationId), ("$c", s.ConversationId), ("$n", s.NodeId), ("$s", s.SocketId), ("$d", s.Delivered ? 1 : 0),
                    ("$at", Ms(s.At)), ("$e", s.Error)).ExecuteNonQueryAsync(ct);
            return null;
        }, ct);

    public async Task<TerminationAudit?> GetAuditAsync(string terminationId, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c,
            "SELECT id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified, user_id, user_name FROM termination_audit WHERE id = $id",
            ("$id", terminationId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        return new TerminationAudit(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Parse<EndLever>(r.GetString(3)),
            r.GetString(4), StringOrNull(r, 5), Time(r.GetInt64(6)), r.IsDBNull(7) ? null : r.GetInt32(7), StringOrNull(r, 8), StringOrNull(r, 9));
    }

    public async Task<IReadOnlyList<SocketReceipt>> ListSocketsAsync(string terminationId, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c,
            "SELECT termination_id, conversation_id, node_id, socket_id, delivered, at, error FROM socket_receipts " +
            "WHERE termination_id = $id ORDER BY node_id, at, socket_id", ("$id", terminationId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<SocketReceipt>();
        while (await r.ReadAsync(ct))
            list.Add(new SocketReceipt(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4) != 0, Time(r.GetInt64(5)),
                StringOrNull(r, 6)));
        return list;
    }

    public async Task<IReadOnlyList<OutboxDelivery>> ListChannelDeliveriesAsync(string terminationId, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c,
            $"SELECT {SqliteOutbox.DeliveryColumns} FROM outbox JOIN termination_deliveries d ON d.outbox_id = outbox.id " +
            "WHERE d.audit_id = $id ORDER BY outbox.rowid", ("$id", terminationId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<OutboxDelivery>();
        while (await r.ReadAsync(ct)) list.Add(SqliteOutbox.ReadDelivery(r));
        return list;
    }

    public async Task<string?> TerminationOfDeliveryAsync(string outboxId, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, "SELECT audit_id FROM termination_deliveries WHERE outbox_id = $id", ("$id", outboxId));
        return await cmd.ExecuteScalarAsync(ct) as string;
    }
}
