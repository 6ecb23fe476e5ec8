using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>Bulk termination jobs (migration 0006), one statement per write.</summary>
public sealed class PostgresTerminationJobStore : ITerminationJobStore
{
    readonly PostgresDatabase _db;

    internal PostgresTerminationJobStore(PostgresDatabase db) => _db = db;

    const string Columns =
        "id, state, filter, reason, matched, ended, already_ended, failed, sockets_notified, channels_notified, error_message, " +
        "client_id, user_id, user_name, node_id, created_at, completed_at";

    public Task CreateAsync(TerminationJob j, CancellationToken ct) =>
        _db.ExecuteAsync($"INSERT INTO termination_jobs ({Columns}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)", ct,
            Text(j.Id), Text(j.State), Text(j.Filter), Text(j.Reason), Int8(j.Counts.Matched), Int8(j.Counts.Ended), Int8(j.Counts.AlreadyEnded),
            Int8(j.Counts.Failed), Int8(j.Counts.SocketsNotified), Int8(j.Counts.ChannelsNotified), Text(j.ErrorMessage),
            Text(j.CreatedBy.ClientId), Text(j.CreatedBy.UserId), Text(j.CreatedBy.UserName), Text(j.NodeId), Int8(Ms(j.CreatedAt)), Int8(Ms(j.CompletedAt)));

    public async Task<bool> UpdateAsync(string id, string state, BulkCounts n, string? errorMessage, DateTimeOffset? completedAt, CancellationToken ct) =>
        await _db.ExecuteAsync(
            "UPDATE termination_jobs SET state = $1, matched = $2, ended = $3, already_ended = $4, failed = $5, sockets_notified = $6, " +
            "channels_notified = $7, error_message = $8, completed_at = $9 WHERE id = $10 AND state = 'PENDING'", ct,
            Text(state), Int8(n.Matched), Int8(n.Ended), Int8(n.AlreadyEnded), Int8(n.Failed), Int8(n.SocketsNotified), Int8(n.ChannelsNotified),
            Text(errorMessage), Int8(Ms(completedAt)), Text(id)) == 1;

    public Task<TerminationJob?> GetAsync(string id, CancellationToken ct) => _db.ReadAsync(async c =>
        (await _db.ListAsync($"SELECT {Columns} FROM termination_jobs WHERE id = $1", Read, c, Text(id))).FirstOrDefault(), ct);

    public Task<Page<TerminationJob>> ListAsync(int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var total = await _db.CountAsync("SELECT COUNT(*) FROM termination_jobs", c);
        var list = await _db.ListAsync($"SELECT {Columns} FROM termination_jobs ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2", Read, c,
            Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<TerminationJob>(list, pageSize, pageNumber, total);
    }, ct);

    public Task<int> FailPendingAsync(string? nodeId, string message, DateTimeOffset at, CancellationToken ct) => nodeId is null
        ? _db.ExecuteAsync("UPDATE termination_jobs SET state = 'FAILED', error_message = $1, completed_at = $2 WHERE state = 'PENDING'", ct,
            Text(message), Int8(Ms(at)))
        : _db.ExecuteAsync("UPDATE termination_jobs SET state = 'FAILED', error_message = $1, completed_at = $2 WHERE node_id = $3 AND state = 'PENDING'", ct,
            Text(message), Int8(Ms(at)), Text(nodeId));

    static TerminationJob Read(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3),
        new BulkCounts((int)r.GetInt64(4), (int)r.GetInt64(5), (int)r.GetInt64(6), (int)r.GetInt64(7), (int)r.GetInt64(8), (int)r.GetInt64(9)),
        StringOrNull(r, 10), new Actor(r.GetString(11), StringOrNull(r, 12), StringOrNull(r, 13)), r.GetString(14), Time(r.GetInt64(15)), TimeOrNull(r, 16));
}
