using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Parley.Core;

namespace Parley.Server.Notifications;

/// <summary>
/// Publishes a commit's customer start/end events to this node's notification channels (docs/compatibility.md §Notification channels). Channels are per
/// node (docs/fanout.md): the <see cref="IChangeBroadcast"/> carries the change to every node and each node publishes
/// it to its own channels here.
/// </summary>
public sealed class ConversationNotifications(NotificationHub hub) : ILocalNotifications
{
    public void Publish(ConversationChange change)
    {
        var after = change.After;
        if (change.Started) hub.Publish(CustomerTopic(after, "start"), CustomerEvent(after, after.StartTime));
        if (change.EndedAt is { } at) hub.Publish(CustomerTopic(after, "end"), CustomerEvent(after, at));
    }

    /// <summary>What of a commit the notification channels see; null when nothing (a message, a typing event).</summary>
    public static ConversationChange? ChangeOf(Conversation after, ImmutableArray<ConversationEvent> events, bool started)
    {
        DateTimeOffset? ended = null;
        foreach (var e in events)
            if (e is ConversationEnded end) ended = end.At;
        return started || ended is not null ? new ConversationChange(after, started, ended) : null;
    }

    static string CustomerTopic(Conversation c, string what) => $"v2.detail.events.conversation.{c.Id}.customer.{what}";

    /// <summary>CustomerStartEvent / CustomerEndEvent (docs/compatibility.md §Notification channels): epoch-ms eventTime, upper-case enums.</summary>
    static JsonObject CustomerEvent(Conversation c, DateTimeOffset at)
    {
        var customer = c.Customer;
        var body = new JsonObject
        {
            ["eventTime"] = at.ToUnixTimeMilliseconds(),
            ["conversationId"] = c.Id,
            ["participantId"] = customer.Id,
            ["sessionId"] = customer.CommunicationId,
            ["mediaType"] = "MESSAGE",
            ["messageType"] = c.Channel == ChannelKind.Open ? "OPEN" : "WEBMESSAGING",
            ["direction"] = c.OriginatingDirection == MessageDirection.Inbound ? "INBOUND" : "OUTBOUND",
            ["addressFrom"] = c.GuestSessionId,
            ["addressTo"] = c.DeploymentId,
            ["divisionId"] = "*",
        };
        // CustomerEndEvent's enum has no INACTIVITY: an idle end is its TIMEOUT.
        if (customer.DisconnectType is { } type) body["disconnectType"] = type == DisconnectType.Inactivity ? "TIMEOUT" : type.ToString().ToUpperInvariant();
        return body;
    }
}
