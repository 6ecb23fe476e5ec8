using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Parley.Core;

namespace Parley.Server;

/// <summary>
/// Liveness and readiness (docs/health.md), as ASP.NET Core health checks. <c>/healthz</c> runs the checks tagged
/// <see cref="Live"/> (the process answers; a backplane may report Degraded there), <c>/readyz</c> those tagged
/// <see cref="Ready"/> (the store answers a read, the node is not draining, the backplane when one is configured).
/// Adapters add their own checks with <c>services.AddHealthChecks().AddCheck(…, tags: [Health.Ready])</c>.
/// </summary>
public static class Health
{
    public const string Live = "live";
    public const string Ready = "ready";

    /// <summary>How long the store read of the readiness check may take before it counts as unhealthy.</summary>
    public static readonly TimeSpan StoreCheckTimeout = TimeSpan.FromSeconds(2);

    public static IServiceCollection AddParleyHealth(this IServiceCollection services)
    {
        services.AddSingleton<StoreReadiness>();
        services.AddSingleton<WritesCheck>();
        services.AddSingleton<StoreOutages>();
        services.AddSingleton<DrainingCheck>();
        services.AddSingleton<HealthCheckFailures>();
        services.AddHealthChecks()
            .AddCheck("process", () => HealthCheckResult.Healthy("the process is up and serving requests"), tags: [Live])
            // Unlike a store that cannot be reached, a store whose writer stopped comes back only with a new process.
            .AddCheck<WritesCheck>("writes", tags: [Live])
            .AddCheck<DrainingCheck>("draining", tags: [Ready])
            .Add(new HealthCheckRegistration("store", sp => sp.GetRequiredService<StoreReadiness>(), HealthStatus.Unhealthy, [Ready],
                StoreCheckTimeout));
        return services;
    }

    /// <summary>
    /// <c>/healthz</c>, <c>/readyz</c>, and <c>/health</c> (the older liveness address, kept with its plain-text answer
    /// <c>ok</c>). No token, no rate limit; Healthy and Degraded answer 200, Unhealthy 503.
    /// </summary>
    public static void MapParleyHealth(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/healthz", Options(Live, WriteJsonAsync));
        app.MapHealthChecks("/readyz", Options(Ready, WriteJsonAsync));
        app.MapHealthChecks("/health", Options(Live, WritePlainAsync));
    }

