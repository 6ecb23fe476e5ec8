using Parley.Core;
using System.Collections.Concurrent;
using System.Net;

namespace Parley.Server.OAuth;

/// <summary>
/// Throttles failed client authentications on the token endpoint. Three token buckets, each holding up to its limit of
/// failures and refilling over <see cref="ParleyOptions.OAuthFailureWindow"/>; a failure takes one, and an empty bucket
/// refuses the next attempt with 429 before any secret is checked:
/// <list type="bullet">
/// <item>per (client id, address): guessing one client's secret from one address;</item>
/// <item>per address: one address trying many client ids;</item>
/// <item>per client id, from addresses that have not authenticated as that client before: many addresses guessing one client.</item>
/// </list>
/// No bucket is a lock on the client id alone: an address where the client has authenticated keeps getting tokens while
/// others hammer its id (lockout would otherwise be a denial of service anyone could cause).
/// With the Redis backplane the counts are shared by every node (<see cref="ISharedTokenThrottle"/>): Redis decides while
/// it answers; when it does not, this node's own buckets (kept up to date all along) decide.
/// </summary>
public sealed class TokenThrottle(ParleyOptions options, TimeProvider clock, ISharedTokenThrottle? shared = null)
{
    /// <summary><see cref="Check"/>, against every node's failures when they are shared and reachable.</summary>
    public async Task<TimeSpan?> CheckAsync(string clientId, IPAddress? address, CancellationToken ct)
    {
        if (shared is not null && await shared.CheckAsync(clientId, address?.ToString() ?? "", ct) is { } wait)
            return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
        return Check(clientId, address);
    }

    public async Task FailedAsync(string clientId, IPAddress? address, CancellationToken ct)
    {
        Failed(clientId, address);
        if (shared is not null) await shared.FailedAsync(clientId, address?.ToString() ?? "", ct);
    }

    public async Task SucceededAsync(string clientId, IPAddress? address, CancellationToken ct)
    {
        Succeeded(clientId, address);
        if (shared is not null) await shared.SucceededAsync(clientId, address?.ToString() ?? "", ct);
    }

    sealed class Bucket(double tokens, long at)
    {
        public double Tokens = tokens;
        public long At = at;   // clock ticks (ms) of the last refill
    }

    const int MaxEntries = 100_000;
    readonly ConcurrentDictionary<string, Bucket> _buckets = new();
    // (client, address) pairs that authenticated, so the per-client bucket does not apply to them: a bounded set.
    readonly ConcurrentDictionary<string, long> _known = new();

    static string PairKey(string clientId, IPAddress? address) => "p\n" + clientId + "\n" + address;
    static string AddressKey(IPAddress? address) => "a\n" + address;
    static string ClientKey(string clientId) => "c\n" + clientId;

    /// <summary>Null when the attempt may go ahead; otherwise how long the caller must wait.</summary>
    public TimeSpan? Check(string clientId, IPAddress? address)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var wait = Math.Max(Wait(PairKey(clientId, address), options.OAuthMaxFailuresPerClientAddress, now),
            Wait(AddressKey(address), options.OAuthMaxFailuresPerAddress, now));
        if (!_known.ContainsKey(PairKey(clientId, address)))
            wait = Math.Max(wait, Wait(ClientKey(clientId), options.OAuthMaxFailuresPerClient, now));
        return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
    }

    public void Failed(string clientId, IPAddress? address)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        Take(PairKey(clientId, address), options.OAuthMaxFailuresPerClientAddress, now);
        Take(AddressKey(address), options.OAuthMaxFailuresPerAddress, now);
        if (!_known.ContainsKey(PairKey(clientId, address))) Take(ClientKey(clientId), options.OAuthMaxFailuresPerClient, now);
    }

    readonly ConcurrentDictionary<string, long> _reported = new();

    /// <summary>
    /// Whether a refusal is worth a log line: the first for a (client, address) in 10 s, so a flood of throttled
    /// attempts is seen without flooding the log.
    /// </summary>
    public bool ShouldReport(string clientId, IPAddress? address)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var key = PairKey(clientId, address);
        if (_reported.TryGetValue(key, out var last) && now - last < 10_000) return false;
        if (_reported.Count >= MaxEntries) _reported.Clear();
        _reported[key] = now;
        return true;
    }

    public void Succeeded(string clientId, IPAddress? address)
    {
        var pair = PairKey(clientId, address);
        _buckets.TryRemove(pair, out _);
        if (_known.Count >= MaxEntries) _known.Clear();
        _known[pair] = clock.GetUtcNow().ToUnixTimeMilliseconds();
    }

    double RefillPerMs(int limit) => limit / Math.Max(1, options.OAuthFailureWindow.TotalMilliseconds);

    void Refill(Bucket b, int limit, long now)
    {
        b.Tokens = Math.Min(limit, b.Tokens + (now - b.At) * RefillPerMs(limit));
        b.At = now;
    }

    /// <summary>Milliseconds until the bucket holds a whole token again (0: it does).</summary>
    long Wait(string key, int limit, long now)
    {
        if (limit <= 0 || !_buckets.TryGetValue(key, out var b)) return 0;
        lock (b)
        {
            Refill(b, limit, now);
            return b.Tokens >= 1 ? 0 : (long)Math.Ceiling((1 - b.Tokens) / RefillPerMs(limit));
        }
    }

    void Take(string key, int limit, long now)
    {
        if (limit <= 0) return;
        if (_buckets.Count >= MaxEntries) Sweep(now);
        var b = _buckets.GetOrAdd(key, _ => new Bucket(limit, now));
        lock (b)
        {
            Refill(b, limit, now);
            b.Tokens = Math.Max(0, b.Tokens - 1);
        }
    }

    /// <summary>Forgets buckets that have refilled (they hold no state worth keeping); bounds memory under a spray of ids.</summary>
    void Sweep(long now)
    {
        foreach (var (key, b) in _buckets)
        {
            var limit = key[0] switch { 'p' => options.OAuthMaxFailuresPerClientAddress, 'a' => options.OAuthMaxFailuresPerAddress, _ => options.OAuthMaxFailuresPerClient };
            lock (b) Refill(b, limit, now);
            if (b.Tokens >= limit) _buckets.TryRemove(key, out _);
        }
        if (_buckets.Count >= MaxEntries) _buckets.Clear();   // still full: every entry is live; start over rather than grow
    }
}
