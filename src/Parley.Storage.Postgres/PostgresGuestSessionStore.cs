using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>Guest sessions: insert-if-absent by token hash, compare-and-set detach, paged listing.</summary>
public sealed class PostgresGuestSessionStore : IGuestSessionStore
{
    readonly PostgresDatabase _db;

    internal PostgresGuestSessionStore(PostgresDatabase db) => _db = db;

    const string Columns = "id, token_hash, deployment_id, conversation_id, created_at, channel, address, address_type, display_name";

    static GuestSession Read(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3), Time(r.GetInt64(4)),
        Parse<ChannelKind>(r.GetString(5)), StringOrNull(r, 6), StringOrNull(r, 7), StringOrNull(r, 8));

    public Task<GuestSession?> FindByTokenHashAsync(string tokenHash, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync($"SELECT {Columns} FROM guest_sessions WHERE token_hash = $1", Read, c, Text(tokenHash))).FirstOrDefault(), ct);

    public Task<GuestSession?> GetAsync(string sessionId, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync($"SELECT {Columns} FROM guest_sessions WHERE id = $1", Read, c, Text(sessionId))).FirstOrDefault(), ct);

    /// <summary>
    /// Insert-if-absent, then the row that holds the token hash, in one round trip. Under READ COMMITTED an insert that meets
    /// a concurrent one for the same token waits for it and then does nothing; the SELECT (a new snapshot) sees the winner.
    /// </summary>
    public Task<GuestSession> CreateAsync(GuestSession s, CancellationToken ct) => _db.WriteAsync(async _ =>
    {
        await using var batch = _db.Source.CreateBatch();
        batch.BatchCommands.Add(BatchCommand(
            $"INSERT INTO guest_sessions ({Columns}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
            Text(s.Id), Text(s.TokenHash), Text(s.DeploymentId), Text(s.ConversationId), Int8(Ms(s.CreatedAt)), Text(s.Channel.ToString()),
            Text(s.Address), Text(s.AddressType), Text(s.DisplayName)));
        batch.BatchCommands.Add(BatchCommand($"SELECT {Columns} FROM guest_sessions WHERE token_hash = $1", Text(s.TokenHash)));
        await using var r = await batch.ExecuteReaderAsync(CancellationToken.None);
        // The insert returns no rows: Npgsql's reader starts at the SELECT's.
        if (!await r.ReadAsync(CancellationToken.None))
            throw new InvalidOperationException("A guest session's id is taken by another token hash.");
        return Read(r);
    }, ct);

    public async Task<bool> DetachConversationAsync(string sessionId, string expectedConversationId, CancellationToken ct) =>
        await _db.ExecuteAsync("UPDATE guest_sessions SET conversation_id = NULL WHERE id = $1 AND conversation_id = $2", ct,
            Text(sessionId), Text(expectedConversationId)) == 1;

    public Task DeleteAsync(string sessionId, CancellationToken ct) =>
        _db.ExecuteAsync("DELETE FROM guest_sessions WHERE id = $1", ct, Text(sessionId));

    public Task<Page<GuestSession>> ListAsync(SessionFilter filter, int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        const string Where = "WHERE ($1::text IS NULL OR deployment_id = $1) AND ($2::text IS NULL OR channel = $2) AND ($3::text IS NULL OR address = $3)";
        NpgsqlParameter[] Args() => [Text(filter.DeploymentId), Text(filter.Channel?.ToString()), Text(filter.Address)];
        var total = await _db.CountAsync($"SELECT COUNT(*) FROM guest_sessions {Where}", c, Args());
        var list = await _db.ListAsync($"SELECT {Columns} FROM guest_sessions {Where} ORDER BY created_at, id LIMIT $4 OFFSET $5", Read, c,
            [.. Args(), Int4(pageSize), Int8(Offset(pageSize, pageNumber))]);
        return new Page<GuestSession>(list, pageSize, pageNumber, total);
    }, ct);
}