    static HealthCheckOptions Options(string tag, Func<HttpContext, HealthReport, Task> writer) => new()
    {
        Predicate = check => check.Tags.Contains(tag),
        ResponseWriter = writer,
        // The defaults, stated: a degraded dependency keeps the node in service (200); only Unhealthy takes it out (503).
        ResultStatusCodes =
        {
            [HealthStatus.Healthy] = StatusCodes.Status200OK,
            [HealthStatus.Degraded] = StatusCodes.Status200OK,
            [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
        },
    };

    /// <summary>
    /// <c>{"status":"Healthy","durationMs":0.4,"checks":{"store":{"status":"Healthy","description":"…","durationMs":0.3}}}</c>.
    /// Only each check's own description is shown, never an exception's message (it may name a host or carry a
    /// connection string); the exception is in the log.
    /// </summary>
    static async Task WriteJsonAsync(HttpContext http, HealthReport report)
    {
        LogFailures(http, report);
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("status", report.Status.ToString());
            json.WriteNumber("durationMs", Math.Round(report.TotalDuration.TotalMilliseconds, 2));
            json.WriteStartObject("checks");
            foreach (var (name, entry) in report.Entries)
            {
                json.WriteStartObject(name);
                json.WriteString("status", entry.Status.ToString());
                json.WriteString("description", Description(entry));
                json.WriteNumber("durationMs", Math.Round(entry.Duration.TotalMilliseconds, 2));
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        http.Response.ContentType = "application/json; charset=utf-8";
        http.Response.ContentLength = buffer.WrittenCount;
        await http.Response.Body.WriteAsync(buffer.WrittenMemory, http.RequestAborted);
    }

    /// <summary>
    /// A check that threw (not a timeout) is logged by Parley (7008, throttled): the framework's own line is silenced by
    /// the shipped levels (<c>Microsoft.Extensions.Diagnostics.HealthChecks: Critical</c>).
    /// </summary>
    static void LogFailures(HttpContext http, HealthReport report)
    {
        foreach (var (name, entry) in report.Entries)
            if (entry.Exception is { } e and not (OperationCanceledException or TimeoutException))
                http.RequestServices.GetRequiredService<HealthCheckFailures>().Failed(name, e);
    }

    static string Description(HealthReportEntry entry) => entry.Exception switch
    {
        null => entry.Description ?? entry.Status.ToString(),
        OperationCanceledException or TimeoutException => "the check did not answer in time",
        var e => $"the check failed ({e.GetType().Name}); see the server log",
    };

    static readonly byte[] Ok = "ok"u8.ToArray(), Degraded = "degraded"u8.ToArray(), Unhealthy = "unhealthy"u8.ToArray();

    /// <summary>The answer <c>/health</c> always gave (<c>ok</c>), kept for whatever reads it.</summary>
    static Task WritePlainAsync(HttpContext http, HealthReport report)
    {
        LogFailures(http, report);
        var body = report.Status switch { HealthStatus.Healthy => Ok, HealthStatus.Degraded => Degraded, _ => Unhealthy };
        http.Response.ContentType = "text/plain; charset=utf-8";
        http.Response.ContentLength = body.Length;
        return http.Response.Body.WriteAsync(body, http.RequestAborted).AsTask();
    }
}

/// <summary>
/// Not ready once shutdown has begun: a load balancer polling <c>/readyz</c> stops sending new work at once, while the
/// node's guest sockets are told 1001 (after <see cref="ParleyOptions.DrainDelay"/>) and its requests in flight finish.
/// </summary>
sealed class DrainingCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    static readonly Task<HealthCheckResult> Serving = Task.FromResult(HealthCheckResult.Healthy("serving")),
        Draining = Task.FromResult(HealthCheckResult.Unhealthy("draining: this node is shutting down"));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct) =>
        lifetime.ApplicationStopping.IsCancellationRequested ? Draining : Serving;
}

/// <summary>The store still takes writes (<see cref="StoragePorts.WriteFault"/>): when it never will again, restarting the process is the fix.</summary>
sealed class WritesCheck(StoreOutages outages) : IHealthCheck
{
    static readonly Task<HealthCheckResult> Taking = Task.FromResult(HealthCheckResult.Healthy("the store takes writes"));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct) =>
        outages.WriterFault() is { } fault ? Task.FromResult(HealthCheckResult.Unhealthy($"{StoreOutages.NoWrites(fault)}; restart the node")) : Taking;
}

/// <summary>
/// The store answers a read through the ports (a conversation that does not exist: one indexed lookup, whatever the
/// adapter). Concurrent probes share one read, so a flood of <c>/readyz</c> calls costs the store one query at a time.
/// </summary>
sealed class StoreReadiness(IConversationStore store, StoreOutages outages) : IHealthCheck
{
    /// <summary>No conversation has this id (ids are GUIDs): the read finds nothing, cheaply.</summary>
    const string ProbeId = "parley-readiness-probe";
    readonly Lock _gate = new();
    Task<HealthCheckResult>? _probe;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct)
    {
        // A store that answers reads but takes no write any more (its writer stopped) cannot serve this node's traffic.
        if (outages.WriterFault() is { } fault) return Task.FromResult(HealthCheckResult.Unhealthy(StoreOutages.NoWrites(fault)));
        Task<HealthCheckResult> probe;
        lock (_gate)
        {
            if (_probe is null || _probe.IsCompleted) _probe = ProbeAsync();
            probe = _probe;
        }
        return probe.WaitAsync(ct);
    }

    async Task<HealthCheckResult> ProbeAsync()
    {
        await Task.Yield();   // the caller's lock is released before the read starts
        try
        {
            await store.LoadAsync(ProbeId, CancellationToken.None);
            outages.Answered();
            return HealthCheckResult.Healthy("the store answered a read");
        }
        catch (StoreUnavailableException e)
        {
            outages.Failed("the readiness check", e);
            return HealthCheckResult.Unhealthy("the store cannot be reached");
        }
    }
}

