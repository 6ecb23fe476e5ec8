using Parley.Core;

namespace Parley.Server.Notifications;

/// <summary>Whether a queue a topic names exists: a queue topic for an unknown queue is refused (through the cached directory).</summary>
public sealed class NotificationQueues(IDirectoryStore directory)
{
    public async Task<bool> ExistsAsync(string queueId, CancellationToken ct) => await directory.GetQueueAsync(queueId, ct) is not null;
}
