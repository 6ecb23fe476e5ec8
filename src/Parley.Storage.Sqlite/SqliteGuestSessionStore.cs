namespace Parley.Storage.Sqlite;

/// <summary>Guest sessions, keyed by id and by the hash of their token.</summary>
sealed class SqliteGuestSessionStore(SqliteDatabase db) : IGuestSessionStore
{
    public async Task<GuestSession?> FindByTokenHashAsync(string tokenHash, CancellationToken ct) =>
        await ReadSessionAsync("WHERE token_hash = $v", tokenHash, ct);

    public async Task<GuestSession?> GetAsync(string sessionId, CancellationToken ct) =>
        await ReadSessionAsync("WHERE id = $v", sessionId, ct);

    async Task<GuestSession?> ReadSessionAsync(string where, string value, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        var list = await ReadSessionsAsync(c, where, ct, ("$v", value));
        return list.Count == 0 ? null : list[0];
    }

    static async Task<List<GuestSession>> ReadSessionsAsync(SqliteConnection c, string where, CancellationToken ct, params (string, object?)[] args)
    {
        var list = new List<GuestSession>();
        await using var cmd = Command(c,
            "SELECT id, token_hash, deployment_id, conversation_id, created_at, channel, address, address_type, display_name FROM guest_sessions " + where, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new GuestSession(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3), Time(r.GetInt64(4)),
                Parse<ChannelKind>(r.GetString(5)), StringOrNull(r, 6), StringOrNull(r, 7), StringOrNull(r, 8)));
        return list;
    }

    public async Task<GuestSession> CreateAsync(GuestSession s, CancellationToken ct)
    {
        await db.WriteAsync("INSERT OR IGNORE INTO guest_sessions (id, token_hash, deployment_id, conversation_id, created_at, channel, address, address_type, display_name) " +
            "VALUES ($id,$hash,$dep,$cid,$at,$ch,$addr,$type,$name)",
            ct, ("$id", s.Id), ("$hash", s.TokenHash), ("$dep", s.DeploymentId), ("$cid", s.ConversationId), ("$at", Ms(s.CreatedAt)),
            ("$ch", s.Channel.ToString()), ("$addr", s.Address), ("$type", s.AddressType), ("$name", s.DisplayName));
        return (await FindByTokenHashAsync(s.TokenHash, ct))!;
    }

    public async Task<bool> DetachConversationAsync(string sessionId, string expectedConversationId, CancellationToken ct) =>
        await db.WriteAsync("UPDATE guest_sessions SET conversation_id = NULL WHERE id = $id AND conversation_id = $cid",
            ct, ("$id", sessionId), ("$cid", expectedConversationId)) == 1;

    public Task DeleteAsync(string sessionId, CancellationToken ct) =>
        db.WriteAsync("DELETE FROM guest_sessions WHERE id = $id", ct, ("$id", sessionId));

    public async Task<Page<GuestSession>> ListAsync(SessionFilter filter, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        var where = new List<string>();
        if (filter.DeploymentId is not null) where.Add("deployment_id = $dep");
        if (filter.Channel is not null) where.Add("channel = $ch");
        if (filter.Address is not null) where.Add("address = $addr");
        var clause = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        (string, object?)[] args = [("$dep", filter.DeploymentId), ("$ch", filter.Channel?.ToString()), ("$addr", filter.Address)];
        long total;
        await using (var cmd = Command(c, $"SELECT COUNT(*) FROM guest_sessions {clause}", args))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var list = await ReadSessionsAsync(c, $"{clause} ORDER BY created_at, id LIMIT $limit OFFSET $offset", ct,
            [.. args, ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize)]);
        return new Page<GuestSession>(list, pageSize, pageNumber, total);
    }
}
