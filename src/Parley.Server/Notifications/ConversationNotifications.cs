using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Parley.Core;

namespace Parley.Server.Notifications;

/// <summary>
/// Publishes a commit's customer start/end events to this node's notification channels (spec §6). Channels are per
/// node (docs/fanout.md): a cluster carries the commit to every node and each node publishes to its own channels.
/// </summary>
public sealed class ConversationNotifications(NotificationHub hub)
{
    /// <param name="started">The commit created the conversation.</param>
    public void Publish(Conversation after, ImmutableArray<ConversationEvent> events, bool started)
    {
        if (started) hub.Publish(CustomerTopic(after, "start"), CustomerEvent(after, after.StartTime));
        foreach (var e in events)
            if (e is ConversationEnded end) hub.Publish(CustomerTopic(after, "end"), CustomerEvent(after, end.At));
    }

    static string CustomerTopic(Conversation c, string what) => $"v2.detail.events.conversation.{c.Id}.customer.{what}";

    /// <summary>CustomerStartEvent / CustomerEndEvent (spec §6): epoch-ms eventTime, upper-case enums.</summary>
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
