using System.Text.Json;

namespace Parley.Storage.Sqlite;

/// <summary>Users (each change with its credential audit row) and authorization codes.</summary>
sealed class SqliteUserStore(SqliteDatabase db, SqliteCredentialStore credentials) : IUserStore
{
    const string UserColumns = "id, name, username, email, roles, password_hash, date_created, date_modified, credential_version";

    static User ReadUser(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3),
        [.. JsonSerializer.Deserialize<string[]>(r.GetString(4))!], r.GetString(5), Time(r.GetInt64(6)), Time(r.GetInt64(7)), r.GetInt64(8));

    public Task<User?> GetUserAsync(string id, CancellationToken ct) => db.GetByIdAsync("users", UserColumns, id, ReadUser, ct);

    public async Task<User?> FindByUsernameAsync(string username, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, $"SELECT {UserColumns} FROM users WHERE username = $u", ("$u", User.Normalize(username)));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? ReadUser(r) : null;
    }

    public Task<Page<User>> ListUsersAsync(int pageSize, int pageNumber, CancellationToken ct) =>
        db.ListPageAsync("users", UserColumns, "date_created, id", ReadUser, pageSize, pageNumber, ct);

    public Task<bool> SaveUserAsync(User u, CredentialAudit audit, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            await using var cmd = Command(tx,
                $"INSERT INTO users ({UserColumns}) VALUES ($id,$name,$username,$email,$roles,$hash,$created,$modified,$cv) " +
                "ON CONFLICT (id) DO UPDATE SET name = $name, username = $username, email = $email, roles = $roles, " +
                "password_hash = $hash, date_modified = $modified, credential_version = $cv",
                ("$id", u.Id), ("$name", u.Name), ("$username", User.Normalize(u.Username)), ("$email", u.Email),
                ("$roles", JsonSerializer.Serialize(u.Roles)), ("$hash", u.PasswordHash), ("$created", Ms(u.DateCreated)),
                ("$modified", Ms(u.DateModified)), ("$cv", u.CredentialVersion));
            try { await cmd.ExecuteNonQueryAsync(ct); }
            catch (SqliteException e) when (e.SqliteErrorCode == 19) { return false; }   // the username is another user's
            await credentials.InsertAuditAsync(tx, audit, ct);
            return true;
        }, ct);

    public Task<bool> DeleteUserAsync(string id, CredentialAudit audit, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            await using var cmd = Command(tx, "DELETE FROM users WHERE id = $id", ("$id", id));
            if (await cmd.ExecuteNonQueryAsync(ct) == 0) return false;
            await credentials.InsertAuditAsync(tx, audit, ct);
            return true;
        }, ct);

    public Task SaveCodeAsync(AuthorizationCode code, DateTimeOffset purgeBefore, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            await using (var purge = Command(tx, "DELETE FROM authorization_codes WHERE expires_at < $before", ("$before", Ms(purgeBefore))))
                await purge.ExecuteNonQueryAsync(ct);
            await using var cmd = Command(tx,
                "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, expires_at, user_version) " +
                "VALUES ($h,$client,$user,$redirect,$challenge,$exp,$uv)",
                ("$h", code.CodeHash), ("$client", code.ClientId), ("$user", code.UserId), ("$redirect", code.RedirectUri),
                ("$challenge", code.CodeChallenge), ("$exp", Ms(code.ExpiresAt)), ("$uv", code.UserCredentialVersion));
            await cmd.ExecuteNonQueryAsync(ct);
            return true;
        }, ct);

    public Task<(CodeRedemption Outcome, AuthorizationCode? Code)> RedeemCodeAsync(string codeHash, DateTimeOffset now, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            // The update's row count decides: of two redemptions, only one finds redeemed_at still empty.
            int updated;
            await using (var redeem = Command(tx, "UPDATE authorization_codes SET redeemed_at = $now WHERE code_hash = $h AND redeemed_at IS NULL",
                ("$now", Ms(now)), ("$h", codeHash)))
                updated = await redeem.ExecuteNonQueryAsync(ct);
            await using var read = Command(tx,
                "SELECT code_hash, client_id, user_id, redirect_uri, code_challenge, expires_at, user_version FROM authorization_codes WHERE code_hash = $h",
                ("$h", codeHash));
            await using var r = await read.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return (CodeRedemption.Unknown, (AuthorizationCode?)null);
            var code = new AuthorizationCode(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), StringOrNull(r, 4), Time(r.GetInt64(5)),
                r.GetInt64(6));
            return (updated == 1 ? CodeRedemption.Redeemed : CodeRedemption.AlreadyRedeemed, code);
        }, ct);
}
