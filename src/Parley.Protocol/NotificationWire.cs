using System.Text.Json.Serialization;

namespace Parley.Protocol;

// Notifications API wire shapes (docs/notifications.md): channels, subscriptions, available topics, and the event bodies
// of the topics Parley serves. Bodies follow the official SDK models named on each record (JS SDK index.d.ts, Java SDK
// docs for the enum spellings); fields Parley has nothing for are left out (null), as the platform leaves them.

/// <summary><c>Channel</c>: what POST /api/v2/notifications/channels answers.</summary>
public sealed record ChannelWire(string ConnectUri, string Id, string Expires);

/// <summary><c>ChannelTopic</c>: one subscription as a channel holds it (<c>state</c> Permitted or Rejected).</summary>
public sealed record ChannelTopicWire
{
    public required string Id { get; init; }
    public required string State { get; init; }
    public string? RejectionReason { get; init; }
    public List<string>? MissingPermissions { get; init; }
}

/// <summary><c>AvailableTopic</c>: one topic of GET /api/v2/notifications/availabletopics.</summary>
public sealed record AvailableTopicWire
{
    public required string Id { get; init; }
    public required string Description { get; init; }
    public required List<string> RequiresPermissions { get; init; }
    public List<string> PermissionDetails { get; init; } = [];
    public required string Visibility { get; init; }
    public List<string> Transports { get; init; } = ["Websocket"];
    public List<string> TopicParameters { get; init; } = ["id"];
    public bool PublicApiTemplateUriPaths { get; init; }
    /// <summary>The event body as a JSON schema (its top-level properties and their JSON types).</summary>
    public System.Text.Json.JsonElement? Schema { get; init; }
}

/// <summary><c>{"entities": [...]}</c>, the listing form of the Notifications API.</summary>
public sealed record EntitiesWire<T>(List<T> Entities);

/// <summary><c>{id, name}</c>: the SDK's <c>…EventTopicUriReference</c>.</summary>
public sealed record TopicUriReference(string Id, string? Name = null);

/// <summary><c>…EventTopicMessageMetadata</c>: the message's kind and its events (Typing On, Presence Join, …).</summary>
public sealed record TopicMessageMetadata(string Type, List<TopicMessageMetadataEvent>? Events = null);

public sealed record TopicMessageMetadataEvent(string EventType, string SubType);

// ---------------------------------------------------------------- v2.routing.queues.{id}.conversations.messages

/// <summary><c>QueueConversationMessageEventTopicMessageConversation</c>: the message conversation, each participant's new messages on it.</summary>
public sealed record QueueMessageConversationEvent
{
    public required string Id { get; init; }
    public string? Name { get; init; }
    public required List<QueueMessageParticipant> Participants { get; init; }
    public string? InactivityTimeout { get; init; }
}

/// <summary><c>QueueConversationMessageEventTopicMessageMediaParticipant</c>; enums lower-case (<c>connected</c>, <c>client</c>, <c>webmessaging</c>).</summary>
public sealed record QueueMessageParticipant
{
    public required string Id { get; init; }
    public string? Name { get; init; }
    public string? Address { get; init; }
    public string? StartTime { get; init; }
    public string? ConnectedTime { get; init; }
    public string? EndTime { get; init; }
    public required string Purpose { get; init; }
    public required string State { get; init; }
    public string? InitialState { get; init; }
    public string? Direction { get; init; }
    public string? DisconnectType { get; init; }
    public bool Held { get; init; }
    public bool WrapupRequired { get; init; }
    public TopicUriReference? Queue { get; init; }
    public required List<QueueMessageDetails> Messages { get; init; }
    public string? Type { get; init; }
}

/// <summary><c>QueueConversationMessageEventTopicMessageDetails</c>: <c>message</c> is the message's id.</summary>
public sealed record QueueMessageDetails
{
    public required TopicUriReference Message { get; init; }
    public required string MessageTime { get; init; }
    public string? MessageStatus { get; init; }
    public int MessageSegmentCount { get; init; } = 1;
    public TopicMessageMetadata? MessageMetadata { get; init; }
}

