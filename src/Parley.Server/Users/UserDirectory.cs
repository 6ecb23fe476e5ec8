using System.Collections.Concurrent;
using Parley.Core;
using Parley.Server.Notifications;
using Parley.Server.OAuth;

namespace Parley.Server.Users;

/// <summary>
/// Users as the Platform API's token check sees them, cached for <see cref="ClientDirectory.Ttl"/> like clients: a user's
/// token is good while its user exists under the same credential version (password and roles unchanged), and carries the
/// permissions of the user's roles now, within its client's. A change through this node is seen at once; another node's
/// within the TTL. When a user is deleted, or their credentials change (password or roles: a new credential version), the
/// notification channels they created are closed on every node (docs/notifications.md).
/// </summary>
public sealed class UserDirectory(IUserStore store, TimeProvider clock, NotificationHub hub)
{
    readonly ConcurrentDictionary<string, (User? User, DateTimeOffset Until)> _cache = new();

    public IUserStore Store => store;

    public async ValueTask<User?> GetAsync(string id, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (_cache.TryGetValue(id, out var hit) && hit.Until > now) return hit.User;
        var user = await store.GetUserAsync(id, ct);
        if (_cache.Count > 10_000) _cache.Clear();
        _cache[id] = (user, now + ClientDirectory.Ttl);
        return user;
    }

    /// <summary>The caller a user's token makes through <paramref name="client"/>, or null when the token no longer holds.</summary>
    public async ValueTask<Caller?> CallerAsync(OAuthClient client, string userId, long userVersion, CancellationToken ct)
    {
        if (await GetAsync(userId, ct) is not { } user || user.CredentialVersion != userVersion) return null;
        return new Caller(client.Id, Roles.Within(Roles.PermissionsOf(user.Roles), client.Permissions), user.Id, user.Name);
    }

    public async Task<bool> SaveAsync(User user, CredentialAudit audit, CancellationToken ct)
    {
        var before = await store.GetUserAsync(user.Id, ct);
        var saved = await store.SaveUserAsync(user, audit, ct);
        _cache.TryRemove(user.Id, out _);
        if (saved && before is not null && before.CredentialVersion != user.CredentialVersion) hub.CloseUser(user.Id);
        return saved;
    }

    public async Task<bool> DeleteAsync(string id, CredentialAudit audit, CancellationToken ct)
    {
        var deleted = await store.DeleteUserAsync(id, audit, ct);
        _cache.TryRemove(id, out _);
        if (deleted) hub.CloseUser(id);
        return deleted;
    }
}

/// <summary>
/// Who a Platform token speaks for, users included (replaces the client-only resolver): a token whose claims name a user
/// (<c>uid</c>, <c>uv</c>) is good while its client is unchanged (<c>sub</c>, <c>cv</c>) and its user exists under the same
/// credential version; its permissions are the user's roles' now, within the client's. Any other token is the client's.
/// </summary>
sealed class UserAndClientCallers(ClientDirectory clients, UserDirectory users) : ICallerResolver
{
    public async ValueTask<Caller?> ResolveAsync(System.Security.Claims.ClaimsPrincipal principal, CancellationToken ct)
    {
        var clientId = principal.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(clientId)) return null;
        var version = long.TryParse(principal.FindFirst("cv")?.Value, out var cv) ? cv : 0;
        var (client, caller) = await clients.GetAsync(clientId, ct);
        if (client is null || client.CredentialVersion != version) return null;
        if (principal.FindFirst("uid")?.Value is not { Length: > 0 } userId) return caller;
        return await users.CallerAsync(client, userId, long.TryParse(principal.FindFirst("uv")?.Value, out var uv) ? uv : -1, ct);
    }
}
