using System.Text.Json;

namespace Parley.Storage.Sqlite;

/// <summary>OAuth clients, the credential audit and the token-signing keys: each change and its audit row commit together.</summary>
sealed class SqliteCredentialStore(SqliteDatabase db) : ICredentialStore
{
    const string ClientColumns = "id, name, secret_hash, permissions, date_created, description, date_modified, created_by, modified_by, credential_version, " +
        "authorized_grant_type, redirect_uris";

    static OAuthClient ReadClient(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2),
        [.. JsonSerializer.Deserialize<string[]>(r.GetString(3))!], Time(r.GetInt64(4)), StringOrNull(r, 5), TimeOrNull(r, 6),
        StringOrNull(r, 7), StringOrNull(r, 8), r.GetInt64(9), r.GetString(10),
        r.IsDBNull(11) ? [] : [.. JsonSerializer.Deserialize<string[]>(r.GetString(11))!]);

    public Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct) =>
        db.GetByIdAsync("oauth_clients", ClientColumns, id, ReadClient, ct);

    public Task<Page<OAuthClient>> ListClientsAsync(int pageSize, int pageNumber, CancellationToken ct) =>
        db.ListPageAsync("oauth_clients", ClientColumns, "date_created, id", ReadClient, pageSize, pageNumber, ct);

    public Task UpsertClientAsync(OAuthClient cl, CancellationToken ct) =>
        db.WriteAsync(async tx => { await UpsertClientAsync(tx, cl, ct); return true; }, ct);

    public Task SaveClientAsync(OAuthClient client, CredentialAudit audit, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            await UpsertClientAsync(tx, client, ct);
            await InsertAuditAsync(tx, audit, ct);
            return true;
        }, ct);

    public Task<bool> DeleteClientAsync(string id, CredentialAudit audit, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            await using var cmd = Command(tx, "DELETE FROM oauth_clients WHERE id = $id", ("$id", id));
            if (await cmd.ExecuteNonQueryAsync(ct) == 0) return false;   // rolled back: nothing deleted, nothing audited
            await InsertAuditAsync(tx, audit, ct);
            return true;
        }, ct);

    async Task UpsertClientAsync(SqliteTransaction tx, OAuthClient cl, CancellationToken ct)
    {
        await using var cmd = Command(tx,
            $"INSERT INTO oauth_clients ({ClientColumns}) VALUES ($id,$name,$hash,$perms,$at,$desc,$modified,$cby,$mby,$cv,$grant,$redirects) " +
            "ON CONFLICT (id) DO UPDATE SET name = $name, secret_hash = $hash, permissions = $perms, description = $desc, " +
            "date_modified = $modified, modified_by = $mby, credential_version = $cv, authorized_grant_type = $grant, redirect_uris = $redirects",
            ("$id", cl.Id), ("$name", cl.Name), ("$hash", cl.SecretHash), ("$perms", JsonSerializer.Serialize(cl.Permissions)),
            ("$at", Ms(cl.DateCreated)), ("$desc", cl.Description), ("$modified", Ms(cl.DateModified)), ("$cby", cl.CreatedBy),
            ("$mby", cl.ModifiedBy), ("$cv", cl.CredentialVersion), ("$grant", cl.AuthorizedGrantType),
            ("$redirects", JsonSerializer.Serialize(cl.RedirectUris)));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    internal async Task InsertAuditAsync(SqliteTransaction tx, CredentialAudit a, CancellationToken ct)
    {
        await using var cmd = Command(tx,
            "INSERT INTO credential_audit (id, action, entity_id, by_client, at, detail) VALUES ($id,$action,$entity,$by,$at,$detail)",
            ("$id", a.Id), ("$action", a.Action.ToString()), ("$entity", a.EntityId), ("$by", a.ByClientId), ("$at", Ms(a.At)),
            ("$detail", a.Detail));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<Page<CredentialAudit>> ListCredentialAuditAsync(string? entityId, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        var where = entityId is null ? "" : "WHERE entity_id = $entity";
        long total;
        await using (var count = Command(c, $"SELECT COUNT(*) FROM credential_audit {where}", ("$entity", entityId)))
            total = (long)(await count.ExecuteScalarAsync(ct))!;
        var list = new List<CredentialAudit>();
        await using var cmd = Command(c,
            $"SELECT id, action, entity_id, by_client, at, detail FROM credential_audit {where} ORDER BY at DESC, id LIMIT $limit OFFSET $offset",
            ("$entity", entityId), ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new CredentialAudit(r.GetString(0), Parse<CredentialAction>(r.GetString(1)), r.GetString(2), r.GetString(3),
                Time(r.GetInt64(4)), StringOrNull(r, 5)));
        return new Page<CredentialAudit>(list, pageSize, pageNumber, total);
    }

    public async Task<IReadOnlyList<SigningKey>> ListSigningKeysAsync(CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, "SELECT kid, key, created_at, signs_from, retires_at FROM token_signing_keys ORDER BY signs_from, created_at");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<SigningKey>();
        while (await r.ReadAsync(ct))
            list.Add(new SigningKey(r.GetString(0), r.IsDBNull(1) ? null : db.Secrets.Unprotect((byte[])r.GetValue(1)), Time(r.GetInt64(2)), Time(r.GetInt64(3)),
                TimeOrNull(r, 4)));
        return list;
    }

    public Task AddSigningKeyAsync(SigningKey key, DateTimeOffset othersRetireAt, CredentialAudit audit, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            await using (var retire = Command(tx,
                "UPDATE token_signing_keys SET retires_at = $at WHERE retires_at IS NULL OR retires_at > $at", ("$at", Ms(othersRetireAt))))
                await retire.ExecuteNonQueryAsync(ct);
            await using (var insert = Command(tx,
                "INSERT INTO token_signing_keys (kid, key, created_at, signs_from, retires_at) VALUES ($kid,$key,$created,$from,NULL)",
                ("$kid", key.Kid), ("$key", key.Key is { } bytes ? db.Secrets.Protect(bytes) : null), ("$created", Ms(key.CreatedAt)), ("$from", Ms(key.SignsFrom))))
                await insert.ExecuteNonQueryAsync(ct);
            await InsertAuditAsync(tx, audit, ct);
            return true;
        }, ct);
}
