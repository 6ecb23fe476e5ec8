using System.Text.Json;
using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>Users (each change and its credential audit row in one batch, one transaction) and authorization codes.</summary>
public sealed class PostgresUserStore : IUserStore
{
    readonly PostgresDatabase _db;

    internal PostgresUserStore(PostgresDatabase db) => _db = db;

    const string UserColumns = "id, name, username, email, roles, password_hash, date_created, date_modified, credential_version";

    static User ReadUser(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3),
        [.. JsonSerializer.Deserialize<string[]>(r.GetString(4))!], r.GetString(5), Time(r.GetInt64(6)), Time(r.GetInt64(7)), r.GetInt64(8));

    public Task<User?> GetUserAsync(string id, CancellationToken ct) => _db.ReadAsync(async c =>
        (await _db.ListAsync($"SELECT {UserColumns} FROM users WHERE id = $1", ReadUser, c, Text(id))).FirstOrDefault(), ct);

    public Task<User?> FindByUsernameAsync(string username, CancellationToken ct) => _db.ReadAsync(async c =>
        (await _db.ListAsync($"SELECT {UserColumns} FROM users WHERE username = $1", ReadUser, c, Text(User.Normalize(username)))).FirstOrDefault(), ct);

    public Task<Page<User>> ListUsersAsync(int pageSize, int pageNumber, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var total = await _db.CountAsync("SELECT COUNT(*) FROM users", c);
        var list = await _db.ListAsync($"SELECT {UserColumns} FROM users ORDER BY date_created, id LIMIT $1 OFFSET $2", ReadUser, c,
            Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
        return new Page<User>(list, pageSize, pageNumber, total);
    }, ct);

    static NpgsqlBatchCommand InsertAudit(CredentialAudit a) => BatchCommand(
        "INSERT INTO credential_audit (id, action, entity_id, by_client, at, detail) VALUES ($1,$2,$3,$4,$5,$6)",
        Text(a.Id), Text(a.Action.ToString()), Text(a.EntityId), Text(a.ByClientId), Int8(Ms(a.At)), Text(a.Detail));

    /// <summary>The commands as one batch: one implicit transaction, all stored or none.</summary>
    Task<int> RunAsync(CancellationToken ct, params NpgsqlBatchCommand[] commands) => _db.WriteAsync(async _ =>
    {
        await using var batch = _db.Source.CreateBatch();
        foreach (var c in commands) batch.BatchCommands.Add(c);
        return await batch.ExecuteNonQueryAsync(CancellationToken.None);
    }, ct);

    public async Task<bool> SaveUserAsync(User u, CredentialAudit audit, CancellationToken ct)
    {
        try
        {
            await RunAsync(ct, BatchCommand(
                    $"INSERT INTO users ({UserColumns}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) " +
                    "ON CONFLICT (id) DO UPDATE SET name = $2, username = $3, email = $4, roles = $5, password_hash = $6, date_modified = $8, " +
                    "credential_version = $9",
                    Text(u.Id), Text(u.Name), Text(User.Normalize(u.Username)), Text(u.Email), Text(JsonSerializer.Serialize(u.Roles)),
                    Text(u.PasswordHash), Int8(Ms(u.DateCreated)), Int8(Ms(u.DateModified)), Int8(u.CredentialVersion)),
                InsertAudit(audit));
            return true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName?.Contains("username") == true)
        {
            return false;   // the username is another user's; the batch rolled back
        }
    }

    /// <summary>The delete and its audit row in one statement: no row deleted, no audit row.</summary>
    public async Task<bool> DeleteUserAsync(string id, CredentialAudit a, CancellationToken ct) =>
        await RunAsync(ct, BatchCommand(
            "WITH d AS (DELETE FROM users WHERE id = $1 RETURNING id) " +
            "INSERT INTO credential_audit (id, action, entity_id, by_client, at, detail) SELECT $2,$3,$4,$5,$6,$7 FROM d",
            Text(id), Text(a.Id), Text(a.Action.ToString()), Text(a.EntityId), Text(a.ByClientId), Int8(Ms(a.At)), Text(a.Detail))) == 1;

    public Task SaveCodeAsync(AuthorizationCode code, DateTimeOffset purgeBefore, CancellationToken ct) => RunAsync(ct,
        BatchCommand("DELETE FROM authorization_codes WHERE expires_at < $1", Int8(Ms(purgeBefore))),
        BatchCommand("INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, expires_at, user_version) " +
            "VALUES ($1,$2,$3,$4,$5,$6,$7)",
            Text(code.CodeHash), Text(code.ClientId), Text(code.UserId), Text(code.RedirectUri), Text(code.CodeChallenge), Int8(Ms(code.ExpiresAt)),
            Int8(code.UserCredentialVersion)));

    /// <summary>
    /// One statement: the conditional update (its row lock makes a concurrent redemption wait, then find the code taken)
    /// and the code's row, with whether this statement was the one that redeemed it.
    /// </summary>
    public Task<(CodeRedemption Outcome, AuthorizationCode? Code)> RedeemCodeAsync(string codeHash, DateTimeOffset now, CancellationToken ct) =>
        _db.WriteAsync(async c =>
        {
            await using var cmd = _db.Command(
                "WITH u AS (UPDATE authorization_codes SET redeemed_at = $2 WHERE code_hash = $1 AND redeemed_at IS NULL RETURNING code_hash) " +
                "SELECT a.code_hash, a.client_id, a.user_id, a.redirect_uri, a.code_challenge, a.expires_at, a.user_version, " +
                "EXISTS (SELECT 1 FROM u) FROM authorization_codes a WHERE a.code_hash = $1",
                Text(codeHash), Int8(Ms(now)));
            await using var r = await cmd.ExecuteReaderAsync(c);
            if (!await r.ReadAsync(c)) return (CodeRedemption.Unknown, (AuthorizationCode?)null);
            var code = new AuthorizationCode(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), StringOrNull(r, 4), Time(r.GetInt64(5)),
                r.GetInt64(6));
            return (r.GetBoolean(7) ? CodeRedemption.Redeemed : CodeRedemption.AlreadyRedeemed, code);
        }, ct);
}