/// <summary>
/// A health check that throws, logged (7008) the first time and then at most once per <see cref="Every"/> per check,
/// with how many failures were not logged: a load balancer probes every second.
/// </summary>
sealed class HealthCheckFailures(ILoggerFactory loggers)
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Hosting);
    static readonly TimeSpan Every = TimeSpan.FromSeconds(10);
    readonly Lock _gate = new();
    readonly Dictionary<string, (long Last, int Unlogged)> _checks = [];

    public void Failed(string check, Exception e)
    {
        int unlogged;
        lock (_gate)
        {
            var now = Environment.TickCount64;
            if (_checks.TryGetValue(check, out var seen) && now - seen.Last < Every.TotalMilliseconds)
            {
                _checks[check] = (seen.Last, seen.Unlogged + 1);
                return;
            }
            unlogged = seen.Unlogged;
            _checks[check] = (now, 0);
        }
        _log.HealthCheckFailed(e, check, unlogged);
    }
}

/// <summary>
/// A store outage, logged as one: the first failure and then at most one line per <see cref="Every"/> (with how many
/// failures were not logged), as a warning without a stack trace; and once when the store answers again.
/// </summary>
public sealed class StoreOutages(ILoggerFactory loggers, StoragePorts ports)
{
    int _writerLogged;

    /// <summary>
    /// What stopped the store taking writes for good (the embedded store's writer: docs/durability.md), or null; logged
    /// with its cause (6003) the first time anything asks.
    /// </summary>
    public Exception? WriterFault()
    {
        var fault = ports.WriteFault();
        if (fault is not null && Interlocked.Exchange(ref _writerLogged, 1) == 0) _log.StoreWriterStopped(fault);
        return fault;
    }

    /// <summary>A health check's description of it: the exception's type only (a message could quote a path).</summary>
    public static string NoWrites(Exception fault) => $"the store takes no writes: its writer stopped ({fault.GetType().Name})";

    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Store);
    static readonly TimeSpan Every = TimeSpan.FromSeconds(10);
    long _lastLogTicks = long.MinValue / 2;
    int _unlogged, _failures, _down;

    /// <summary>True while the last thing that reached the store failed because it could not be reached.</summary>
    public bool Down => Volatile.Read(ref _down) == 1;

    /// <summary>The store could not be reached while doing <paramref name="what"/>.</summary>
    public void Failed(string what, StoreUnavailableException e)
    {
        WriterFault();
        Interlocked.Increment(ref _failures);
        var first = Interlocked.Exchange(ref _down, 1) == 0;
        var now = Environment.TickCount64;
        var last = Volatile.Read(ref _lastLogTicks);
        if (!first && (now - last < Every.TotalMilliseconds || Interlocked.CompareExchange(ref _lastLogTicks, now, last) != last))
        {
            Interlocked.Increment(ref _unlogged);
            return;
        }
        Volatile.Write(ref _lastLogTicks, now);
        _log.StoreUnavailable(what, e.Message, Interlocked.Exchange(ref _unlogged, 0));
    }

    /// <summary>Something reached the store: if it had been down, say it is back.</summary>
    public void Answered()
    {
        if (Volatile.Read(ref _down) == 0 || Interlocked.Exchange(ref _down, 0) == 0) return;
        _log.StoreAnswersAgain(Interlocked.Exchange(ref _failures, 0));
        Interlocked.Exchange(ref _unlogged, 0);
    }

    /// <summary>The <see cref="StoreUnavailableException"/> in <paramref name="e"/> or among its inner exceptions.</summary>
    public static StoreUnavailableException? Find(Exception? e)
    {
        for (var depth = 0; e is not null && depth < 8; e = e.InnerException, depth++)
        {
            if (e is StoreUnavailableException unavailable) return unavailable;
            if (e is AggregateException { InnerExceptions.Count: > 0 } many) return many.InnerExceptions.Select(Find).FirstOrDefault(x => x is not null);
        }
        return null;
    }
}
