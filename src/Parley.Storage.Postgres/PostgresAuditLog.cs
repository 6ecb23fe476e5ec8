using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>The termination audit: rows written by the commit of the end they record; the socket count filled in later.</summary>
public sealed class PostgresAuditLog : IAuditLog
{
    readonly PostgresDatabase _db;

    internal PostgresAuditLog(PostgresDatabase db) => _db = db;

    public Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct) =>
        _db.ExecuteAsync("UPDATE termination_audit SET sockets_notified = $1 WHERE id = $2", ct, Int4(sockets), Text(auditId));

    /// <summary>One statement for every row: the ids and counts as two arrays, unnested side by side.</summary>
    public Task SetSocketsNotifiedAsync(IReadOnlyList<(string AuditId, int Sockets)> counts, CancellationToken ct) =>
        counts.Count == 0 ? Task.CompletedTask : _db.ExecuteAsync(
            "UPDATE termination_audit t SET sockets_notified = v.n FROM unnest($1::text[], $2::int[]) AS v(id, n) WHERE t.id = v.id", ct,
            TextArray([.. counts.Select(c => c.AuditId)]), Int4Array([.. counts.Select(c => c.Sockets)]));

    public Task<Page<TerminationAudit>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        const string Where = "WHERE ($1::text IS NULL OR conversation_id = $1)";
        var total = await _db.CountAsync($"SELECT COUNT(*) FROM termination_audit {Where}", c, Text(conversationId));
        var list = await _db.ListAsync(
            $"SELECT id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified, user_id, user_name FROM termination_audit {Where} " +
            "ORDER BY at DESC, id LIMIT $2 OFFSET $3",
            r => new TerminationAudit(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Parse<EndLever>(r.GetString(3)), r.GetString(4),
                StringOrNull(r, 5), Time(r.GetInt64(6)), r.IsDBNull(7) ? null : r.GetInt32(7), StringOrNull(r, 8), StringOrNull(r, 9)),
            c, Text(conversationId), Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<TerminationAudit>(list, pageSize, pageNumber, total);
    }, ct);
}
