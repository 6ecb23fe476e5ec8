using Parley.Core;
using Parley.Protocol;

namespace Parley.Server.Platform;

/// <summary>Domain → Platform API shapes (docs/compatibility.md §Conversation models, §Analytics details). The only place that knows both spellings.</summary>
public static class PlatformWire
{
    public static string Purpose(ParticipantPurpose p) => p switch
    {
        ParticipantPurpose.Customer => "customer",
        ParticipantPurpose.Workflow => "workflow",
        _ => "agent",
    };

    public static string State(ParticipantState s) => s == ParticipantState.Connected ? "connected" : "disconnected";

    public static string? DisconnectType(DisconnectType? d) => d?.ToString().ToLowerInvariant();

    public static string Direction(MessageDirection d) => d == MessageDirection.Inbound ? "inbound" : "outbound";

    public static string MessengerType(ChannelKind k) => k == ChannelKind.Open ? "open" : "webmessaging";

    public static string ConversationUri(string id) => $"/api/v2/conversations/messages/{id}";

    public static string QueueUri(string id) => $"/api/v2/routing/queues/{id}";

    /// <summary>
    /// The queue a participant shows (docs/compatibility.md §Queues): the platform names it on the participants of its own
    /// side (acd, agent), never on the customer; Parley's are the bot (workflow) and agents. Null before queues existed.
    /// </summary>
    static string? ParticipantQueue(Conversation c, Participant p) => p.Purpose == ParticipantPurpose.Customer ? null : c.QueueId;

    /// <summary>
    /// Participant data: the campaign tag an agentless request started the conversation with sits on the customer
    /// participant's <c>attributes</c>, where the platform keeps participant data (docs/ending-sessions.md "Campaign tag").
    /// </summary>
    static Dictionary<string, string> Attributes(Conversation c, Participant p) =>
        p.Purpose == ParticipantPurpose.Customer && c.Campaign is { } campaign ? new() { ["campaign"] = campaign } : [];

    static string ParticipantDirection(Conversation c, Participant p) =>
        p.Purpose == ParticipantPurpose.Customer ? Direction(c.OriginatingDirection) : "inbound";

    static string MessageStatus(ConversationMessage m) => m.Status ?? (m.Direction == MessageDirection.Inbound ? "received" : "sent");

    static List<MessageDetails> Details(IEnumerable<ConversationMessage> messages, string participantId) =>
        messages.Where(m => m.ParticipantId == participantId)
            .Select(m => new MessageDetails
            {
                MessageId = m.Id, MessageStatus = MessageStatus(m), MessageTime = Wire.Time(m.Timestamp),
                MessageURI = $"/api/v2/conversations/messages/{m.ConversationId}/messages/{m.Id}",
                Sequence = Sequence(m),
            })
            .ToList();

    static (Address? From, Address? To) Addresses(Conversation c, Participant p) =>
        p.Purpose == ParticipantPurpose.Customer
            ? (new Address { AddressNormalized = c.GuestSessionId, Name = p.Name }, new Address { AddressNormalized = c.DeploymentId })
            : (new Address { AddressNormalized = c.DeploymentId, Name = p.Name }, new Address { AddressNormalized = c.GuestSessionId });

    public static MessageConversation ToMessageConversation(Conversation c, IReadOnlyList<ConversationMessage> messages) => new()
    {
        Id = c.Id,
        SelfUri = ConversationUri(c.Id),
        Participants = c.Participants.Select(p =>
        {
            var (from, to) = Addresses(c, p);
            return new MessageMediaParticipant
            {
                Id = p.Id, Name = p.Name, Purpose = Purpose(p.Purpose), State = State(p.State),
                Direction = ParticipantDirection(c, p), DisconnectType = DisconnectType(p.DisconnectType),
                StartTime = Wire.Time(p.StartTime), ConnectedTime = Wire.Time(p.StartTime), EndTime = Wire.Time(p.EndTime),
                Type = MessengerType(c.Channel), Messages = Details(messages, p.Id), FromAddress = from, ToAddress = to,
                Address = from?.AddressNormalized,
                Queue = ParticipantQueue(c, p) is { } queue ? new AddressableRef(queue, SelfUri: QueueUri(queue)) : null,
                Attributes = Attributes(c, p),
            };
        }).ToList(),
    };

