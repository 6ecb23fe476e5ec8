using Microsoft.Extensions.Logging;

namespace Parley.Backplane.Redis;

/// <summary>
/// The Redis backplane's log lines (category <see cref="Category"/>), in the store and backplane range 62xx of
/// Parley's event ids (Parley.Server's ParleyLog has the others; docs/logging.md lists them all).
/// </summary>
public static partial class BackplaneLog
{
    public const string Category = "Parley.Backplane";

    [LoggerMessage(6201, LogLevel.Information, "Node {NodeId} joined the Redis backplane ({Members} live members)")]
    public static partial void Joined(this ILogger log, string nodeId, int members);

    [LoggerMessage(6202, LogLevel.Warning, "Node {NodeId} could not subscribe to the Redis backplane yet: {Reason}")]
    public static partial void SubscribeFailed(this ILogger log, string nodeId, string reason);

    [LoggerMessage(6203, LogLevel.Warning, "A backplane delivery could not be read; dropped")]
    public static partial void DeliveryUnreadable(this ILogger log, Exception error);

    [LoggerMessage(6204, LogLevel.Warning, "A backplane delivery to session {SessionId} failed on this node")]
    public static partial void DeliveryFailed(this ILogger log, Exception error, string sessionId);

    [LoggerMessage(6205, LogLevel.Warning, "A notification could not be carried to the other nodes")]
    public static partial void NotificationNotCarried(this ILogger log, Exception error);

    [LoggerMessage(6206, LogLevel.Warning, "A backplane notification could not be published on this node")]
    public static partial void NotificationNotPublished(this ILogger log, Exception error);

    [LoggerMessage(6207, LogLevel.Warning, "A backplane heartbeat failed; the next one retries")]
    public static partial void HeartbeatFailed(this ILogger log, Exception error);

    [LoggerMessage(6208, LogLevel.Debug, "Reading the live members failed; the deadline ends the wait")]
    public static partial void MembersUnread(this ILogger log, Exception error);

    [LoggerMessage(6209, LogLevel.Debug, "Membership renewal failed")]
    public static partial void RenewalFailed(this ILogger log, Exception error);
}
