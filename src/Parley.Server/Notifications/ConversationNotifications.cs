using System.Collections.Immutable;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.Platform;

namespace Parley.Server.Notifications;

/// <summary>
/// Publishes a committed change to this node's notification sockets (docs/notifications.md). Every node gets every change
/// (the <see cref="IChangeBroadcast"/> carries it) and publishes to the sockets it holds. Each topic's body is rendered
/// only when a socket here is subscribed to it, once, and the same bytes are queued on each subscriber.
/// </summary>
public sealed class ConversationNotifications(NotificationHub hub, Terminations.ReceiptNotifications receipts) : ILocalNotifications
{
    public bool HasSubscribers => hub.HasAnySubscriber;

    public void Publish(ConversationChange change)
    {
        if (!hub.HasAnySubscriber) return;
        var after = change.After;
        var messages = change.Messages.IsDefault ? [] : change.Messages;
        if (QueueOf(after) is { } queue)
        {
            Send(NotificationTopics.QueueConversationMessages.For(queue), () => MessageConversation(after, messages, queue), ParleyJson.Wire.QueueMessageConversationEvent);
            Send(NotificationTopics.QueueConversations.For(queue), () => Conversation(after, messages, queue), ParleyJson.Wire.QueueConversationEvent);
        }
        if (change.Started) Send(NotificationTopics.CustomerStart.For(after.Id), () => CustomerEvent(after, after.StartTime), ParleyJson.Wire.CustomerDetailEvent);
        if (change.EndedAt is { } at) Send(NotificationTopics.CustomerEnd.For(after.Id), () => CustomerEvent(after, at), ParleyJson.Wire.CustomerDetailEvent);
    }

    public void ChannelChanged(string channelId) => hub.Reload(channelId);

    public void ReceiptChanged(string terminationId) => receipts.Changed(terminationId);

