using System.Collections.Immutable;

namespace Parley.Core;

public enum ConversationState { Connected, Disconnected }

public enum ParticipantState { Connected, Disconnected }

/// <summary>Who a participant is. Customer is the guest; Workflow is the bot; Agent is a human on the platform side.</summary>
public enum ParticipantPurpose { Customer, Workflow, Agent }

public enum DisconnectType { Client, Peer, System, Endpoint, Inactivity }

public enum MessageDirection { Inbound, Outbound }

public enum ChannelKind { WebMessaging, Open }

/// <summary>
/// What the guest sees when the conversation is ended from the platform side; snapshotted from the deployment
/// when the conversation starts, so a later configuration change cannot reopen an ended conversation.
/// </summary>
public enum DisconnectMode { None, ReadOnly, Send }

/// <summary>Which lever ended a conversation; recorded in the audit log.</summary>
public enum EndLever { ParticipantPatch, ConversationPatch, ConversationDisconnect, GuestClear, Inactivity,
    /// <summary>A termination policy of the deployment or integration ended it (the actor is <c>parley:policy:{id}</c>).</summary>
    Policy,
    /// <summary>A bulk termination (<c>POST /api/v2/parley/terminations</c>) ended it.</summary>
    Bulk }

public sealed record Participant(
    string Id,
    ParticipantPurpose Purpose,
    string Name,
    string CommunicationId,
    ParticipantState State,
    DateTimeOffset StartTime,
    DateTimeOffset? EndTime = null,
    DisconnectType? DisconnectType = null)
{
    public bool IsConnected => State == ParticipantState.Connected;
}

/// <summary>
/// A message conversation: the aggregate that the state machine guards. <see cref="QueueId"/> is the queue it was routed
/// to, taken from its deployment or integration when it started (null only on conversations stored before queues existed). <see cref="Version"/> moves with every change
/// of state (a participant leaving, the end); a message is appended under the version it was decided on.
/// </summary>
public sealed record Conversation(
    string Id,
    ChannelKind Channel,
    string DeploymentId,
    string GuestSessionId,
    DisconnectMode DisconnectMode,
    MessageDirection OriginatingDirection,
    ConversationState State,
    DateTimeOffset StartTime,
    DateTimeOffset? EndTime,
    long Version,
    ImmutableArray<Participant> Participants,
    TimeSpan? InactivityTimeout = null,
    string? QueueId = null,
    string? Campaign = null,
    string? StartedBy = null)
{
    // Campaign: the tag an agentless request that started it carried (docs/ending-sessions.md "Campaign tag").
    // StartedBy: the OAuth client (a bot) whose agentless request started it; null when the guest started it.
    public bool IsEnded => State == ConversationState.Disconnected;

    public Participant Customer => Participants.First(p => p.Purpose == ParticipantPurpose.Customer);

    public Participant? FindParticipant(string participantId) => Participants.FirstOrDefault(p => p.Id == participantId);

    public Participant? FindByCommunication(string communicationId) =>
        Participants.FirstOrDefault(p => p.CommunicationId == communicationId);

    /// <summary>True when the guest may no longer add to this conversation and must start a new one explicitly.</summary>
    public bool IsReadOnlyForGuest => IsEnded && DisconnectMode == DisconnectMode.ReadOnly;
}

/// <summary>One event inside a message body: Typing On, Presence Join, … (eventType + its sub-type).</summary>
public sealed record MessageEvent(string EventType, string Type);

public enum MessageKind { Text, Event, Structured }

/// <summary>
/// A stored message. <see cref="Sequence"/> is its place in the conversation (1, 2, 3, … with no gap), assigned by the
/// store in the commit that stores it; 0 on a message not yet committed. Messages are ordered by it everywhere.
/// </summary>
public sealed record ConversationMessage(
    string Id,
    string ConversationId,
    string ParticipantId,
    MessageDirection Direction,
    MessageKind Kind,
    string? Text,
    ImmutableArray<MessageEvent> Events,
    DateTimeOffset Timestamp,
    string? OriginatingEntity,
    string? SenderName,
    long Version,
    ImmutableDictionary<string, string>? Metadata = null,
    string? Status = null,
    string? ExternalKey = null,
    long Sequence = 0);

/// <summary>
/// A guest session: who the customer is on one channel and which conversation is theirs now. On web messaging it is
/// what a guest token names (only the token's hash is kept) and <see cref="DeploymentId"/> is the deployment; on Open
/// Messaging it is the external sender (<see cref="Address"/>, e.g. a phone number) of one integration
/// (<see cref="DeploymentId"/> is then the integration id).
/// </summary>
public sealed record GuestSession(
    string Id,
    string TokenHash,
    string DeploymentId,
    string? ConversationId,
    DateTimeOffset CreatedAt,
    ChannelKind Channel = ChannelKind.WebMessaging,
    string? Address = null,
    string? AddressType = null,
    string? DisplayName = null);

/// <summary>
/// A delivery to a third-party channel, written in the same commit as the fact it carries (a transactional outbox):
/// a restart resends it instead of forgetting it. <see cref="Body"/> is the exact bytes to send and sign.
/// </summary>
public sealed record OutboxItem(string Id, string Destination, string MessageId, string ConversationId, byte[] Body, DateTimeOffset DueAt);

/// <summary>Where a conversation lives and what ending it means for the customer.</summary>
public sealed record ChannelSettings(ChannelKind Channel, string ChannelId, DisconnectMode Mode, string? CustomerName = null,
    TimeSpan? InactivityTimeout = null, string? QueueId = null);

public sealed record TerminationAudit(
    string Id,
    string ConversationId,
    string? ParticipantId,
    EndLever Lever,
    string ClientId,
    string? Reason,
    DateTimeOffset At,
    int? SocketsNotified,
    string? UserId = null,
    string? UserName = null);
