using System.Net;
using System.Threading.RateLimiting;
using Parley.Server.Connections;

namespace Parley.Server.GuestApi;

/// <summary>
/// Limits how fast new guest sessions are created: a token bucket per client address and one per deployment, each
/// holding a minute's worth (<see cref="ParleyOptions.NewSessionsPerAddressPerMinute"/>,
/// <see cref="ParleyOptions.NewSessionsPerDeploymentPerMinute"/>) and refilled evenly. Reconnecting to an existing
/// session takes nothing. Idle buckets are dropped by the limiter, so memory follows the active addresses.
/// </summary>
public sealed class NewSessionLimiter : IDisposable
{
    public const string ByAddress = "address", ByDeployment = "deployment";
    readonly PartitionedRateLimiter<IPAddress> _perAddress;
    readonly PartitionedRateLimiter<string> _perDeployment;

    public NewSessionLimiter(ParleyOptions options)
    {
        _perAddress = PartitionedRateLimiter.Create<IPAddress, IPAddress>(a =>
            RateLimitPartition.GetTokenBucketLimiter(a, _ => PerMinute(options.NewSessionsPerAddressPerMinute)));
        _perDeployment = PartitionedRateLimiter.Create<string, string>(d =>
            RateLimitPartition.GetTokenBucketLimiter(d, _ => PerMinute(options.NewSessionsPerDeploymentPerMinute)));
    }

    static TokenBucketRateLimiterOptions PerMinute(int perMinute)
    {
        // Whole tokens per period: 300/min is 5 every second, 3/min is 1 every 20 seconds.
        var tokens = Math.Max(1, perMinute / 60);
        return new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute, TokensPerPeriod = tokens, ReplenishmentPeriod = TimeSpan.FromMinutes((double)tokens / perMinute),
            QueueLimit = 0, AutoReplenishment = true,
        };
    }

    /// <summary>Takes a new session's place; false with the seconds to wait, and which limit refused it.</summary>
    public bool TryTake(IPAddress? client, string deploymentId, out int retryAfterSeconds, out string refusedBy)
    {
        retryAfterSeconds = 0;
        refusedBy = "";
        if (client is not null)
        {
            using var lease = _perAddress.AttemptAcquire(ClientAddress.Key(client));
            if (!lease.IsAcquired)
            {
                retryAfterSeconds = RetryAfter(lease);
                refusedBy = ByAddress;
                return false;
            }
        }
        using var deployment = _perDeployment.AttemptAcquire(deploymentId);
        if (deployment.IsAcquired) return true;
        retryAfterSeconds = RetryAfter(deployment);
        refusedBy = ByDeployment;
        return false;
    }

    static int RetryAfter(RateLimitLease lease) =>
        lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;

    public void Dispose()
    {
        _perAddress.Dispose();
        _perDeployment.Dispose();
    }
}
