using System.Collections.Concurrent;

namespace Parley.Server.GuestApi;

/// <summary>
/// A token bucket per guest session for onMessage (spec §1.11: the platform allows 2 per session per second): a burst
/// of the rate, refilled continuously. In memory on this node; bounded by clearing when it grows past many sessions.
/// </summary>
public sealed class GuestRateLimiter(TimeProvider clock)
{
    sealed class Bucket(double tokens, long at)
    {
        public double Tokens = tokens;
        public long At = at;
    }

    readonly ConcurrentDictionary<string, Bucket> _buckets = new();

    /// <summary>Takes one request's token; false with the seconds until the next one when the session is over its rate.</summary>
    public bool TryTake(string sessionId, int perSecond, out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        var now = clock.GetTimestamp();
        if (_buckets.Count > 200_000) _buckets.Clear();
        var bucket = _buckets.GetOrAdd(sessionId, _ => new Bucket(perSecond, now));
        lock (bucket)
        {
            var elapsed = clock.GetElapsedTime(bucket.At, now).TotalSeconds;
            bucket.Tokens = Math.Min(perSecond, bucket.Tokens + elapsed * perSecond);
            bucket.At = now;
            if (bucket.Tokens >= 1) { bucket.Tokens -= 1; return true; }
            retryAfterSeconds = (int)Math.Ceiling((1 - bucket.Tokens) / perSecond);
            return false;
        }
    }
}
