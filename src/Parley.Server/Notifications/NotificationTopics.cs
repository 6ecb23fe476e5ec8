using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using Parley.Protocol;
using Parley.Server.OAuth;

namespace Parley.Server.Notifications;

/// <summary>What a topic's <c>{id}</c> names: a conversation, or a queue (which must exist to be subscribed to); None: the topic has no <c>{id}</c>.</summary>
public enum TopicSubject { Conversation, Queue, None }

/// <summary>One topic Parley serves: its pattern, what <c>{id}</c> names, the permission a subscriber needs, the event body's type.</summary>
public sealed record NotificationTopic(string Pattern, TopicSubject Subject, string Permission, string Description, JsonTypeInfo BodyType)
{
    // A conversation id is a UUID; a queue id is what a queue may be named with (1–64 letters, digits, '-', '_').
    readonly Regex _matcher = new("^" + Regex.Escape(Pattern).Replace(@"\{id}", Subject == TopicSubject.Queue ? "(?<id>[A-Za-z0-9_-]{1,64})" : "(?<id>[0-9a-fA-F-]{36})") + "$",
        RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, TimeSpan.FromMilliseconds(50));

    /// <summary>The concrete topic for <paramref name="id"/>.</summary>
    public string For(string id) => Pattern.Replace("{id}", id);

    /// <summary>The id a concrete topic names, or null when it is not this pattern.</summary>
    public string? Match(string topic) => topic.Length <= 200 && _matcher.Match(topic) is { Success: true } m ? m.Groups["id"].Value : null;

    /// <summary>The event body's top-level properties as a small JSON schema (for availabletopics).</summary>
    public JsonElement Schema()
    {
        var properties = new JsonObject();
        foreach (var p in BodyType.Properties)
            properties[p.Name] = new JsonObject { ["type"] = JsonType(p.PropertyType) };
        var schema = new JsonObject { ["type"] = "object", ["id"] = Pattern, ["title"] = BodyType.Type.Name, ["properties"] = properties };
        using var document = JsonDocument.Parse(schema.ToJsonString());
        return document.RootElement.Clone();
    }

    static string JsonType(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(string)) return "string";
        if (t == typeof(bool)) return "boolean";
        if (t == typeof(int) || t == typeof(long)) return "integer";
        return t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) ? "array" : "object";
    }
}

/// <summary>
/// The registry of served topics (docs/notifications.md "Topics"): the one list that subscribing, availabletopics and
/// publishing all read. A topic not listed here is refused by name.
/// </summary>
public static class NotificationTopics
{
    public static readonly NotificationTopic QueueConversationMessages = new("v2.routing.queues.{id}.conversations.messages", TopicSubject.Queue,
        Permissions.ConversationView,
        "Message conversations routed to the queue: every committed change (a message, a typing event, a participant's state, the end), " +
        "the participants with their state and that change's messages.",
        ParleyJson.Wire.QueueMessageConversationEvent);

    public static readonly NotificationTopic QueueConversations = new("v2.routing.queues.{id}.conversations", TopicSubject.Queue,
        Permissions.ConversationView,
        "Conversations routed to the queue, in the generic conversation form: every committed change, each participant with its message communication.",
        ParleyJson.Wire.QueueConversationEvent);

    public static readonly NotificationTopic CustomerStart = new("v2.detail.events.conversation.{id}.customer.start", TopicSubject.Conversation,
        Permissions.AnalyticsView, "The customer joined the conversation (it started).", ParleyJson.Wire.CustomerDetailEvent);

    public static readonly NotificationTopic CustomerEnd = new("v2.detail.events.conversation.{id}.customer.end", TopicSubject.Conversation,
        Permissions.AnalyticsView, "The customer left the conversation (it ended).", ParleyJson.Wire.CustomerDetailEvent);

    /// <summary>Parley extension (docs/ending-sessions.md "Receipts"): every termination's receipt, when created and whenever it changes.</summary>
    public static readonly NotificationTopic TerminationReceipts = new("v2.parley.terminations.receipts", TopicSubject.None,
        Permissions.AuditView,
        "Parley extension: termination receipts, pushed when a termination's receipt is created (pending) and whenever it changes " +
        "(its guest sockets recorded, each open messaging delivery's outcome); the body is the receipt as GET /api/v2/parley/receipts/{id} answers it.",
        ParleyJson.Wire.TerminationReceiptWire);

    public static readonly IReadOnlyList<NotificationTopic> All = [QueueConversationMessages, QueueConversations, CustomerStart, CustomerEnd, TerminationReceipts];

    /// <summary>The served topic <paramref name="topic"/> is, with the id it names; null when Parley does not serve it.</summary>
    public static (NotificationTopic Topic, string Id)? Find(string topic)
    {
        foreach (var t in All)
            if (t.Match(topic) is { } id) return (t, id);
        return null;
    }
}
