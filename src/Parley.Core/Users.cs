using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>
/// A person who logs in (the console, a browser app using the code or implicit grant). <see cref="Username"/> is unique,
/// compared without case (stored lower-case). <see cref="Roles"/> name the roles (admin, supervisor, …) whose permissions
/// the user's tokens carry, read at every call. The password is kept only as a salted, slow hash.
/// <see cref="CredentialVersion"/> goes up when the password or the roles change: tokens carry the version they were
/// issued under, so such a change ends every token issued before it (as <see cref="OAuthClient.CredentialVersion"/>).
/// </summary>
public sealed record User(
    string Id,
    string Name,
    string Username,
    string? Email,
    ImmutableArray<string> Roles,
    string PasswordHash,
    DateTimeOffset DateCreated,
    DateTimeOffset DateModified,
    long CredentialVersion = 0)
{
    public static string Normalize(string username) => username.Trim().ToLowerInvariant();
}

/// <summary>
/// An authorization code (RFC 6749 §4.1.2) as stored: only the code's hash, the client, user and redirect URI it is bound
/// to, the PKCE challenge (RFC 7636, S256) when the request carried one, and its expiry. Kept in the store so that any
/// node can redeem a code another node issued; redeemed at most once.
/// </summary>
public sealed record AuthorizationCode(
    string CodeHash,
    string ClientId,
    string UserId,
    string RedirectUri,
    string? CodeChallenge,
    DateTimeOffset ExpiresAt,
    long UserCredentialVersion);

public enum CodeRedemption { Redeemed, AlreadyRedeemed, Unknown }

/// <summary>
/// Users, and the authorization codes issued to them. A user change and its audit row (in the credential audit) commit
/// together. <see cref="RedeemCodeAsync"/> is one atomic step (a conditional update whose row count decides): two nodes
/// redeeming the same code at once, one wins and the other is told <see cref="CodeRedemption.AlreadyRedeemed"/>.
/// </summary>
public interface IUserStore
{
    Task<User?> GetUserAsync(string id, CancellationToken ct);
    /// <summary>The user with this username (any case), or null.</summary>
    Task<User?> FindByUsernameAsync(string username, CancellationToken ct);
    Task<Page<User>> ListUsersAsync(int pageSize, int pageNumber, CancellationToken ct);
    /// <summary>Creates or replaces the user (by id). False, with nothing written, when another user holds the username.</summary>
    Task<bool> SaveUserAsync(User user, CredentialAudit audit, CancellationToken ct);
    Task<bool> DeleteUserAsync(string id, CredentialAudit audit, CancellationToken ct);

    /// <summary>Stores a new code; codes expired before <paramref name="purgeBefore"/> are deleted in the same write.</summary>
    Task SaveCodeAsync(AuthorizationCode code, DateTimeOffset purgeBefore, CancellationToken ct);
    /// <summary>Marks the code redeemed if it was not yet, and answers it (whatever the outcome, when it exists).</summary>
    Task<(CodeRedemption Outcome, AuthorizationCode? Code)> RedeemCodeAsync(string codeHash, DateTimeOffset now, CancellationToken ct);
}
