using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Parley.Server.GuestApi;

/// <summary>
/// Token buckets for guest onMessage: one per guest session (docs/compatibility.md §Guest limits: the platform allows 2 per session per second,
/// a burst of the rate) and one per client address across all its sessions, so switching tokens does not multiply
/// the rate. Buckets refill continuously. In memory on this node; idle buckets are swept when there are many.
/// </summary>
public sealed class GuestRateLimiter(TimeProvider clock)
{
    sealed class Bucket(double tokens, long at)
    {
        public double Tokens = tokens;
        public long At = at;
    }

    /// <summary>Above this many buckets of a kind, full (idle) ones are swept; if that is not enough, all are dropped.</summary>
    const int SweepAt = 100_000;

    readonly ConcurrentDictionary<string, Bucket> _sessions = new();
    readonly ConcurrentDictionary<string, Bucket> _addresses = new();

    /// <summary>Takes one request's token from the session's bucket; false with the seconds until the next one.</summary>
    public bool TryTakeForSession(string sessionId, int perSecond, out int retryAfterSeconds) =>
        TryTake(_sessions, sessionId, perSecond, perSecond, out retryAfterSeconds);

    /// <summary>Takes one request's token from the client address's bucket (burst: two seconds' worth); 0 is no limit.</summary>
    public bool TryTakeForAddress(IPAddress? address, int perSecond, out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        if (perSecond <= 0 || address is null) return true;
        return TryTake(_addresses, AddressKey(address), perSecond, 2.0 * perSecond, out retryAfterSeconds);
    }

    /// <summary>
    /// Gives back the tokens one request took (it was not served: the store could not take it). The next take caps the
    /// bucket at its burst again.
    /// </summary>
    public void Refund(string sessionId, IPAddress? address, int perAddressPerSecond)
    {
        Refund(_sessions, sessionId);
        if (perAddressPerSecond > 0 && address is not null) Refund(_addresses, AddressKey(address));
    }

    static void Refund(ConcurrentDictionary<string, Bucket> buckets, string key)
    {
        if (!buckets.TryGetValue(key, out var bucket)) return;
        lock (bucket) bucket.Tokens += 1;
    }

    /// <summary>
    /// IPv4 (also IPv4-mapped IPv6) by address; IPv6 by its /64, the block one subscriber is usually given, so one
    /// machine cannot walk its own block to get a fresh bucket per address.
    /// </summary>
    public static string AddressKey(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return address.ToString();
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    bool TryTake(ConcurrentDictionary<string, Bucket> buckets, string key, int perSecond, double burst, out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        var now = clock.GetTimestamp();
        if (buckets.Count > SweepAt) Sweep(buckets, now, perSecond, burst);
        var bucket = buckets.GetOrAdd(key, static (_, state) => new Bucket(state.burst, state.now), (burst, now));
        lock (bucket)
        {
            var elapsed = clock.GetElapsedTime(bucket.At, now).TotalSeconds;
            bucket.Tokens = Math.Min(burst, bucket.Tokens + elapsed * perSecond);
            bucket.At = now;
            if (bucket.Tokens >= 1) { bucket.Tokens -= 1; return true; }
            retryAfterSeconds = Math.Max(1, (int)Math.Ceiling((1 - bucket.Tokens) / perSecond));
            return false;
        }
    }

    /// <summary>A bucket idle long enough to be full again holds no information: forget it.</summary>
    void Sweep(ConcurrentDictionary<string, Bucket> buckets, long now, int perSecond, double burst)
    {
        var refill = TimeSpan.FromSeconds(burst / perSecond);
        foreach (var (key, bucket) in buckets)
            if (clock.GetElapsedTime(Volatile.Read(ref bucket.At), now) >= refill) buckets.TryRemove(key, out _);
        if (buckets.Count > SweepAt) buckets.Clear();   // all busy: a crude bound beats unbounded memory
    }
}
