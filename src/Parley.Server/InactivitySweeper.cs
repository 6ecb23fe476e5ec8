using Parley.Core;

namespace Parley.Server;

/// <summary>
/// The inactivity lever (docs/compatibility.md §Termination levers): a deployment's <c>inactivityTimeoutSeconds</c> ends its live conversations that
/// have had no message for that long, exactly as a Platform API end does — guests told, analytics and audit
/// (lever <c>Inactivity</c>, client <c>parley:inactivity</c>, disconnectType <c>inactivity</c>).
/// Its period (<see cref="ParleyOptions.TerminationSweep"/>, shared with the policy sweep) runs on the container's clock, so a test that moves the clock moves the sweep with it.
/// </summary>
public sealed class InactivitySweeper(IConversationStore store, Conversations conversations, IAuditLog audit, TimeProvider clock,
    ParleyOptions options, ILoggerFactory loggers, StoreOutages outages) : BackgroundService
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Conversations);
    readonly ILogger _terminations = loggers.CreateLogger(ParleyLog.Termination);
    readonly SweepProgress _progress = new();

    /// <summary>
    /// Completes once a sweep that judged idleness at <paramref name="now"/> or later has ended what it found idle (their
    /// guests told, their audit rows counted). For tests that move the clock: no sleeping until a sweep has surely run.
    /// </summary>
    public Task SweptAsync(DateTimeOffset now, CancellationToken ct = default) => _progress.SweptAsync(now, ct);

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        // A periodic timer keeps its ticks while a sweep runs: a clock moved during one still brings the next.
        using var timer = new PeriodicTimer(options.TerminationSweep, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    var now = clock.GetUtcNow();
                    // In parallel (bounded): one guest slow to take its Disconnect frame must not hold up the other ends.
                    var idle = await store.ListIdleAsync(now, 500, stop);
                    outages.Answered();
                    await Parallel.ForEachAsync(idle, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = stop }, async (id, ct) =>
                    {
                        using var trace = ParleyTelemetry.StartTermination(EndLever.Inactivity, id);
                        if (await conversations.EndIfIdleAsync(id, ct) is { Status: OutcomeStatus.Done } ended)
                        {
                            var elapsed = trace.Told(ended, await ended.Delivered);   // before the audit row's count write
                            _terminations.Terminated(ended, await Conversations.AwaitDeliveryAsync(ended, audit, ct), elapsed);
                        }
                    });
                    _progress.Finished(now);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
                // The store cannot be reached: this sweep is lost, the next period's tries again (what was idle still is).
                catch (Exception e) when (StoreOutages.Find(e) is { } unavailable) { outages.Failed("the inactivity sweep", unavailable); }
                catch (Exception e) { _log.InactivitySweepFailed(e); }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
    }
}
