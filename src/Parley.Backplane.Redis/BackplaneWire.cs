using System.Diagnostics;
using System.Text.Json.Serialization;
using Parley.Core;

namespace Parley.Backplane.Redis;

/// <summary>
/// A delivery (or a socket count request) as it travels between nodes: plain data, each node renders its own frames.
/// <see cref="Id"/> numbers the request on its origin node, whose reply channel takes every node's answer.
/// <see cref="TraceParent"/> is the origin's W3C trace context (optional: absent when nobody traces, ignored by a node
/// that does not know it), so the receiving node's socket writes join the same trace. <see cref="TerminationId"/>: the end's
/// audit id, under which each node records its sockets' receipts.
/// </summary>
sealed record DeliveryEnvelope(
    string Origin,
    long Id,
    string Kind,
    string Session,
    int DeadlineMs,
    ConversationMessage? Message = null,
    string? TracingId = null,
    Conversation? Conversation = null,
    DateTimeOffset? At = null,
    bool SessionCleared = false,
    string? Reason = null,
    string? TraceParent = null,
    string? TerminationId = null,
    string? ConversationId = null)
{
    public const string MessageKind = "message", EndedKind = "ended", ClearedKind = "cleared", ClosedKind = "closed", CountKind = "count";

    public static DeliveryEnvelope From(string origin, long id, string session, SessionDelivery delivery, TimeSpan deadline)
    {
        var ms = (int)Math.Clamp(deadline.TotalMilliseconds, 0, int.MaxValue);
        // Only a span someone records travels (Activity.Id is the traceparent in the W3C format).
        var trace = Activity.Current is { IdFormat: ActivityIdFormat.W3C, Recorded: true } current ? current.Id : null;
        return delivery switch
        {
            SessionDelivery.Message m => new(origin, id, MessageKind, session, ms, Message: m.Body, TracingId: m.TracingId, TraceParent: trace),
            SessionDelivery.Ended e => new(origin, id, EndedKind, session, ms, Conversation: e.After, At: e.At, TraceParent: trace, TerminationId: e.TerminationId),
            SessionDelivery.Cleared c => new(origin, id, ClearedKind, session, ms, TraceParent: trace, TerminationId: c.TerminationId,
                ConversationId: c.ConversationId),
            SessionDelivery.ConnectionsClosed c => new(origin, id, ClosedKind, session, ms, SessionCleared: c.SessionCleared, Reason: c.Reason,
                TraceParent: trace),
            _ => throw new ArgumentOutOfRangeException(nameof(delivery), delivery.GetType().Name, "A delivery the Redis backplane cannot carry."),
        };
    }

    /// <summary>The delivery this envelope carries; null for a count request or a kind this version does not know.</summary>
    public SessionDelivery? ToDelivery() => Kind switch
    {
        MessageKind when Message is not null => new SessionDelivery.Message(Message, TracingId),
        EndedKind when Conversation is not null && At is { } at => new SessionDelivery.Ended(Conversation, at, TerminationId),
        ClearedKind => new SessionDelivery.Cleared(TerminationId, ConversationId),
        ClosedKind => new SessionDelivery.ConnectionsClosed(SessionCleared, Reason ?? "closed"),
        _ => null,
    };
}

/// <summary>A committed change on its way to every node's notification channels.</summary>
sealed record ChangeEnvelope(string Origin, Conversation After, bool Started, DateTimeOffset? EndedAt,
    ConversationMessage[]? Messages = null, bool ParticipantsChanged = false)
{
    public static ChangeEnvelope From(string origin, ConversationChange c) =>
        new(origin, c.After, c.Started, c.EndedAt, c.Messages.IsDefaultOrEmpty ? null : [.. c.Messages], c.ParticipantsChanged);

    public ConversationChange ToChange() => new(After, Started, EndedAt, Messages is null ? [] : [.. Messages], ParticipantsChanged);
}

/// <summary>
/// Source-generated JSON for what crosses Redis. Computed (get-only) properties such as <c>Conversation.Customer</c> are
/// left out; enums travel as numbers (every node runs the same version).
/// </summary>
[JsonSourceGenerationOptions(IgnoreReadOnlyProperties = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DeliveryEnvelope))]
[JsonSerializable(typeof(ChangeEnvelope))]
partial class BackplaneJson : JsonSerializerContext;
