namespace Parley.Server.Notifications;

/// <summary>Whether a queue a topic names exists (a queue topic for an unknown queue is refused).</summary>
public sealed class NotificationQueues
{
    public Task<bool> ExistsAsync(string queueId, CancellationToken ct) => Task.FromResult(false);
}
