using System.Collections.Concurrent;
using System.Security.Cryptography;
using Parley.Core;

namespace Parley.Server.OAuth;

/// <summary>
/// OAuth clients as the Platform API's token check sees them, cached for <see cref="Ttl"/> so a call costs a dictionary
/// lookup. A change made through this node (update, new secret, delete) is seen at once; another node's within the TTL.
/// </summary>
public sealed class ClientDirectory(ICredentialStore store, TimeProvider clock)
{
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);
    readonly ConcurrentDictionary<string, (OAuthClient? Client, Caller? Caller, DateTimeOffset Until)> _cache = new();

    public ICredentialStore Store => store;

    /// <summary>The client behind a token and the caller it makes (its current permissions), or nulls if it is gone.</summary>
    public async ValueTask<(OAuthClient? Client, Caller? Caller)> GetAsync(string id, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (_cache.TryGetValue(id, out var hit) && hit.Until > now) return (hit.Client, hit.Caller);
        var client = await store.GetClientAsync(id, ct);
        var caller = client is null ? null : new Caller(client.Id, [.. client.Permissions]);
        if (_cache.Count > 10_000) _cache.Clear();
        _cache[id] = (client, caller, now + Ttl);
        return (client, caller);
    }

    public async Task SaveAsync(OAuthClient client, CredentialAudit audit, CancellationToken ct)
    {
        await store.SaveClientAsync(client, audit, ct);
        _cache.TryRemove(client.Id, out _);
    }

    public async Task<bool> DeleteAsync(string id, CredentialAudit audit, CancellationToken ct)
    {
        var deleted = await store.DeleteClientAsync(id, audit, ct);
        _cache.TryRemove(id, out _);
        return deleted;
    }
}

/// <summary>
/// Keeps <see cref="Tokens"/>' key ring in step with the store: loaded at start, reloaded every
/// <see cref="ParleyOptions.SigningKeyRefresh"/> (so keys rotated through another node, and retirements, take effect),
/// and at once after a rotation through this node.
/// </summary>
public sealed class SigningKeys(ICredentialStore store, Tokens tokens, byte[] originalKey, ParleyOptions options, TimeProvider clock,
    ILoggerFactory loggers, StoreOutages outages) : BackgroundService
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.OAuth);
    public async Task RefreshAsync(CancellationToken ct) => tokens.Load(await store.ListSigningKeysAsync(ct), originalKey);

    /// <summary>
    /// A new key, signing from <paramref name="activateAfter"/> from now; every older key keeps verifying for
    /// <paramref name="overlap"/>, then retires (tokens it signed stop working).
    /// </summary>
    public async Task<SigningKey> RotateAsync(TimeSpan overlap, TimeSpan activateAfter, string byClientId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var key = new SigningKey(Guid.NewGuid().ToString("N")[..12], RandomNumberGenerator.GetBytes(32), now, now + activateAfter, null);
        var retireAt = now + activateAfter + overlap;
        await store.AddSigningKeyAsync(key, retireAt, new CredentialAudit(Guid.NewGuid().ToString(), CredentialAction.SigningKeyRotated,
            key.Kid, byClientId, now, $"previous keys retire at {Parley.Protocol.Wire.Time(retireAt)}"), ct);
        await RefreshAsync(ct);
        _log.SigningKeyRotated(byClientId, key.Kid, key.SignsFrom, retireAt);
        return key;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.SigningKeyRefresh, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try { await RefreshAsync(stoppingToken); }
                // The store cannot be reached: the keys already loaded keep verifying; the next period tries again.
                catch (StoreUnavailableException e) { outages.Failed("reloading the token-signing keys", e); }
                catch (Exception e) when (e is not OperationCanceledException) { _log.SigningKeysReloadFailed(e); }
            }
        }
        catch (OperationCanceledException) { }
    }
}