    public static ConversationWire ToConversation(Conversation c, IReadOnlyList<ConversationMessage> messages) => new()
    {
        Id = c.Id,
        StartTime = Wire.Time(c.StartTime),
        EndTime = Wire.Time(c.EndTime),
        State = c.IsEnded ? "disconnected" : "connected",
        SelfUri = $"/api/v2/conversations/{c.Id}",
        Participants = c.Participants.Select(p =>
        {
            var (from, to) = Addresses(c, p);
            return new ParticipantWire
            {
                Id = p.Id, Name = p.Name, Purpose = Purpose(p.Purpose), State = State(p.State),
                StartTime = Wire.Time(p.StartTime), ConnectedTime = Wire.Time(p.StartTime), EndTime = Wire.Time(p.EndTime),
                Address = from?.AddressNormalized, QueueId = ParticipantQueue(c, p), Attributes = Attributes(c, p),
                Messages =
                [
                    new CommunicationWire
                    {
                        Id = p.CommunicationId, State = State(p.State), Direction = ParticipantDirection(c, p),
                        DisconnectType = DisconnectType(p.DisconnectType), ConnectedTime = Wire.Time(p.StartTime),
                        DisconnectedTime = Wire.Time(p.EndTime), FromAddress = from, ToAddress = to,
                        Messages = Details(messages, p.Id), Type = MessengerType(c.Channel),
                    },
                ],
            };
        }).ToList(),
    };

    public static MessageData ToMessageData(Conversation c, ConversationMessage m) => new()
    {
        Id = m.Id,
        Timestamp = Wire.Time(m.Timestamp),
        Direction = Direction(m.Direction),
        MessengerType = MessengerType(c.Channel),
        TextBody = m.Text,
        Status = MessageStatus(m),
        FromAddress = m.Direction == MessageDirection.Inbound ? c.GuestSessionId : c.DeploymentId,
        ToAddress = m.Direction == MessageDirection.Inbound ? c.DeploymentId : c.GuestSessionId,
        ConversationId = c.Id,
        NormalizedMessage = new NormalizedMessage
        {
            Id = m.Id, Type = m.Kind.ToString(), Text = m.Text, Direction = m.Direction.ToString(), OriginatingEntity = m.OriginatingEntity,
            Events = m.Events.IsDefaultOrEmpty ? null
                : m.Events.Select(e => e.EventType == "Typing"
                    ? new WireEvent { EventType = "Typing", Typing = new TypingBody(e.Type) }
                    : new WireEvent { EventType = e.EventType, Presence = new PresenceBody(e.Type) }).ToList(),
        },
        SelfUri = $"/api/v2/conversations/messages/{c.Id}/messages/{m.Id}",
        Sequence = Sequence(m),
    };

    /// <summary>A committed message's sequence (a Parley extension); absent on one that has none yet.</summary>
    static long? Sequence(ConversationMessage m) => m.Sequence > 0 ? m.Sequence : null;

    public static AnalyticsConversation ToAnalytics(Conversation c) => new()
    {
        ConversationId = c.Id,
        ConversationStart = Wire.Time(c.StartTime),
        ConversationEnd = Wire.Time(c.EndTime),
        OriginatingDirection = Direction(c.OriginatingDirection),
        ConversationInitiator = c.OriginatingDirection == MessageDirection.Inbound ? "customer" : "workflow",
        CustomerParticipation = true,
        Participants = c.Participants.Select(p =>
        {
            var (from, to) = Addresses(c, p);
            return new AnalyticsParticipant(p.Id, p.Name, Purpose(p.Purpose),
            [
                new AnalyticsSession
                {
                    SessionId = p.CommunicationId, MediaType = "message", MessageType = MessengerType(c.Channel),
                    Direction = ParticipantDirection(c, p), AddressFrom = from?.AddressNormalized, AddressTo = to?.AddressNormalized,
                    Segments =
                    [
                        new AnalyticsSegment
                        {
                            SegmentStart = Wire.Time(p.StartTime), SegmentEnd = Wire.Time(p.EndTime), SegmentType = "interact",
                            // Every segment of a routed conversation names its queue, the customer's included, so a
                            // segment filter on queueId finds the conversation.
                            DisconnectType = DisconnectType(p.DisconnectType), QueueId = c.QueueId,
                        },
                    ],
                },
            ]);
        }).ToList(),
    };
}