    void Send<T>(string topic, Func<T> body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        hub.Publish(topic, () => Wire.NotificationFrame(topic, body(), type, Guid.NewGuid().ToString()));

    /// <summary>The queue the conversation was routed to; null on one stored before queues existed (no queue topic carries it).</summary>
    static string? QueueOf(Conversation c) => c.QueueId;

    /// <summary>The queue on a participant, where the platform names it: the routed (non-customer) side, as the conversation API shows it.</summary>
    static TopicUriReference? ParticipantQueue(Participant p, string queue) => p.Purpose == ParticipantPurpose.Customer ? null : new TopicUriReference(queue);

    /// <summary>What of a commit the notification channels see: every commit that changed something (null: none).</summary>
    public static ConversationChange? ChangeOf(Conversation after, ImmutableArray<ConversationEvent> events, bool started)
    {
        DateTimeOffset? ended = null;
        var messages = ImmutableArray.CreateBuilder<ConversationMessage>();
        var participants = false;
        foreach (var e in events)
        {
            switch (e)
            {
                case ConversationEnded end: ended = end.At; break;
                case MessageAdded m: messages.Add(m.Message); break;
                case ParticipantDisconnected: participants = true; break;
            }
        }
        return started || ended is not null || messages.Count > 0 || participants
            ? new ConversationChange(after, started, ended, messages.ToImmutable(), participants || ended is not null) : null;
    }

    // ------------------------------------------------------------------ bodies

    static string State(ParticipantState s) => PlatformWire.State(s);

    static string Direction(Conversation c, Participant p) =>
        p.Purpose == ParticipantPurpose.Customer ? PlatformWire.Direction(c.OriginatingDirection) : "inbound";

    /// <summary>The notification topics' disconnect types (lower case; an idle end is the platform's <c>timeout</c>).</summary>
    static string? DisconnectType(DisconnectType? d) => d == Core.DisconnectType.Inactivity ? "timeout" : PlatformWire.DisconnectType(d);

    static string? Address(Conversation c, Participant p) => p.Purpose == ParticipantPurpose.Customer ? c.GuestSessionId : c.DeploymentId;

    static TopicMessageMetadata Metadata(ConversationMessage m) => new(m.Kind.ToString(),
        m.Events.IsDefaultOrEmpty ? null : [.. m.Events.Select(e => new TopicMessageMetadataEvent(e.EventType, e.Type))]);

    static string MessageStatus(ConversationMessage m) => m.Status ?? (m.Direction == MessageDirection.Inbound ? "received" : "sent");

    static string? Timeout(Conversation c) => c.InactivityTimeout is { } t ? System.Xml.XmlConvert.ToString(t) : null;

    /// <summary><c>QueueConversationMessageEventTopicMessageConversation</c>: each participant with the commit's messages it sent.</summary>
    public static QueueMessageConversationEvent MessageConversation(Conversation c, ImmutableArray<ConversationMessage> messages, string queue) => new()
    {
        Id = c.Id,
        InactivityTimeout = Timeout(c),
        Participants = [.. c.Participants.Select(p => new QueueMessageParticipant
        {
            Id = p.Id, Name = p.Name, Address = Address(c, p), StartTime = Wire.Time(p.StartTime), ConnectedTime = Wire.Time(p.StartTime),
            EndTime = Wire.Time(p.EndTime), Purpose = PlatformWire.Purpose(p.Purpose), State = State(p.State), InitialState = "connected",
            Direction = Direction(c, p), DisconnectType = DisconnectType(p.DisconnectType), Queue = ParticipantQueue(p, queue),
            Type = PlatformWire.MessengerType(c.Channel),
            Messages = [.. messages.Where(m => m.ParticipantId == p.Id).Select(m => new QueueMessageDetails
            {
                Message = new TopicUriReference(m.Id), MessageTime = Wire.Time(m.Timestamp), MessageStatus = MessageStatus(m), MessageMetadata = Metadata(m),
            })],
        })],
    };

    /// <summary><c>QueueConversationEventTopicConversation</c>: each participant's message communication with the commit's messages.</summary>
    public static QueueConversationEvent Conversation(Conversation c, ImmutableArray<ConversationMessage> messages, string queue) => new()
    {
        Id = c.Id,
        MaxParticipants = c.Participants.Length,
        InactivityTimeout = Timeout(c),
        Participants = [.. c.Participants.Select(p => new QueueConversationParticipant
        {
            Id = p.Id, Name = p.Name, ConnectedTime = Wire.Time(p.StartTime), EndTime = Wire.Time(p.EndTime), QueueId = ParticipantQueue(p, queue)?.Id,
            Purpose = PlatformWire.Purpose(p.Purpose), Address = Address(c, p),
            Messages =
            [
                new QueueConversationMessageMedia
                {
                    Id = p.CommunicationId, State = State(p.State), InitialState = "connected", Direction = Direction(c, p),
                    DisconnectType = DisconnectType(p.DisconnectType), ConnectedTime = Wire.Time(p.StartTime), DisconnectedTime = Wire.Time(p.EndTime),
                    FromAddress = new TopicAddress(p.Name, Address(c, p)),
                    ToAddress = new TopicAddress(null, p.Purpose == ParticipantPurpose.Customer ? c.DeploymentId : c.GuestSessionId),
                    Type = PlatformWire.MessengerType(c.Channel),
                    Messages = [.. messages.Where(m => m.ParticipantId == p.Id).Select(m => new QueueConversationMessageDetails
                    {
                        MessageId = m.Id, MessageTime = Wire.Time(m.Timestamp), MessageStatus = MessageStatus(m), MessageMetadata = Metadata(m),
                    })],
                },
            ],
        })],
    };

    /// <summary>CustomerStartEvent / CustomerEndEvent (docs/compatibility.md §Notification channels): epoch-ms eventTime, upper-case enums.</summary>
    public static CustomerDetailEvent CustomerEvent(Conversation c, DateTimeOffset at)
    {
        var customer = c.Customer;
        return new CustomerDetailEvent
        {
            EventTime = at.ToUnixTimeMilliseconds(),
            ConversationId = c.Id,
            ParticipantId = customer.Id,
            SessionId = customer.CommunicationId,
            MediaType = "MESSAGE",
            MessageType = c.Channel == ChannelKind.Open ? "OPEN" : "WEBMESSAGING",
            Direction = c.OriginatingDirection == MessageDirection.Inbound ? "INBOUND" : "OUTBOUND",
            AddressFrom = c.GuestSessionId,
            AddressTo = c.DeploymentId,
            DivisionId = "*",
            // CustomerEndEvent's enum has no INACTIVITY: an idle end is its TIMEOUT.
            DisconnectType = customer.DisconnectType is { } type ? type == Core.DisconnectType.Inactivity ? "TIMEOUT" : type.ToString().ToUpperInvariant() : null,
        };
    }
}
