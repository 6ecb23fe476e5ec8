using System.Security.Cryptography;
using System.Text;
using Parley.Core;
using StackExchange.Redis;

namespace Parley.Backplane.Redis;

/// <summary>The token endpoint's failure limits and window, as the node's settings give them.</summary>
public sealed record TokenFailureLimits(int PerClientAddress, int PerAddress, int PerClient, TimeSpan Window);

/// <summary>
/// Failed token requests counted in Redis: one script call (one round trip) per check and per failure. A counter key per
/// bucket (INCR, expiring one window after its first failure); the client id and address are hashed into the key, never
/// stored. An address that authenticated as a client is remembered for a day, exempting it from that client's bucket.
/// </summary>
public sealed class RedisTokenThrottle(IConnectionMultiplexer redis, string prefix, TokenFailureLimits limits) : ISharedTokenThrottle
{
    static readonly TimeSpan KnownFor = TimeSpan.FromDays(1);

    /// <summary>KEYS: pair, address, client, known. ARGV: the three limits. Returns the longest wait (ms) of a full bucket.</summary>
    const string CheckScript = """
        local wait = 0
        local function over(key, limit)
          if tonumber(limit) <= 0 then return end
          if tonumber(redis.call('GET', key) or '0') >= tonumber(limit) then
            local ttl = redis.call('PTTL', key)
            if ttl > wait then wait = ttl end
          end
        end
        over(KEYS[1], ARGV[1])
        over(KEYS[2], ARGV[2])
        if redis.call('EXISTS', KEYS[4]) == 0 then over(KEYS[3], ARGV[3]) end
        return wait
        """;

    /// <summary>KEYS: pair, address, client, known. ARGV: window (ms), the three limits (a limit of 0 counts nothing).</summary>
    const string FailedScript = """
        local function count(key, limit)
          if tonumber(limit) <= 0 then return end
          if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
        end
        count(KEYS[1], ARGV[2])
        count(KEYS[2], ARGV[3])
        if redis.call('EXISTS', KEYS[4]) == 0 then count(KEYS[3], ARGV[4]) end
        return 1
        """;

    /// <summary>A Redis that does not answer within this is treated as unreachable: the node counts on its own.</summary>
    static readonly TimeSpan Bound = TimeSpan.FromMilliseconds(500);

    RedisKey[] Keys(string clientId, string address) =>
    [
        Key("pair", clientId + "\n" + address), Key("address", address), Key("client", clientId), Key("known", clientId + "\n" + address),
    ];

    RedisKey Key(string kind, string value) =>
        $"{prefix}oauth:{kind}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)).AsSpan(0, 16))}";

    public async Task<long?> CheckAsync(string clientId, string address, CancellationToken ct)
    {
        if (!redis.IsConnected) return null;
        try
        {
            var result = await redis.GetDatabase().ScriptEvaluateAsync(CheckScript, Keys(clientId, address),
                [limits.PerClientAddress, limits.PerAddress, limits.PerClient]).WaitAsync(Bound, ct);
            return Math.Max(0, (long)result);
        }
        catch (Exception e) when (e is RedisException or TimeoutException) { return null; }
    }

    public async Task<bool> FailedAsync(string clientId, string address, CancellationToken ct)
    {
        if (!redis.IsConnected) return false;
        try
        {
            await redis.GetDatabase().ScriptEvaluateAsync(FailedScript, Keys(clientId, address),
                [(long)limits.Window.TotalMilliseconds, limits.PerClientAddress, limits.PerAddress, limits.PerClient]).WaitAsync(Bound, ct);
            return true;
        }
        catch (Exception e) when (e is RedisException or TimeoutException) { return false; }
    }

    public async Task<bool> SucceededAsync(string clientId, string address, CancellationToken ct)
    {
        if (!redis.IsConnected) return false;
        try
        {
            var keys = Keys(clientId, address);
            var db = redis.GetDatabase();
            await Task.WhenAll(db.KeyDeleteAsync(keys[0]), db.StringSetAsync(keys[3], 1, KnownFor)).WaitAsync(Bound, ct);
            return true;
        }
        catch (Exception e) when (e is RedisException or TimeoutException) { return false; }
    }
}
