using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>
/// A routing queue (the platform's <c>Queue</c>): where the conversations of a deployment or an integration are routed.
/// Every deployment and integration names one; a conversation records the queue it started on.
/// </summary>
public sealed record Queue(
    string Id,
    string Name,
    string? Description,
    DateTimeOffset DateCreated,
    DateTimeOffset DateModified,
    string? CreatedBy = null,
    string? ModifiedBy = null)
{
    /// <summary>The longest name a queue may have (the platform does not document one; this bounds what is stored and echoed).</summary>
    public const int MaxNameLength = 200;
    public const int MaxDescriptionLength = 1000;
}

/// <summary>
/// A queue listing's filter, as the platform's <c>GET /api/v2/routing/queues</c> takes it. <see cref="Name"/> is matched
/// whole and without regard to case; a leading and/or trailing <c>*</c> makes it a suffix, prefix or substring match.
/// Sorted by name (<see cref="Descending"/> reverses it), then id.
/// </summary>
public sealed record QueueFilter(string? Name = null, IReadOnlyList<string>? Ids = null, bool Descending = false, int PageSize = 25, int PageNumber = 1)
{
    /// <summary>
    /// The name pattern as SQL LIKE text over <see cref="NameKey"/> (escape character <c>\</c>): the caller's <c>%</c>,
    /// <c>_</c> and <c>\</c> match themselves.
    /// </summary>
    public string? LikePattern()
    {
        if (Name is null) return null;
        var core = NameKey(Name);
        var leading = core.StartsWith('*');
        if (leading) core = core[1..];
        var trailing = core.EndsWith('*');
        if (trailing) core = core[..^1];
        var escaped = core.Replace(@"\", @"\\").Replace("%", @"\%").Replace("_", @"\_");
        return (leading ? "%" : "") + escaped + (trailing ? "%" : "");
    }

    /// <summary>
    /// What names are matched and sorted on, stored beside the name: lower-cased here, so both adapters compare alike
    /// (SQLite's LIKE and lower() fold ASCII letters only).
    /// </summary>
    public static string NameKey(string name) => name.ToLowerInvariant();
}

/// <summary>A web messaging deployment: where guests connect, from which origins, and what ending a conversation does.</summary>
public sealed record Deployment(
    string Id,
    string Name,
    ImmutableArray<string> AllowedOrigins,
    bool DisconnectEnabled,
    DisconnectMode DisconnectType,
    bool ClearEnabled,
    DateTimeOffset DateCreated,
    TimeSpan? InactivityTimeout = null,
    int GuestMessagesPerSecond = Deployment.PlatformGuestMessagesPerSecond)
{
    /// <summary>The platform's documented guest onMessage rate (docs/compatibility.md §Guest limits): every deployment's default.</summary>
    public const int PlatformGuestMessagesPerSecond = 2;
    /// <summary>The most a deployment may raise it to (there is no "off": an unlimited guest is a storage attack).</summary>
    public const int MaxGuestMessagesPerSecond = 10_000;

    /// <summary>What conversations started now will do when ended from the platform side.</summary>
    public DisconnectMode EffectiveDisconnectMode => DisconnectEnabled ? DisconnectType : DisconnectMode.None;

    /// <summary>The queue its conversations are routed to.</summary>
    public required string QueueId { get; init; }

    public ChannelSettings Settings => new(ChannelKind.WebMessaging, Id, EffectiveDisconnectMode, InactivityTimeout: InactivityTimeout, QueueId: QueueId);

    /// <summary>No Origin header (a server-side client) is allowed; browsers always send one.</summary>
    public bool AllowsOrigin(string? origin) =>
        string.IsNullOrEmpty(origin) || AllowedOrigins.Any(o => o == "*" || string.Equals(o, origin, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// An OAuth client and the one grant it is allowed (<see cref="AuthorizedGrantType"/>, the platform's enum: client
/// credentials, or for browser apps CODE or TOKEN, redirecting only to a <see cref="RegisteredRedirectUris"/> entry).
/// The secret is kept only as a salted hash. <see cref="CredentialVersion"/> goes up when the secret is regenerated:
/// tokens carry the version they were issued under, so a rotation ends every token issued before it.
/// </summary>
public sealed record OAuthClient(
    string Id,
    string Name,
    string SecretHash,
    ImmutableArray<string> Permissions,
    DateTimeOffset DateCreated,
    string? Description = null,
    DateTimeOffset? DateModified = null,
    string? CreatedBy = null,
    string? ModifiedBy = null,
    long CredentialVersion = 0,
    string AuthorizedGrantType = OAuthClient.ClientCredentials,
    ImmutableArray<string> RegisteredRedirectUris = default)
{
    /// <summary>
    /// The secret hash of a public client (a browser app, RFC 6749 §2.1): it has no secret, matches none, and so can only
    /// redeem authorization codes bound to a PKCE challenge.
    /// </summary>
    public const string NoSecret = "none";
    public bool IsPublic => SecretHash == NoSecret;

    public const string ClientCredentials = "CLIENT-CREDENTIALS";
    public const string Code = "CODE";
    public const string Token = "TOKEN";

    public ImmutableArray<string> RedirectUris => RegisteredRedirectUris.IsDefault ? [] : RegisteredRedirectUris;

    public bool Has(string permission) => Permissions.Contains("*") || Permissions.Contains(permission);
}

/// <summary>
/// An Open Messaging integration: a third-party channel whose middleware posts inbound messages to Parley and receives
/// outbound ones on its webhook, signed with <see cref="SecretToken"/>. <see cref="InboundAfterEnd"/> says what an
/// inbound message does after the business ended the conversation (refused, or a new conversation);
/// <see cref="DisconnectNotification"/> sends the channel a Presence Disconnect event when it ends (a Parley extension).
/// </summary>
public sealed record OpenIntegration(
    string Id,
    string Name,
    string WebhookUrl,
    string SecretToken,
    ImmutableDictionary<string, string> WebhookHeaders,
    bool DisconnectNotification,
    DisconnectMode InboundAfterEnd,
    DateTimeOffset DateCreated,
    DateTimeOffset DateModified,
    string CreatedBy,
    string ModifiedBy)
{
    /// <summary>The queue its conversations are routed to.</summary>
    public required string QueueId { get; init; }

    public ChannelSettings Settings(string? customerName) => new(ChannelKind.Open, Id, InboundAfterEnd, customerName, QueueId: QueueId);

    /// <summary>The secret a rotation replaced: it still verifies and still signs, beside the new one, until <see cref="PreviousSecretExpiresAt"/>.</summary>
    public string? PreviousSecretToken { get; init; }
    public DateTimeOffset? PreviousSecretExpiresAt { get; init; }

    /// <summary>The secrets in force at <paramref name="now"/>: the current one first, then the old one during a rotation's overlap.</summary>
    public IReadOnlyList<string> SecretsInForce(DateTimeOffset now) =>
        PreviousSecretToken is { } previous && PreviousSecretExpiresAt > now ? [SecretToken, previous] : [SecretToken];

    /// <summary>
    /// Replaces the secret. The old one stays in force for <paramref name="overlap"/> (none when zero); an earlier
    /// rotation's old secret, if still in force, is dropped: at most two secrets at a time.
    /// </summary>
    public OpenIntegration RotateSecret(string secret, TimeSpan overlap, DateTimeOffset now) =>
        secret == SecretToken ? this
        : overlap > TimeSpan.Zero ? this with { SecretToken = secret, PreviousSecretToken = SecretToken, PreviousSecretExpiresAt = now + overlap }
        : this with { SecretToken = secret, PreviousSecretToken = null, PreviousSecretExpiresAt = null };

    /// <summary>Brings the end of the current overlap forward to <paramref name="now"/> + <paramref name="overlap"/>; never extends it.</summary>
    public OpenIntegration ShortenOverlap(TimeSpan overlap, DateTimeOffset now) =>
        PreviousSecretExpiresAt is { } end && now + overlap < end ? this with { PreviousSecretExpiresAt = now + overlap } : this;
}

/// <summary>
/// Configuration every node shares: queues, integrations, deployments, OAuth clients, the token-signing key. Each write is one
/// atomic statement (an upsert replaces the whole row; a delete answers whether a row went); the last writer wins.
/// <see cref="GetOrCreateSigningKeyAsync"/> is insert-if-absent: nodes starting at once all end with the one key stored.
/// </summary>
public interface IDirectoryStore
{
    Task<OpenIntegration?> GetIntegrationAsync(string id, CancellationToken ct);
    Task<Page<OpenIntegration>> ListIntegrationsAsync(int pageSize, int pageNumber, CancellationToken ct);
    Task UpsertIntegrationAsync(OpenIntegration integration, CancellationToken ct);
    Task<bool> DeleteIntegrationAsync(string id, CancellationToken ct);
    Task<Deployment?> GetDeploymentAsync(string id, CancellationToken ct);
    Task<Page<Deployment>> ListDeploymentsAsync(int pageSize, int pageNumber, CancellationToken ct);
    Task UpsertDeploymentAsync(Deployment deployment, CancellationToken ct);
    Task<bool> DeleteDeploymentAsync(string id, CancellationToken ct);
    Task<Queue?> GetQueueAsync(string id, CancellationToken ct);
    Task<Page<Queue>> ListQueuesAsync(QueueFilter filter, CancellationToken ct);
    Task UpsertQueueAsync(Queue queue, CancellationToken ct);
    Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct);
    Task UpsertClientAsync(OAuthClient client, CancellationToken ct);
    /// <summary>The key that signs access tokens and guest JWTs; created once, shared by every node on the store.</summary>
    Task<byte[]> GetOrCreateSigningKeyAsync(Func<byte[]> create, CancellationToken ct);
}
