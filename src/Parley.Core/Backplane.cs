using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>
/// What a guest session's sockets must be handed, wherever they are connected. Plain data, no frames: each node renders
/// the wire frames for its own sockets, so a backplane between nodes carries only these records.
/// </summary>
public abstract record SessionDelivery
{
    /// <summary>A committed message: queued on every socket, not confirmed (it never holds up the writer).</summary>
    public sealed record Message(ConversationMessage Body, string? TracingId) : SessionDelivery;

    /// <summary>
    /// The conversation ended from the platform side: the Disconnect presence, confirmed per socket. <see cref="TerminationId"/>
    /// is the end's audit id: each node records, per socket, whether the write completed (the termination's receipt).
    /// </summary>
    public sealed record Ended(Conversation After, DateTimeOffset At, string? TerminationId = null) : SessionDelivery;

    /// <summary>
    /// The guest cleared its conversation (Presence Clear): SessionCleared, ConnectionClosed (confirmed). The sockets are
    /// closed by the <see cref="ConnectionsClosed"/> that follows once the session is deleted.
    /// </summary>
    public sealed record Cleared(string? TerminationId = null, string? ConversationId = null) : SessionDelivery;

    /// <summary>
    /// The session's sockets are closed without a conversation end: closeSession with closeAllConnections, or a Clear
    /// with no live conversation (<paramref name="SessionCleared"/>: SessionClearedEvent first; a socket already told by
    /// <see cref="Cleared"/> is only closed). Not confirmed.
    /// </summary>
    public sealed record ConnectionsClosed(bool SessionCleared, string Reason) : SessionDelivery;

    /// <summary>Whether the count answered is of sockets that confirmed the frame was written (else: queued).</summary>
    public bool Confirmed => this is Ended or Cleared;
}

/// <summary>
/// This node's guest sockets, as the backplane sees them. The server implements it over its socket registry; a
/// backplane calls it for deliveries addressed to a session, whether they were raised on this node or another.
/// </summary>
public interface ILocalSessionSockets
{
    /// <summary>
    /// Hands <paramref name="delivery"/> to every socket of the session on this node. Completes with the number of sockets
    /// that took it: for a confirmed delivery those that wrote it within <paramref name="deadline"/> (the others are
    /// cut off), otherwise those it was queued on. A delivery whose work is only queueing completes synchronously, so
    /// deliveries raised in order are queued in order.
    /// </summary>
    Task<int> DeliverAsync(string sessionId, SessionDelivery delivery, TimeSpan deadline);

    int Count(string sessionId);
}

/// <summary>
/// The fan-out between nodes: every push to a guest session goes through it, never straight to a node's sockets.
/// Contract: <see cref="DeliverAsync"/> reaches the session's sockets on every node and completes with the total number
/// of sockets that took it (see <see cref="ILocalSessionSockets.DeliverAsync"/>) once every node answered or
/// <paramref name="deadline"/> (plus the adapter's own documented transport allowance) has passed; a node that did not
/// answer in time counts 0. It never throws for a node that is unreachable. Deliveries to one session raised in order
/// on one node arrive in that order on every node. Adapters: in-process (one node, default); Redis (src/Parley.Backplane.Redis).
/// </summary>
public interface ISessionBackplane
{
    Task<int> DeliverAsync(string sessionId, SessionDelivery delivery, TimeSpan deadline, CancellationToken ct);

    /// <summary>How many sockets the session has on every node (0 for a node that does not answer in time).</summary>
    Task<int> CountSocketsAsync(string sessionId, CancellationToken ct);
}

/// <summary>One node: the sessions' sockets are all here.</summary>
public sealed class InProcessBackplane(ILocalSessionSockets local) : ISessionBackplane
{
    public Task<int> DeliverAsync(string sessionId, SessionDelivery delivery, TimeSpan deadline, CancellationToken ct) =>
        local.DeliverAsync(sessionId, delivery, deadline);

    public Task<int> CountSocketsAsync(string sessionId, CancellationToken ct) => Task.FromResult(local.Count(sessionId));
}

/// <summary>
/// A committed change as the notification channels see it (docs/notifications.md): the conversation after the commit,
/// whether the commit created it, when it ended if the commit ended it, the messages it stored (typing events included),
/// and whether it changed a participant's state. Plain data, like a delivery.
/// </summary>
public sealed record ConversationChange(Conversation After, bool Started, DateTimeOffset? EndedAt,
    ImmutableArray<ConversationMessage> Messages = default, bool ParticipantsChanged = false);

/// <summary>This node's notification publisher: renders a change and publishes it to the channels held on this node.</summary>
public interface ILocalNotifications
{
    void Publish(ConversationChange change);

    /// <summary>Whether any notification socket here is subscribed to anything now (a hint: one subscribing meanwhile may miss a change).</summary>
    bool HasSubscribers { get; }

    /// <summary>A channel's subscriptions changed, or it was removed (on any node): re-read it if its socket is here.</summary>
    void ChannelChanged(string channelId);

    /// <summary>A termination's receipt changed (on any node): publish it to the channels here subscribed to receipts.</summary>
    void ReceiptChanged(string terminationId);
}

/// <summary>
/// Carries committed changes to every node's <see cref="ILocalNotifications"/>, each node's exactly once (the origin's
/// included, and never twice). At most once, as the platform's notifications are: a node that cannot be reached misses
/// the change. Never throws, never waits on another node.
/// </summary>
public interface IChangeBroadcast
{
    void Broadcast(ConversationChange change);

    /// <summary>
    /// False when no node can want a change now (one node, no notification socket subscribed): the publisher then builds
    /// none, which a guest message would otherwise pay for with nobody listening.
    /// </summary>
    bool Listened { get; }

    /// <summary>Tells every node (this one first) that a notification channel's stored state changed. At most once, like a change.</summary>
    void ChannelChanged(string channelId);

    /// <summary>Tells every node (this one first) that a termination's receipt changed. At most once, like a change.</summary>
    void ReceiptChanged(string terminationId);
}

/// <summary>One node: a change goes to this node's channels.</summary>
public sealed class InProcessChangeBroadcast(ILocalNotifications local) : IChangeBroadcast
{
    public void Broadcast(ConversationChange change) => local.Publish(change);

    public bool Listened => local.HasSubscribers;

    public void ChannelChanged(string channelId) => local.ChannelChanged(channelId);

    public void ReceiptChanged(string terminationId) => local.ReceiptChanged(terminationId);
}
