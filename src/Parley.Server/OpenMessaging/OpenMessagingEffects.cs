using System.Collections.Immutable;
using System.Text.Json;
using Parley.Core;
using Parley.Protocol;

namespace Parley.Server.OpenMessaging;

/// <summary>
/// What an Open Messaging conversation owes its channel: every outbound message and event as a webhook body (docs/compatibility.md §Open Messaging webhooks),
/// and — Parley's extension, on by default per integration — a Presence Disconnect event when the conversation ends.
/// Rendered before the commit, stored in the same transaction, sent by the <see cref="WebhookRelay"/>.
/// </summary>
public sealed class OpenMessagingEffects(IDirectoryStore directory, IGuestSessionStore sessions, WebhookRelay relay) : IOutboundEffects
{
    public async ValueTask<ImmutableArray<OutboxItem>> RenderAsync(Conversation after, ImmutableArray<ConversationEvent> events, CancellationToken ct)
    {
        if (after.Channel != ChannelKind.Open) return [];
        var owed = events.Where(e => e is MessageAdded { Message.Direction: MessageDirection.Outbound } or ConversationEnded).ToList();
        if (owed.Count == 0) return [];
        // An integration deleted meanwhile has no webhook left to deliver to.
        if (await directory.GetIntegrationAsync(after.DeploymentId, ct) is not { } integration) return [];
        var contact = await sessions.GetAsync(after.GuestSessionId, ct);
        var items = ImmutableArray.CreateBuilder<OutboxItem>();
        foreach (var e in owed)
        {
            var body = e switch
            {
                MessageAdded m => OpenBodies.Outbound(integration, contact, after.Id, m.Message),
                ConversationEnded end when integration.DisconnectNotification => OpenBodies.Disconnect(integration, contact, after, end.At),
                _ => null,
            };
            if (body is null) continue;
            items.Add(new OutboxItem(Conversations.NewId(), integration.Id, body.Id, after.Id,
                JsonSerializer.SerializeToUtf8Bytes(body, ParleyJson.Wire.OpenNormalized), e.At));
        }
        return items.ToImmutable();
    }

    public void Committed(ImmutableArray<OutboxItem> outbox) => relay.Wake();
}

/// <summary>Open Messaging bodies (docs/compatibility.md §Open Messaging inbound, §Open Messaging webhooks).</summary>
public static class OpenBodies
{
    public static OpenChannel Channel(OpenIntegration integration, GuestSession? contact, string messageId, DateTimeOffset time, bool outbound) =>
        new()
        {
            Id = integration.Id, Platform = "Open", Type = "Private", MessageId = messageId, Time = Wire.Time(time),
            To = outbound ? Recipient(contact) : new OpenRecipient { Id = integration.Id },
            From = outbound ? new OpenRecipient { Id = integration.Id, IdType = "Opaque", Nickname = integration.Name } : Recipient(contact),
            Metadata = new() { ["subType"] = "None" },
        };

    static OpenRecipient Recipient(GuestSession? contact) =>
        new() { Id = contact?.Address, IdType = contact?.AddressType ?? "Opaque", Nickname = contact?.DisplayName };

    public static OpenNormalized Outbound(OpenIntegration integration, GuestSession? contact, string conversationId, ConversationMessage m) => new()
    {
        Id = m.Id,
        Channel = Channel(integration, contact, m.Id, m.Timestamp, outbound: true),
        Type = m.Kind == MessageKind.Event ? "Event" : "Text",
        Text = m.Text,
        Content = m.Kind == MessageKind.Event ? null : [],
        Events = m.Kind == MessageKind.Event
            ? m.Events.Select(e => new WireEvent { EventType = e.EventType, Typing = new TypingBody(e.Type, 5000) }).ToList()
            : null,
        OriginatingEntity = m.OriginatingEntity,
        Direction = "Outbound",
        ConversationId = conversationId,
    };

    /// <summary>Parley's extension: the channel hears that the business ended the conversation (docs/compatibility.md §Open Messaging webhooks: the platform has no such event).</summary>
    public static OpenNormalized Disconnect(OpenIntegration integration, GuestSession? contact, Conversation c, DateTimeOffset at)
    {
        var id = Conversations.NewMessageId();
        return new OpenNormalized
        {
            Id = id,
            Channel = Channel(integration, contact, id, at, outbound: true),
            Type = "Event",
            Events = [new WireEvent { EventType = "Presence", Presence = new PresenceBody("Disconnect") }],
            Direction = "Outbound",
            Metadata = new() { ["readOnly"] = c.DisconnectMode == DisconnectMode.ReadOnly ? "true" : "false" },
            ConversationId = c.Id,
        };
    }

    /// <summary>The answer to an inbound post: the stored message, with the channel as the middleware sent it.</summary>
    public static OpenNormalized Inbound(OpenIntegration integration, GuestSession contact, ConversationMessage m, OpenChannel? sent,
        string? conversationId) => new()
    {
        Id = m.Id,
        Channel = Channel(integration, contact, sent?.MessageId ?? m.Id, m.Timestamp, outbound: false) with
        {
            From = sent?.From ?? Recipient(contact),
            Time = sent?.Time ?? Wire.Time(m.Timestamp),
        },
        Type = m.Kind == MessageKind.Event ? "Event" : "Text",
        Text = m.Text,
        Events = m.Kind == MessageKind.Event ? m.Events.Select(e => new WireEvent { EventType = e.EventType, Typing = new TypingBody(e.Type) }).ToList() : null,
        Direction = "Inbound",
        ConversationId = conversationId,
    };
}
