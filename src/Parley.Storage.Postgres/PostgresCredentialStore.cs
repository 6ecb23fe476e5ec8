using System.Text.Json;
using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>OAuth clients, the credential audit and the token-signing keys. Each change and its audit row are one batch, one transaction.</summary>
public sealed class PostgresCredentialStore : ICredentialStore
{
    readonly PostgresDatabase _db;

    internal PostgresCredentialStore(PostgresDatabase db) => _db = db;

    const string ClientColumns = "id, name, secret_hash, permissions, date_created, description, date_modified, created_by, modified_by, credential_version, " +
        "authorized_grant_type, redirect_uris";

    static OAuthClient ReadClient(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2),
        [.. JsonSerializer.Deserialize<string[]>(r.GetString(3))!], Time(r.GetInt64(4)), StringOrNull(r, 5), TimeOrNull(r, 6),
        StringOrNull(r, 7), StringOrNull(r, 8), r.GetInt64(9), r.GetString(10),
        r.IsDBNull(11) ? [] : [.. JsonSerializer.Deserialize<string[]>(r.GetString(11))!]);

    internal static Task<OAuthClient?> GetClientAsync(PostgresDatabase db, string id, CancellationToken ct) =>
        db.ReadAsync(async c => (await db.ListAsync($"SELECT {ClientColumns} FROM oauth_clients WHERE id = $1", ReadClient, c, Text(id))).FirstOrDefault(), ct);

    public Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct) => GetClientAsync(_db, id, ct);

    public Task<Page<OAuthClient>> ListClientsAsync(int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var total = await _db.CountAsync("SELECT COUNT(*) FROM oauth_clients", c);
        var list = await _db.ListAsync($"SELECT {ClientColumns} FROM oauth_clients ORDER BY date_created, id LIMIT $1 OFFSET $2", ReadClient, c,
            Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<OAuthClient>(list, pageSize, pageNumber, total);
    }, ct);

    /// <summary>A statement and its parameters, to run alone or as part of a batch.</summary>
    internal sealed record Statement(string Sql, NpgsqlParameter[] Args)
    {
        public NpgsqlCommand ToCommand(PostgresDatabase db) => db.Command(Sql, Args);
        public NpgsqlBatchCommand ToBatchCommand() => BatchCommand(Sql, Args);
    }

    internal static Statement UpsertClient(OAuthClient cl) => new(
        $"INSERT INTO oauth_clients ({ClientColumns}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) " +
        "ON CONFLICT (id) DO UPDATE SET name = $2, secret_hash = $3, permissions = $4, description = $6, " +
        "date_modified = $7, modified_by = $9, credential_version = $10, authorized_grant_type = $11, redirect_uris = $12",
        [Text(cl.Id), Text(cl.Name), Text(cl.SecretHash), Text(JsonSerializer.Serialize(cl.Permissions)), Int8(Ms(cl.DateCreated)),
            Text(cl.Description), Int8(Ms(cl.DateModified)), Text(cl.CreatedBy), Text(cl.ModifiedBy), Int8(cl.CredentialVersion),
            Text(cl.AuthorizedGrantType), Text(JsonSerializer.Serialize(cl.RedirectUris))]);

    static Statement InsertAudit(CredentialAudit a) => new(
        "INSERT INTO credential_audit (id, action, entity_id, by_client, at, detail) VALUES ($1,$2,$3,$4,$5,$6)",
        [Text(a.Id), Text(a.Action.ToString()), Text(a.EntityId), Text(a.ByClientId), Int8(Ms(a.At)), Text(a.Detail)]);

    /// <summary>The statements in one implicit transaction (one batch, one round trip): all stored or none.</summary>
    Task<int> RunAsync(CancellationToken ct, params Statement[] statements) => _db.WriteAsync(async _ =>
    {
        await using var batch = _db.Source.CreateBatch();
        foreach (var s in statements) batch.BatchCommands.Add(s.ToBatchCommand());
        return await batch.ExecuteNonQueryAsync(CancellationToken.None);
    }, ct);

    public Task SaveClientAsync(OAuthClient client, CredentialAudit audit, CancellationToken ct) => RunAsync(ct, UpsertClient(client), InsertAudit(audit));

    /// <summary>The delete and its audit row in one statement: no row deleted, no audit row.</summary>
    public async Task<bool> DeleteClientAsync(string id, CredentialAudit a, CancellationToken ct) =>
        await RunAsync(ct, new Statement(
            "WITH d AS (DELETE FROM oauth_clients WHERE id = $1 RETURNING id) " +
            "INSERT INTO credential_audit (id, action, entity_id, by_client, at, detail) SELECT $2,$3,$4,$5,$6,$7 FROM d",
            [Text(id), Text(a.Id), Text(a.Action.ToString()), Text(a.EntityId), Text(a.ByClientId), Int8(Ms(a.At)), Text(a.Detail)])) == 1;

    public Task<Page<CredentialAudit>> ListCredentialAuditAsync(string? entityId, int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        const string Where = "WHERE ($1::text IS NULL OR entity_id = $1)";
        var total = await _db.CountAsync($"SELECT COUNT(*) FROM credential_audit {Where}", c, Text(entityId));
        var list = await _db.ListAsync(
            $"SELECT id, action, entity_id, by_client, at, detail FROM credential_audit {Where} ORDER BY at DESC, id LIMIT $2 OFFSET $3",
            r => new CredentialAudit(r.GetString(0), Parse<CredentialAction>(r.GetString(1)), r.GetString(2), r.GetString(3), Time(r.GetInt64(4)),
                StringOrNull(r, 5)),
            c, Text(entityId), Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<CredentialAudit>(list, pageSize, pageNumber, total);
    }, ct);

    public Task<IReadOnlyList<SigningKey>> ListSigningKeysAsync(CancellationToken ct) => _db.ReadAsync<IReadOnlyList<SigningKey>>(async c =>
        await _db.ListAsync("SELECT kid, key, created_at, signs_from, retires_at FROM token_signing_keys ORDER BY signs_from, created_at",
            r => new SigningKey(r.GetString(0), r.IsDBNull(1) ? null : _db.Secrets.Unprotect((byte[])r.GetValue(1)), Time(r.GetInt64(2)),
                Time(r.GetInt64(3)), TimeOrNull(r, 4)), c), ct);

    public Task AddSigningKeyAsync(SigningKey key, DateTimeOffset othersRetireAt, CredentialAudit audit, CancellationToken ct) =>
        RunAsync(ct,
            new Statement("UPDATE token_signing_keys SET retires_at = $1 WHERE retires_at IS NULL OR retires_at > $1", [Int8(Ms(othersRetireAt))]),
            new Statement("INSERT INTO token_signing_keys (kid, key, created_at, signs_from, retires_at) VALUES ($1,$2,$3,$4,NULL)",
                [Text(key.Kid), Bytes(key.Key is { } bytes ? _db.Secrets.Protect(bytes) : null), Int8(Ms(key.CreatedAt)), Int8(Ms(key.SignsFrom))]),
            InsertAudit(audit));
}
