namespace Parley.Storage.Sqlite;

/// <summary>The termination audit (its rows are written by the commit of the end they record).</summary>
sealed class SqliteAuditLog(SqliteDatabase db) : IAuditLog
{
    public Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct) =>
        db.WriteAsync("UPDATE termination_audit SET sockets_notified = $n WHERE id = $id", ct, ("$n", sockets), ("$id", auditId));

    /// <summary>One transaction, a statement per 400 rows (within SQLite's bound on parameters).</summary>
    public Task SetSocketsNotifiedAsync(IReadOnlyList<(string AuditId, int Sockets)> counts, CancellationToken ct) =>
        counts.Count == 0 ? Task.CompletedTask : db.WriteAsync(async tx =>
        {
            foreach (var chunk in counts.Chunk(400))
            {
                var values = string.Join(",", chunk.Select((_, i) => $"($i{i},$n{i})"));
                var args = chunk.SelectMany((row, i) => new (string, object?)[] { ($"$i{i}", row.AuditId), ($"$n{i}", row.Sockets) }).ToArray();
                await using var cmd = Command(tx,
                    $"WITH v(id, n) AS (VALUES {values}) UPDATE termination_audit SET sockets_notified = (SELECT n FROM v WHERE v.id = termination_audit.id) " +
                    "WHERE id IN (SELECT id FROM v)", args);
                await cmd.ExecuteNonQueryAsync(ct);
            }
            return 0;
        }, ct);

    public async Task<Page<TerminationAudit>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        var where = conversationId is null ? "" : "WHERE conversation_id = $cid";
        long total;
        await using (var cmd = Command(c, $"SELECT COUNT(*) FROM termination_audit {where}", ("$cid", conversationId)))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var list = new List<TerminationAudit>();
        await using (var cmd = Command(c,
            $"SELECT id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified, user_id, user_name FROM termination_audit {where} " +
            "ORDER BY at DESC, id LIMIT $limit OFFSET $offset",
            ("$cid", conversationId), ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                list.Add(new TerminationAudit(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Parse<EndLever>(r.GetString(3)),
                    r.GetString(4), StringOrNull(r, 5), Time(r.GetInt64(6)), r.IsDBNull(7) ? null : r.GetInt32(7), StringOrNull(r, 8), StringOrNull(r, 9)));
        return new Page<TerminationAudit>(list, pageSize, pageNumber, total);
    }
}
