using Parley.Core;

namespace Parley.Server.Terminations;

/// <summary>
/// Applies every enabled termination policy (docs/ending-sessions.md "Policies") each sweep period
/// (<see cref="ParleyOptions.TerminationSweep"/>, shared with the inactivity sweep), on the container's clock: what a policy
/// says is due is ended through <see cref="BulkTerminator"/> as any other termination — guests told, analytics and audit
/// in the end's own commit, lever <c>Policy</c>, client <c>parley:policy:{id}</c>, disconnectType <c>system</c>.
/// Every node sweeps; each end is a version-guarded commit, so a conversation two nodes both find due ends once (the loser
/// finds it ended: no second audit row, no second Disconnect).
/// </summary>
public sealed class PolicySweeper(ITerminationPolicyStore policies, BulkTerminator terminator, TimeProvider clock, ParleyOptions options,
    ILoggerFactory loggers, StoreOutages outages) : BackgroundService
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Termination);
    readonly SweepProgress _progress = new();

    /// <summary>
    /// Completes once a sweep that evaluated the policies at <paramref name="now"/> or later has ended what they said was due
    /// (their guests told, their audit rows written). For tests that move the clock: no sleeping until a sweep has surely run.
    /// </summary>
    public Task SweptAsync(DateTimeOffset now, CancellationToken ct = default) => _progress.SweptAsync(now, ct);

    /// <summary>Ends what <paramref name="policy"/> says is due at <paramref name="now"/> (nothing when it is disabled).</summary>
    public async Task<BulkCounts> ApplyAsync(TerminationPolicy policy, DateTimeOffset now, CancellationToken ct)
    {
        if (PolicySchedule.Due(policy, now) is not { } due) return default;
        // Most sweeps find nothing due: a one-row look first, so they run no bulk end and log no bulk line (3003) each second.
        if (await terminator.CountAsync(due, 1, ct) == 0) return default;
        return await terminator.EndAsync(due, policy.Actor, EndLever.Policy, policy.EndReason, null, ct);
    }

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
                    var enabled = await policies.ListEnabledAsync(stop);
                    outages.Answered();
                    foreach (var policy in enabled)
                    {
                        // One policy failing (its store read, a bad stored zone) must not keep the others from running.
                        try { await ApplyAsync(policy, now, stop); }
                        catch (Exception e) when (e is not OperationCanceledException && StoreOutages.Find(e) is null)
                        {
                            _log.PolicySweepFailed(e, policy.Id);
                        }
                    }
                    _progress.Finished(now);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
                // The store cannot be reached: this sweep is lost, the next period's tries again (what was due still is).
                catch (Exception e) when (StoreOutages.Find(e) is { } unavailable) { outages.Failed("the policy sweep", unavailable); }
                catch (Exception e) { _log.PolicySweepFailed(e, null); }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
    }
}
