using System.Collections.Immutable;
using Parley.Core;
using Parley.Protocol;

namespace Parley.Server.GuestApi;

/// <summary>Renders domain facts as Guest API frames (docs/compatibility.md §Guest server frames). Each frame is rendered once per event.</summary>
public static class GuestFrames
{
    static readonly ParleyJson Json = ParleyJson.Wire;

    public static StructuredMessage ToWire(ConversationMessage m) => new()
    {
        Id = m.Id,
        Channel = new WireChannel
        {
            Time = Wire.Time(m.Timestamp),
            MessageId = m.Id,
            Type = m.Direction == MessageDirection.Outbound ? "Private" : null,
            From = m.Direction == MessageDirection.Outbound ? new WireRecipient { Nickname = m.SenderName } : null,
        },
        Type = m.Kind.ToString(),
        Text = m.Text,
        Direction = m.Direction.ToString(),
        OriginatingEntity = m.OriginatingEntity ?? "",
        Events = m.Events.IsDefaultOrEmpty ? null : m.Events.Select(ToWire).ToList(),
        Content = [],
        Metadata = m.Metadata is { IsEmpty: false } meta ? new Dictionary<string, string>(meta) : null,
    };

    static WireEvent ToWire(MessageEvent e) => e.EventType switch
    {
        "Typing" => new WireEvent { EventType = "Typing", Typing = new TypingBody(e.Type, e.Type == "On" ? 5000 : null) },
        _ => new WireEvent { EventType = e.EventType, Presence = new PresenceBody(e.Type) },
    };

    public static byte[] Message(ConversationMessage m, string? tracingId) =>
        Wire.Frame("message", "StructuredMessage", 200, ToWire(m), Json.StructuredMessage, tracingId);

    /// <summary>Presence Disconnect (docs/compatibility.md §Guest server frames): <c>metadata.readOnly</c> "true" in ReadOnly mode, "false" in Send mode.</summary>
    public static byte[] Disconnect(Conversation c, DateTimeOffset at)
    {
        var bot = c.Participants.FirstOrDefault(p => p.Purpose != ParticipantPurpose.Customer);
        var body = new StructuredMessage
        {
            Id = Conversations.NewMessageId(),
            Channel = new WireChannel { Time = Wire.Time(at), Type = "Private", From = new WireRecipient { Nickname = bot?.Name }, To = new WireRecipient() },
            Type = "Event",
            Direction = "Outbound",
            OriginatingEntity = "Bot",
            Events = [new WireEvent { EventType = "Presence", Presence = new PresenceBody("Disconnect") }],
            Metadata = new() { ["readOnly"] = c.DisconnectMode == DisconnectMode.ReadOnly ? "true" : "false", ["conversationId"] = c.Id },
        };
        return Wire.Frame("message", "StructuredMessage", 200, body, Json.StructuredMessage);
    }

    public static readonly byte[] SessionCleared = Wire.Frame("message", "SessionClearedEvent", 200, new EmptyBody(), Json.EmptyBody);
    /// <summary>The session's lifetime is over (docs/compatibility.md §Guest server frames); the socket is closed after it.</summary>
    public static readonly byte[] SessionExpired = Wire.Frame("response", "SessionExpiredEvent", 200, new EmptyBody(), Json.EmptyBody);
    public static readonly byte[] ConnectionClosed = Wire.Frame("message", "ConnectionClosedEvent", 200, new EmptyBody(), Json.EmptyBody);

    public static byte[] Session(SessionResponse body, string? tracingId) =>
        Wire.Frame("response", "SessionResponse", 200, body, Json.SessionResponse, tracingId);

    public static readonly ImmutableArray<string> BlockedExtensions = [".exe", ".bat", ".cmd", ".com", ".js", ".vbs", ".ps1"];
}
