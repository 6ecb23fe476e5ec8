namespace Parley.Storage.Sqlite;

/// <summary>Bulk termination jobs (migration 0014), one statement per write.</summary>
sealed class SqliteTerminationJobStore(SqliteDatabase db) : ITerminationJobStore
{
    const string Columns =
        "id, state, filter, reason, matched, ended, already_ended, failed, sockets_notified, channels_notified, error_message, " +
        "client_id, user_id, user_name, node_id, created_at, completed_at";

    public Task CreateAsync(TerminationJob j, CancellationToken ct) =>
        db.WriteAsync($"INSERT INTO termination_jobs ({Columns}) VALUES ($id,$state,$filter,$reason,$m,$e,$a,$f,$s,$c,$err,$client,$uid,$uname,$node,$at,$done)", ct,
            ("$id", j.Id), ("$state", j.State), ("$filter", j.Filter), ("$reason", j.Reason), ("$m", j.Counts.Matched), ("$e", j.Counts.Ended),
            ("$a", j.Counts.AlreadyEnded), ("$f", j.Counts.Failed), ("$s", j.Counts.SocketsNotified), ("$c", j.Counts.ChannelsNotified),
            ("$err", j.ErrorMessage), ("$client", j.CreatedBy.ClientId), ("$uid", j.CreatedBy.UserId), ("$uname", j.CreatedBy.UserName),
            ("$node", j.NodeId), ("$at", Ms(j.CreatedAt)), ("$done", Ms(j.CompletedAt)));

    public async Task<bool> UpdateAsync(string id, string state, BulkCounts n, string? errorMessage, DateTimeOffset? completedAt, CancellationToken ct) =>
        await db.WriteAsync(
            "UPDATE termination_jobs SET state = $state, matched = $m, ended = $e, already_ended = $a, failed = $f, sockets_notified = $s, " +
            "channels_notified = $c, error_message = $err, completed_at = $done WHERE id = $id AND state = 'PENDING'", ct,
            ("$state", state), ("$m", n.Matched), ("$e", n.Ended), ("$a", n.AlreadyEnded), ("$f", n.Failed), ("$s", n.SocketsNotified),
            ("$c", n.ChannelsNotified), ("$err", errorMessage), ("$done", Ms(completedAt)), ("$id", id)) == 1;

    public Task<TerminationJob?> GetAsync(string id, CancellationToken ct) => db.GetByIdAsync("termination_jobs", Columns, id, Read, ct);

    public Task<Page<TerminationJob>> ListAsync(int pageSize, int pageNumber, CancellationToken ct) =>
        db.ListPageAsync("termination_jobs", Columns, "created_at DESC, id DESC", Read, pageSize, pageNumber, ct);

    public Task<int> FailPendingAsync(string? nodeId, string message, DateTimeOffset at, CancellationToken ct) => nodeId is null
        ? db.WriteAsync("UPDATE termination_jobs SET state = 'FAILED', error_message = $err, completed_at = $at WHERE state = 'PENDING'", ct,
            ("$err", message), ("$at", Ms(at)))
        : db.WriteAsync("UPDATE termination_jobs SET state = 'FAILED', error_message = $err, completed_at = $at WHERE node_id = $node AND state = 'PENDING'", ct,
            ("$err", message), ("$at", Ms(at)), ("$node", nodeId));

    static TerminationJob Read(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3),
        new BulkCounts(r.GetInt32(4), r.GetInt32(5), r.GetInt32(6), r.GetInt32(7), r.GetInt32(8), r.GetInt32(9)), StringOrNull(r, 10),
        new Actor(r.GetString(11), StringOrNull(r, 12), StringOrNull(r, 13)), r.GetString(14), Time(r.GetInt64(15)), TimeOrNull(r, 16));
}
