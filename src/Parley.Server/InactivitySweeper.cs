using Parley.Core;

namespace Parley.Server;

/// <summary>
/// The inactivity lever (spec §8.3): a deployment's <c>inactivityTimeoutSeconds</c> ends its live conversations that
/// have had no message for that long, exactly as a Platform API end does — guests told, analytics and audit
/// (lever <c>Inactivity</c>, client <c>parley:inactivity</c>, disconnectType <c>inactivity</c>).
/// </summary>
public sealed class InactivitySweeper(IConversationStore store, Conversations conversations, IAuditLog audit, TimeProvider clock,
    ParleyOptions options, ILogger<InactivitySweeper> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.InactivitySweep, stop);
                // In parallel (bounded): one guest slow to take its Disconnect frame must not hold up the other ends.
                var idle = await store.ListIdleAsync(clock.GetUtcNow(), 500, stop);
                await Parallel.ForEachAsync(idle, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = stop }, async (id, ct) =>
                {
                    if (await conversations.EndIfIdleAsync(id, ct) is { Status: OutcomeStatus.Done } ended)
                        await Conversations.AwaitDeliveryAsync(ended, audit, ct);
                });
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
            catch (Exception e) { log.LogError(e, "Inactivity sweep failed; retrying"); }
        }
    }
}