// ---------------------------------------------------------------- v2.routing.queues.{id}.conversations

/// <summary><c>QueueConversationEventTopicConversation</c>: the generic conversation, its participants each with one message communication.</summary>
public sealed record QueueConversationEvent
{
    public required string Id { get; init; }
    public int MaxParticipants { get; init; }
    public required List<QueueConversationParticipant> Participants { get; init; }
    public string? InactivityTimeout { get; init; }
}

/// <summary><c>QueueConversationEventTopicParticipant</c>: the queue as <c>queueId</c>, the media under <c>messages</c>.</summary>
public sealed record QueueConversationParticipant
{
    public required string Id { get; init; }
    public string? ConnectedTime { get; init; }
    public string? EndTime { get; init; }
    public string? Name { get; init; }
    public string? QueueId { get; init; }
    public required string Purpose { get; init; }
    public string? Address { get; init; }
    public bool WrapupRequired { get; init; }
    public required List<QueueConversationMessageMedia> Messages { get; init; }
}

/// <summary><c>QueueConversationEventTopicMessage</c>: one message communication (its state and its new messages).</summary>
public sealed record QueueConversationMessageMedia
{
    public required string Id { get; init; }
    public required string State { get; init; }
    public string? InitialState { get; init; }
    public string? Direction { get; init; }
    public bool Held { get; init; }
    public string? DisconnectType { get; init; }
    public string? ConnectedTime { get; init; }
    public string? DisconnectedTime { get; init; }
    public TopicAddress? ToAddress { get; init; }
    public TopicAddress? FromAddress { get; init; }
    public required List<QueueConversationMessageDetails> Messages { get; init; }
    public string? Type { get; init; }
}

/// <summary><c>QueueConversationEventTopicAddress</c>.</summary>
public sealed record TopicAddress(string? Name = null, string? AddressNormalized = null);

/// <summary><c>QueueConversationEventTopicMessageDetails</c>: here the message's id is <c>messageId</c>.</summary>
public sealed record QueueConversationMessageDetails
{
    public required string MessageId { get; init; }
    public required string MessageTime { get; init; }
    public string? MessageStatus { get; init; }
    public int MessageSegmentCount { get; init; } = 1;
    public TopicMessageMetadata? MessageMetadata { get; init; }
}

// ---------------------------------------------------------------- v2.detail.events.conversation.{id}.customer.start|end

/// <summary>
/// <c>CustomerStartEvent</c> / <c>CustomerEndEvent</c> (docs/compatibility.md §Notification channels): epoch-ms <c>eventTime</c>,
/// upper-case enums; <c>disconnectType</c> on the end only.
/// </summary>
public sealed record CustomerDetailEvent
{
    public required long EventTime { get; init; }
    public required string ConversationId { get; init; }
    public required string ParticipantId { get; init; }
    public required string SessionId { get; init; }
    public string? DisconnectType { get; init; }
    public required string MediaType { get; init; }
    public required string MessageType { get; init; }
    public required string Direction { get; init; }
    public string? AddressFrom { get; init; }
    public string? AddressTo { get; init; }
    public string? DivisionId { get; init; }
    public long? InteractingDurationMs { get; init; }
}

/// <summary>The notification frame's <c>metadata</c>.</summary>
public sealed record NotificationMetadata([property: JsonPropertyName("CorrelationId")] string CorrelationId);

/// <summary>A <c>channel.metadata</c> or <c>v2.system.socket_closing</c> frame's body.</summary>
public sealed record ChannelMessageBody(string Message);

/// <summary>A frame that is not a topic event: heartbeat, pong, a closing notice.</summary>
public sealed record ChannelFrame(string TopicName, ChannelMessageBody EventBody, string? Version = null);
