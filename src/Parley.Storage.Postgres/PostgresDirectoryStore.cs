using System.Collections.Immutable;
using System.Text.Json;
using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>Queues, integrations, deployments, OAuth clients and the original signing key: each write one statement, last writer wins.</summary>
public sealed class PostgresDirectoryStore : IDirectoryStore
{
    readonly PostgresDatabase _db;

    internal PostgresDirectoryStore(PostgresDatabase db) => _db = db;

    // ---------------------------------------------------------------- queues

    const string QueueColumns = "id, name, description, date_created, date_modified, created_by, modified_by";

    static Queue ReadQueue(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Time(r.GetInt64(3)), Time(r.GetInt64(4)), StringOrNull(r, 5), StringOrNull(r, 6));

    public Task<Queue?> GetQueueAsync(string id, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync($"SELECT {QueueColumns} FROM queues WHERE id = $1", ReadQueue, c, Text(id))).FirstOrDefault(), ct);

    /// <summary>Sorted byte-wise on the lower-cased name (COLLATE "C"), as SQLite sorts it, whatever the database's collation.</summary>
    public Task<Page<Queue>> ListQueuesAsync(QueueFilter f, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var where = new List<string>();
        var args = new List<NpgsqlParameter>();
        string Arg(NpgsqlParameter p) { args.Add(p); return "$" + args.Count; }
        if (f.LikePattern() is { } pattern) where.Add($@"name_key LIKE {Arg(Text(pattern))} ESCAPE '\'");
        if (f.Ids is { Count: > 0 } ids) where.Add($"id = ANY({Arg(TextArray([.. ids]))})");
        var whereSql = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        var direction = f.Descending ? "DESC" : "ASC";
        var total = await _db.CountAsync($"SELECT COUNT(*) FROM queues {whereSql}", c, [.. args.Select(p => p.Clone())]);
        var limit = Arg(Int4(f.PageSize));
        var offset = Arg(Int8(Offset(f.PageSize, f.PageNumber)));
        var list = await _db.ListAsync($"SELECT {QueueColumns} FROM queues {whereSql} ORDER BY name_key COLLATE \"C\" {direction}, id {direction} LIMIT {limit} OFFSET {offset}",
            ReadQueue, c, [.. args]);
        return new Page<Queue>(list, f.PageSize, f.PageNumber, total);
    }, ct);

    public Task UpsertQueueAsync(Queue q, CancellationToken ct) =>
        _db.ExecuteAsync($"INSERT INTO queues ({QueueColumns}, name_key) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO UPDATE SET " +
            "name = $2, name_key = $8, description = $3, date_modified = $5, modified_by = $7",
            ct, Text(q.Id), Text(q.Name), Text(q.Description), Int8(Ms(q.DateCreated)), Int8(Ms(q.DateModified)), Text(q.CreatedBy), Text(q.ModifiedBy),
            Text(QueueFilter.NameKey(q.Name)));

    // ---------------------------------------------------------------- integrations

    const string IntegrationColumns =
        "id, name, webhook_url, secret_token, webhook_headers, disconnect_notification, inbound_after_end, date_created, date_modified, created_by, modified_by, " +
        "previous_secret_token, previous_secret_expires_at, queue_id";

    // The secrets are encrypted at rest: decrypted here, encrypted in UpsertIntegrationAsync.
    OpenIntegration ReadIntegration(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), _db.Secrets.Unprotect(r.GetString(3))!,
        JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(4))!.ToImmutableDictionary(),
        r.GetBoolean(5), Parse<DisconnectMode>(r.GetString(6)), Time(r.GetInt64(7)), Time(r.GetInt64(8)), r.GetString(9), r.GetString(10))
    {
        PreviousSecretToken = _db.Secrets.Unprotect(StringOrNull(r, 11)), PreviousSecretExpiresAt = TimeOrNull(r, 12), QueueId = r.GetString(13),
    };

    public Task<OpenIntegration?> GetIntegrationAsync(string id, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync($"SELECT {IntegrationColumns} FROM open_integrations WHERE id = $1", ReadIntegration, c, Text(id)))
            .FirstOrDefault(), ct);

    public Task<Page<OpenIntegration>> ListIntegrationsAsync(int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var total = await _db.CountAsync("SELECT COUNT(*) FROM open_integrations", c);
        var list = await _db.ListAsync($"SELECT {IntegrationColumns} FROM open_integrations ORDER BY date_created, id LIMIT $1 OFFSET $2",
            ReadIntegration, c, Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<OpenIntegration>(list, pageSize, pageNumber, total);
    }, ct);

    public Task UpsertIntegrationAsync(OpenIntegration i, CancellationToken ct) =>
        _db.ExecuteAsync($"INSERT INTO open_integrations ({IntegrationColumns}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) " +
            "ON CONFLICT (id) DO UPDATE SET name = $2, webhook_url = $3, secret_token = $4, webhook_headers = $5, " +
            "disconnect_notification = $6, inbound_after_end = $7, date_modified = $9, modified_by = $11, " +
            "previous_secret_token = $12, previous_secret_expires_at = $13, queue_id = $14",
            ct, Text(i.Id), Text(i.Name), Text(i.WebhookUrl), Text(_db.Secrets.Protect(i.SecretToken)),
            Text(JsonSerializer.Serialize(i.WebhookHeaders)), Bool(i.DisconnectNotification), Text(i.InboundAfterEnd.ToString()),
            Int8(Ms(i.DateCreated)), Int8(Ms(i.DateModified)), Text(i.CreatedBy), Text(i.ModifiedBy), Text(_db.Secrets.Protect(i.PreviousSecretToken)),
            Int8(Ms(i.PreviousSecretExpiresAt)), Text(i.QueueId));

    public async Task<bool> DeleteIntegrationAsync(string id, CancellationToken ct) =>
        await _db.ExecuteAsync("DELETE FROM open_integrations WHERE id = $1", ct, Text(id)) == 1;

    // ---------------------------------------------------------------- deployments

    const string DeploymentColumns =
        "id, name, allowed_origins, disconnect_enabled, disconnect_type, clear_enabled, date_created, inactivity_seconds, guest_messages_per_second, queue_id";

    static Deployment ReadDeployment(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1),
        [.. JsonSerializer.Deserialize<string[]>(r.GetString(2))!], r.GetBoolean(3), Parse<DisconnectMode>(r.GetString(4)), r.GetBoolean(5),
        Time(r.GetInt64(6)), r.GetInt64(7) > 0 ? TimeSpan.FromSeconds(r.GetInt64(7)) : null,
        // 0 was "no limit" before every deployment had the platform's rate: such rows get the default now.
        r.GetInt32(8) > 0 ? r.GetInt32(8) : Deployment.PlatformGuestMessagesPerSecond) { QueueId = r.GetString(9) };

    public Task<Deployment?> GetDeploymentAsync(string id, CancellationToken ct) =>
        _db.ReadAsync(async c => (await _db.ListAsync($"SELECT {DeploymentColumns} FROM deployments WHERE id = $1", ReadDeployment, c, Text(id)))
            .FirstOrDefault(), ct);

    public Task<Page<Deployment>> ListDeploymentsAsync(int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var total = await _db.CountAsync("SELECT COUNT(*) FROM deployments", c);
        var list = await _db.ListAsync($"SELECT {DeploymentColumns} FROM deployments ORDER BY date_created, id LIMIT $1 OFFSET $2",
            ReadDeployment, c, Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<Deployment>(list, pageSize, pageNumber, total);
    }, ct);

    public Task UpsertDeploymentAsync(Deployment d, CancellationToken ct) =>
        _db.ExecuteAsync($"INSERT INTO deployments ({DeploymentColumns}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (id) DO UPDATE SET " +
            "name = $2, allowed_origins = $3, disconnect_enabled = $4, disconnect_type = $5, clear_enabled = $6, " +
            "inactivity_seconds = $8, guest_messages_per_second = $9, queue_id = $10",
            ct, Text(d.Id), Text(d.Name), Text(JsonSerializer.Serialize(d.AllowedOrigins)), Bool(d.DisconnectEnabled),
            Text(d.DisconnectType.ToString()), Bool(d.ClearEnabled), Int8(Ms(d.DateCreated)),
            Int8((long)(d.InactivityTimeout?.TotalSeconds ?? 0)), Int4(d.GuestMessagesPerSecond), Text(d.QueueId));

    public async Task<bool> DeleteDeploymentAsync(string id, CancellationToken ct) =>
        await _db.ExecuteAsync("DELETE FROM deployments WHERE id = $1", ct, Text(id)) == 1;

    // ---------------------------------------------------------------- OAuth clients and the signing key

    public Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct) => PostgresCredentialStore.GetClientAsync(_db, id, ct);

    public Task UpsertClientAsync(OAuthClient client, CancellationToken ct) =>
        _db.WriteAsync(async c =>
        {
            await using var cmd = PostgresCredentialStore.UpsertClient(client).ToCommand(_db);
            return await cmd.ExecuteNonQueryAsync(c);
        }, ct);

    /// <summary>Insert-if-absent, then the one stored key, in one round trip: nodes starting at once all end with the same key.</summary>
    public Task<byte[]> GetOrCreateSigningKeyAsync(Func<byte[]> create, CancellationToken ct) => _db.WriteAsync(async _ =>
    {
        await using var batch = _db.Source.CreateBatch();
        batch.BatchCommands.Add(BatchCommand("INSERT INTO signing_keys (id, key) VALUES (1, $1) ON CONFLICT DO NOTHING", Bytes(_db.Secrets.Protect(create()))));
        batch.BatchCommands.Add(BatchCommand("SELECT key FROM signing_keys WHERE id = 1"));
        await using var r = await batch.ExecuteReaderAsync(CancellationToken.None);
        // The insert returns no rows: Npgsql's reader starts at the SELECT's.
        await r.ReadAsync(CancellationToken.None);
        return _db.Secrets.Unprotect((byte[])r.GetValue(0));
    }, ct);
}
