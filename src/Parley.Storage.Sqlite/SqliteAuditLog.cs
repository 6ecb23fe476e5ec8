namespace Parley.Storage.Sqlite;

/// <summary>The termination audit (its rows are written by the commit of the end they record).</summary>
sealed class SqliteAuditLog(SqliteDatabase db) : IAuditLog
{
    public Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct) =>
        db.WriteAsync("UPDATE termination_audit SET sockets_notified = $n WHERE id = $id", ct, ("$n", sockets), ("$id", auditId));

    /// <summary>
    /// One write, the prepared single-row statement per count. (A multi-row <c>UPDATE … FROM (VALUES …)</c> was slower:
    /// SQLite scans the value list once per row it updates, 6.7 ms per 400 rows against 1.3 ms for the 400 statements.)
    /// </summary>
    public Task SetSocketsNotifiedAsync(IReadOnlyList<(string AuditId, int Sockets)> counts, CancellationToken ct) =>
        counts.Count == 0 ? Task.CompletedTask : db.WriteAsync<object?>(async tx =>
        {
            foreach (var (id, sockets) in counts)
                await db.Prepared(tx, "UPDATE termination_audit SET sockets_notified = $n WHERE id = $id", ("$n", sockets), ("$id", id))
                    .ExecuteNonQueryAsync(ct);
            return null;
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
