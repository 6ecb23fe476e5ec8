using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>A web messaging deployment: where guests connect, from which origins, and what ending a conversation does.</summary>
public sealed record Deployment(
    string Id,
    string Name,
    ImmutableArray<string> AllowedOrigins,
    bool DisconnectEnabled,
    DisconnectMode DisconnectType,
    bool ClearEnabled,
    DateTimeOffset DateCreated)
{
    /// <summary>What conversations started now will do when ended from the platform side.</summary>
    public DisconnectMode EffectiveDisconnectMode => DisconnectEnabled ? DisconnectType : DisconnectMode.None;

    /// <summary>No Origin header (a server-side client) is allowed; browsers always send one.</summary>
    public bool AllowsOrigin(string? origin) =>
        string.IsNullOrEmpty(origin) || AllowedOrigins.Any(o => o == "*" || string.Equals(o, origin, StringComparison.OrdinalIgnoreCase));
}

/// <summary>An OAuth client allowed the client-credentials grant. The secret is kept only as a salted hash.</summary>
public sealed record OAuthClient(
    string Id,
    string Name,
    string SecretHash,
    ImmutableArray<string> Permissions,
    DateTimeOffset DateCreated)
{
    public bool Has(string permission) => Permissions.Contains("*") || Permissions.Contains(permission);
}

public interface IDirectoryStore
{
    Task<Deployment?> GetDeploymentAsync(string id, CancellationToken ct);
    Task<IReadOnlyList<Deployment>> ListDeploymentsAsync(CancellationToken ct);
    Task UpsertDeploymentAsync(Deployment deployment, CancellationToken ct);
    Task<bool> DeleteDeploymentAsync(string id, CancellationToken ct);
    Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct);
    Task UpsertClientAsync(OAuthClient client, CancellationToken ct);
    /// <summary>The key that signs access tokens and guest JWTs; created once, shared by every node on the store.</summary>
    Task<byte[]> GetOrCreateSigningKeyAsync(Func<byte[]> create, CancellationToken ct);
}
