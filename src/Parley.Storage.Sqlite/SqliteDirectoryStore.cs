using System.Collections.Immutable;
using System.Text.Json;

namespace Parley.Storage.Sqlite;

/// <summary>Queues, deployments, Open Messaging integrations and the signing key; integration secrets are encrypted at rest.</summary>
sealed class SqliteDirectoryStore(SqliteDatabase db, SqliteCredentialStore credentials) : IDirectoryStore
{
    const string QueueColumns = "id, name, description, date_created, date_modified, created_by, modified_by";

    static Queue ReadQueue(SqliteDataReader r) =>
        new(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Time(r.GetInt64(3)), Time(r.GetInt64(4)), StringOrNull(r, 5), StringOrNull(r, 6));

    public Task<Queue?> GetQueueAsync(string id, CancellationToken ct) => db.GetByIdAsync("queues", QueueColumns, id, ReadQueue, ct);

    public async Task<Page<Queue>> ListQueuesAsync(QueueFilter f, CancellationToken ct)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (f.LikePattern() is { } pattern) { where.Add(@"name_key LIKE $name ESCAPE '\'"); args.Add(("$name", pattern)); }
        if (f.Ids is { Count: > 0 } ids)
        {
            where.Add($"id IN ({string.Join(",", ids.Select((_, i) => $"$id{i}"))})");
            args.AddRange(ids.Select((id, i) => ($"$id{i}", (object?)id)));
        }
        var whereSql = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        var direction = f.Descending ? "DESC" : "ASC";
        await using var c = await db.ReadAsync(ct);
        long total;
        await using (var count = Command(c, $"SELECT COUNT(*) FROM queues {whereSql}", [.. args]))
            total = (long)(await count.ExecuteScalarAsync(ct))!;
        var list = new List<Queue>();
        await using var cmd = Command(c, $"SELECT {QueueColumns} FROM queues {whereSql} ORDER BY name_key {direction}, id {direction} LIMIT $limit OFFSET $offset",
            [.. args, ("$limit", f.PageSize), ("$offset", (long)(f.PageNumber - 1) * f.PageSize)]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(ReadQueue(r));
        return new Page<Queue>(list, f.PageSize, f.PageNumber, total);
    }

    public Task UpsertQueueAsync(Queue q, CancellationToken ct) =>
        db.WriteAsync($"INSERT INTO queues ({QueueColumns}, name_key) VALUES ($id,$name,$desc,$created,$modified,$cby,$mby,$key) " +
            "ON CONFLICT (id) DO UPDATE SET name = $name, name_key = $key, description = $desc, date_modified = $modified, modified_by = $mby",
            ct, ("$id", q.Id), ("$name", q.Name), ("$key", QueueFilter.NameKey(q.Name)), ("$desc", q.Description), ("$created", Ms(q.DateCreated)),
            ("$modified", Ms(q.DateModified)), ("$cby", q.CreatedBy), ("$mby", q.ModifiedBy));

    public async Task<Deployment?> GetDeploymentAsync(string id, CancellationToken ct) =>
        (await ReadDeploymentsAsync("WHERE id = $id", id, ct)).FirstOrDefault();

