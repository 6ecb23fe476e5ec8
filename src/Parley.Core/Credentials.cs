namespace Parley.Core;

/// <summary>One change to a credential: an OAuth client or a user created, updated, given a new secret or password, or deleted, or a signing key rotated.</summary>
public sealed record CredentialAudit(
    string Id,
    CredentialAction Action,
    string EntityId,
    string ByClientId,
    DateTimeOffset At,
    string? Detail = null);

public enum CredentialAction
{
    ClientCreated, ClientUpdated, ClientSecretRegenerated, ClientDeleted, SigningKeyRotated,
    // Users (docs/users.md).
    UserCreated, UserUpdated, UserDeleted, UserPasswordChanged, AuthorizationCodeReplayed,
}

/// <summary>
/// A key that signs and verifies tokens. The newest key whose <see cref="SignsFrom"/> has passed signs; every key not
/// yet retired verifies. <see cref="Key"/> is null for the original key, which lives where it always did (kid "1").
/// </summary>
public sealed record SigningKey(string Kid, byte[]? Key, DateTimeOffset CreatedAt, DateTimeOffset SignsFrom, DateTimeOffset? RetiresAt)
{
    public const string OriginalKid = "1";
    public bool IsRetired(DateTimeOffset now) => RetiresAt is { } at && at <= now;
}

/// <summary>OAuth clients, their audit trail and the token-signing keys. Each change and its audit row commit together.</summary>
public interface ICredentialStore
{
    Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct);
    Task<Page<OAuthClient>> ListClientsAsync(int pageSize, int pageNumber, CancellationToken ct);
    Task SaveClientAsync(OAuthClient client, CredentialAudit audit, CancellationToken ct);
    Task<bool> DeleteClientAsync(string id, CredentialAudit audit, CancellationToken ct);
    Task<Page<CredentialAudit>> ListCredentialAuditAsync(string? entityId, int pageSize, int pageNumber, CancellationToken ct);

    Task<IReadOnlyList<SigningKey>> ListSigningKeysAsync(CancellationToken ct);
    /// <summary>Adds <paramref name="key"/> and sets every other key still verifying to retire at <paramref name="othersRetireAt"/> (never later than it already would).</summary>
    Task AddSigningKeyAsync(SigningKey key, DateTimeOffset othersRetireAt, CredentialAudit audit, CancellationToken ct);
}

/// <summary>
/// The token endpoint's failed-authentication counts kept where every node sees them (with the Redis backplane), so that
/// guesses spread over N nodes meet one limit, not N. Keys are (client, address), address, and client from addresses
/// that have not authenticated as it; each counts failures in a window started by its first failure. Every call answers
/// null (or false) when the shared counts cannot be reached: the caller then counts on its own node.
/// </summary>
public interface ISharedTokenThrottle
{
    /// <summary>Milliseconds until the attempt may go ahead (0: now); null: unreachable.</summary>
    Task<long?> CheckAsync(string clientId, string address, CancellationToken ct);
    Task<bool> FailedAsync(string clientId, string address, CancellationToken ct);
    Task<bool> SucceededAsync(string clientId, string address, CancellationToken ct);
}
