using System.Collections.Immutable;
using System.Diagnostics;
using Parley.Core;

namespace Parley.Server.GuestApi;

/// <summary>
/// Turns a commit into what it must reach: the notification topics (docs/notifications.md; through the <see cref="IChangeBroadcast"/>,
/// to every node's channels), and the deliveries to the guest
/// session, which go through the <see cref="ISessionBackplane"/> (never straight to this node's sockets) so that a
/// guest connected to another node hears them too. The returned count is of the sockets, on every node, told that the
/// conversation ended; the Platform API call that ended it waits for it.
/// </summary>
public sealed class ConversationFanout(ISessionBackplane backplane, IChangeBroadcast notifications,
    ParleyOptions options, ILoggerFactory loggers) : IConversationFanout
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.GuestApi);
    readonly ILogger _conversations = loggers.CreateLogger(ParleyLog.Conversations);
    static readonly Task<int> Nothing = Task.FromResult(0);

    public Task<int> PublishAsync(Conversation after, ImmutableArray<ConversationEvent> events, bool started, string? terminationId = null)
    {
        // A termination's receipt exists from its commit: pending until the sockets and channels are accounted for.
        if (terminationId is not null) notifications.ReceiptChanged(terminationId);
        // To every node's notification channels (this node's at once).
        if (notifications.Listened && Notifications.ConversationNotifications.ChangeOf(after, events, started) is { } change)
            notifications.Broadcast(change);
        var session = after.GuestSessionId;
        if (started) _conversations.ConversationStarted(after.Id, after.OriginatingDirection, session, after.DeploymentId);
        var ended = Nothing;
        // Raised in version order, one after the other: the backplane keeps a session's deliveries in that order.
        foreach (var e in events)
        {
            switch (e)
            {
                case MessageAdded m:
                    ParleyTelemetry.MessageCommitted(m.Message, after.Channel);
                    Observe(backplane.DeliverAsync(session, new SessionDelivery.Message(m.Message, m.TracingId), options.NotifyTimeout, CancellationToken.None));
                    break;
                case ConversationEnded { Lever: EndLever.GuestClear }:
                    ended = FanOut(session, new SessionDelivery.Cleared(terminationId, after.Id));
                    break;
                case ConversationEnded end when after.DisconnectMode != DisconnectMode.None:
                    ended = FanOut(session, new SessionDelivery.Ended(after, end.At, terminationId));
                    break;
            }
        }
        return ended;
    }

    /// <summary>An end's delivery to every node, as the <c>parley.fanout</c> span (its remote legs carry the trace along).</summary>
    Task<int> FanOut(string session, SessionDelivery delivery)
    {
        var previous = Activity.Current;
        var span = ParleyDiagnostics.Start("parley.fanout");
        span?.SetTag("parley.delivery", delivery.GetType().Name);
        var told = backplane.DeliverAsync(session, delivery, options.NotifyTimeout, CancellationToken.None);
        return ParleyDiagnostics.EndWhenDone(span, previous, told, "parley.sockets.told");
    }

    /// <summary>A message push nobody waits for: its failure is logged, never left unobserved (the message is stored).</summary>
    void Observe(Task<int> delivery)
    {
        if (delivery.IsCompletedSuccessfully) return;
        delivery.ContinueWith(t => _log.GuestPushFailed(t.Exception?.GetBaseException()),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