    public async Task<Page<Deployment>> ListDeploymentsAsync(int pageSize, int pageNumber, CancellationToken ct)
    {
        long total;
        await using (var c = await db.ReadAsync(ct))
        await using (var cmd = Command(c, "SELECT COUNT(*) FROM deployments"))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var list = await ReadDeploymentsAsync("ORDER BY date_created, id LIMIT $limit OFFSET $offset", null, ct,
            ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize));
        return new Page<Deployment>(list, pageSize, pageNumber, total);
    }

    async Task<List<Deployment>> ReadDeploymentsAsync(string where, string? id, CancellationToken ct, params (string, object?)[] paging)
    {
        await using var c = await db.ReadAsync(ct);
        var list = new List<Deployment>();
        await using var cmd = Command(c,
            "SELECT id, name, allowed_origins, disconnect_enabled, disconnect_type, clear_enabled, date_created, inactivity_seconds, " +
            "guest_messages_per_second, queue_id FROM deployments " + where,
            [("$id", id), .. paging]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new Deployment(r.GetString(0), r.GetString(1), [.. JsonSerializer.Deserialize<string[]>(r.GetString(2))!],
                r.GetInt64(3) != 0, Parse<DisconnectMode>(r.GetString(4)), r.GetInt64(5) != 0, Time(r.GetInt64(6)),
                r.GetInt64(7) > 0 ? TimeSpan.FromSeconds(r.GetInt64(7)) : null,
                // 0 was "no limit" before every deployment had the platform's rate: such rows get the default now.
                r.GetInt32(8) > 0 ? r.GetInt32(8) : Deployment.PlatformGuestMessagesPerSecond) { QueueId = r.GetString(9) });
        return list;
    }

    public Task UpsertDeploymentAsync(Deployment d, CancellationToken ct) =>
        db.WriteAsync("INSERT INTO deployments (id, name, allowed_origins, disconnect_enabled, disconnect_type, clear_enabled, date_created, " +
            "inactivity_seconds, guest_messages_per_second, queue_id) VALUES ($id,$name,$origins,$de,$dt,$ce,$at,$idle,$rate,$queue) ON CONFLICT (id) DO UPDATE SET " +
            "name = $name, allowed_origins = $origins, disconnect_enabled = $de, disconnect_type = $dt, clear_enabled = $ce, " +
            "inactivity_seconds = $idle, guest_messages_per_second = $rate, queue_id = $queue",
            ct, ("$id", d.Id), ("$name", d.Name), ("$origins", JsonSerializer.Serialize(d.AllowedOrigins)),
            ("$de", d.DisconnectEnabled ? 1 : 0), ("$dt", d.DisconnectType.ToString()), ("$ce", d.ClearEnabled ? 1 : 0), ("$at", Ms(d.DateCreated)),
            ("$idle", (long)(d.InactivityTimeout?.TotalSeconds ?? 0)), ("$rate", d.GuestMessagesPerSecond),
            ("$queue", d.QueueId));

    public async Task<bool> DeleteDeploymentAsync(string id, CancellationToken ct) =>
        await db.WriteAsync("DELETE FROM deployments WHERE id = $id", ct, ("$id", id)) == 1;

    const string IntegrationColumns =
        "id, name, webhook_url, secret_token, webhook_headers, disconnect_notification, inbound_after_end, date_created, date_modified, created_by, modified_by, " +
        "previous_secret_token, previous_secret_expires_at, queue_id";

    // The secrets are encrypted at rest (SecretCodec): decrypted here, encrypted in UpsertIntegrationAsync.
    OpenIntegration ReadIntegration(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), db.Secrets.Unprotect(r.GetString(3))!,
        JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(4))!.ToImmutableDictionary(),
        r.GetInt64(5) != 0, Parse<DisconnectMode>(r.GetString(6)), Time(r.GetInt64(7)), Time(r.GetInt64(8)), r.GetString(9), r.GetString(10))
    {
        PreviousSecretToken = db.Secrets.Unprotect(StringOrNull(r, 11)), PreviousSecretExpiresAt = TimeOrNull(r, 12), QueueId = r.GetString(13),
    };

    public Task<OpenIntegration?> GetIntegrationAsync(string id, CancellationToken ct) =>
        db.GetByIdAsync("open_integrations", IntegrationColumns, id, ReadIntegration, ct);

    public Task<Page<OpenIntegration>> ListIntegrationsAsync(int pageSize, int pageNumber, CancellationToken ct) =>
        db.ListPageAsync("open_integrations", IntegrationColumns, "date_created, id", ReadIntegration, pageSize, pageNumber, ct);

    public Task UpsertIntegrationAsync(OpenIntegration i, CancellationToken ct) =>
        db.WriteAsync($"INSERT INTO open_integrations ({IntegrationColumns}) VALUES ($id,$name,$url,$secret,$headers,$dn,$after,$created,$modified,$cby,$mby,$prev,$prevUntil,$queue) " +
            "ON CONFLICT (id) DO UPDATE SET name = $name, webhook_url = $url, secret_token = $secret, webhook_headers = $headers, " +
            "disconnect_notification = $dn, inbound_after_end = $after, date_modified = $modified, modified_by = $mby, " +
            "previous_secret_token = $prev, previous_secret_expires_at = $prevUntil, queue_id = $queue",
            ct, ("$id", i.Id), ("$name", i.Name), ("$url", i.WebhookUrl), ("$secret", db.Secrets.Protect(i.SecretToken)),
            ("$headers", JsonSerializer.Serialize(i.WebhookHeaders)), ("$dn", i.DisconnectNotification ? 1 : 0),
            ("$after", i.InboundAfterEnd.ToString()), ("$created", Ms(i.DateCreated)), ("$modified", Ms(i.DateModified)),
            ("$cby", i.CreatedBy), ("$mby", i.ModifiedBy), ("$prev", db.Secrets.Protect(i.PreviousSecretToken)),
            ("$prevUntil", i.PreviousSecretExpiresAt is { } until ? Ms(until) : null), ("$queue", i.QueueId));

    public async Task<bool> DeleteIntegrationAsync(string id, CancellationToken ct) =>
        await db.WriteAsync("DELETE FROM open_integrations WHERE id = $id", ct, ("$id", id)) == 1;

    // OAuth clients are the credential store's rows (written with their audit there); the directory reads and seeds them.

    public Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct) => credentials.GetClientAsync(id, ct);

    public Task UpsertClientAsync(OAuthClient client, CancellationToken ct) => credentials.UpsertClientAsync(client, ct);

    public async Task<byte[]> GetOrCreateSigningKeyAsync(Func<byte[]> create, CancellationToken ct)
    {
        await db.WriteAsync("INSERT OR IGNORE INTO signing_keys (id, key) VALUES (1, $key)", ct, ("$key", db.Secrets.Protect(create())));
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, "SELECT key FROM signing_keys WHERE id = 1");
        return db.Secrets.Unprotect((byte[])(await cmd.ExecuteScalarAsync(ct))!);
    }
}
