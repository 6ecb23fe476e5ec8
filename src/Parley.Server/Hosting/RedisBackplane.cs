using Microsoft.Extensions.Diagnostics.HealthChecks;
using Parley.Backplane.Redis;
using Parley.Core;
using StackExchange.Redis;

namespace Parley.Server;

/// <summary>
/// Several nodes: committed events reach every node's guest sockets and notification channels through Redis
/// publish/subscribe (src/Parley.Backplane.Redis; docs/fanout.md "Redis backplane").
/// </summary>
public static class RedisBackplaneRegistration
{
    /// <summary>
    /// The Redis backplane, named by <c>ConnectionStrings:Redis</c> (missing or malformed: the start is refused). A Redis
    /// that cannot be reached does not stop the start: the node serves its own sockets, reports Degraded, and joins the
    /// others by itself once Redis answers.
    /// </summary>
    public static IServiceCollection AddRedisBackplane(this IServiceCollection services, ParleyOptions options)
    {
        var redis = RedisConfiguration(options);
        services.AddNodeFanout();
        services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(redis));
        services.AddSingleton(sp => new RedisBackplane(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<ILocalSessionSockets>(),
            sp.GetRequiredService<ILocalNotifications>(), new RedisBackplaneOptions(options.NodeId) { Prefix = options.RedisPrefix }, sp.GetRequiredService<ILoggerFactory>().CreateLogger(BackplaneLog.Category)));
        services.AddSingleton<ISessionBackplane>(sp => sp.GetRequiredService<RedisBackplane>());
        services.AddSingleton<IChangeBroadcast>(sp => sp.GetRequiredService<RedisBackplane>());
        services.AddHostedService<RedisBackplaneMembership>();
        // The token endpoint's failure counts, shared (docs/fanout.md: the one per-node limit an attacker profits from).
        services.AddSingleton<ISharedTokenThrottle>(sp => new RedisTokenThrottle(sp.GetRequiredService<IConnectionMultiplexer>(), options.RedisPrefix,
            new TokenFailureLimits(options.OAuthMaxFailuresPerClientAddress, options.OAuthMaxFailuresPerAddress, options.OAuthMaxFailuresPerClient,
                options.OAuthFailureWindow)));
        services.AddHealthChecks().AddCheck<RedisBackplaneHealthCheck>("redis-backplane", tags: [Health.Ready, Health.Live]);
        return services;
    }

    /// <summary>
    /// The operator's configuration string, with what the backplane's promises need: a Redis unreachable at start or later
    /// never fails a call (<c>abortConnect=false</c>) and a command is never queued to run after Redis returns (fail fast:
    /// a late push would be stale, and nothing may wait longer than its deadline).
    /// </summary>
    internal static ConfigurationOptions RedisConfiguration(ParleyOptions options)
    {
        if (options.RedisConnectionString is not { } text) throw new StartupRefused(ParleyOptions.RedisConnectionMissing);
        ConfigurationOptions redis;
        // The string holds a password: the refusal never repeats it.
        try { redis = ConfigurationOptions.Parse(text); }
        catch (ArgumentException) { throw new StartupRefused("ConnectionStrings__Redis is not a StackExchange.Redis configuration string (host:port,password=…)."); }
        if (redis.EndPoints.Count == 0) throw new StartupRefused("ConnectionStrings__Redis names no Redis server (host:port,password=…).");
        redis.AbortOnConnectFail = false;
        redis.BacklogPolicy = BacklogPolicy.FailFast;
        redis.ClientName ??= "parley-" + options.NodeId;
        // Reconnect every second while Redis is away, so pushes resume within about a second of its return.
        redis.ReconnectRetryPolicy = new LinearRetry(1000);
        return redis;
    }
}

/// <summary>Joins the backplane before the node listens (hosted services start first), leaves it when the node stops.</summary>
sealed class RedisBackplaneMembership(RedisBackplane backplane) : IHostedService
{
    public Task StartAsync(CancellationToken ct) => backplane.StartAsync();

    public async Task StopAsync(CancellationToken ct) => await backplane.DisposeAsync();
}

/// <summary>Degraded, not Unhealthy, while Redis is unreachable: the node still serves its own sockets.</summary>
sealed class RedisBackplaneHealthCheck(RedisBackplane backplane) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct) => Task.FromResult(backplane.IsConnected
        ? HealthCheckResult.Healthy($"Redis backplane connected; node {backplane.NodeId}, {backplane.Members.Count} live node(s)")
        : HealthCheckResult.Degraded($"Redis backplane unreachable; node {backplane.NodeId} serves its own guest sockets only, " +
            "pushes to guests and notification channels on other nodes are lost until Redis returns"));
}
