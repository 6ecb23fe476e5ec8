using System.Text.Json;

namespace Parley.Protocol;

// Open Messaging wire shapes — docs/compatibility.md §Open Messaging inbound.

public sealed record OpenIntegrationRequest
{
    public string? Name { get; init; }
    public string? OutboundNotificationWebhookUrl { get; init; }
    public string? OutboundNotificationWebhookSignatureSecretToken { get; init; }
    public Dictionary<string, string>? WebhookHeaders { get; init; }
    public AddressableRef? SupportedContent { get; init; }
    public AddressableRef? MessagingSetting { get; init; }
    /// <summary>Parley extension: send the channel a Presence Disconnect event when the conversation ends (default true).</summary>
    public bool? DisconnectNotification { get; init; }
    /// <summary>Parley extension: what an inbound message does after the end, as a web deployment's conversationDisconnect.</summary>
    public ConversationDisconnectConfig? ConversationDisconnect { get; init; }
    /// <summary>
    /// Parley extension: when the secret is replaced, how long the old one keeps verifying and signing beside the new
    /// one (seconds, 0 to 604800; the server's default when absent). Without a new secret it ends a running overlap sooner.
    /// </summary>
    public int? SecretRotationOverlapSeconds { get; init; }
    /// <summary>Parley extension: the queue its conversations are routed to (absent on create: the demo queue).</summary>
    public string? QueueId { get; init; }
}

public sealed record OpenIntegrationWire
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string OutboundNotificationWebhookUrl { get; init; }
    /// <summary>Never echoed in full: the last four characters only.</summary>
    public required string OutboundNotificationWebhookSignatureSecretToken { get; init; }
    public Dictionary<string, string> WebhookHeaders { get; init; } = [];
    public string Status { get; init; } = "Active";
    public AddressableRef? Recipient { get; init; }
    public AddressableRef? SupportedContent { get; init; }
    public AddressableRef? MessagingSetting { get; init; }
    public required string DateCreated { get; init; }
    public required string DateModified { get; init; }
    public AddressableRef? CreatedBy { get; init; }
    public AddressableRef? ModifiedBy { get; init; }
    public string CreateStatus { get; init; } = "Completed";
    public bool DisconnectNotification { get; init; }
    public ConversationDisconnectConfig? ConversationDisconnect { get; init; }
    /// <summary>Parley extension: while a replaced secret is still in force, when it stops (absent otherwise).</summary>
    public string? PreviousSecretExpiresAt { get; init; }
    /// <summary>Parley extension: the queue its conversations are routed to.</summary>
    public string? QueueId { get; init; }
    public required string SelfUri { get; init; }
}

public sealed record OpenRecipient
{
    public string? Id { get; init; }
    public string? IdType { get; init; }
    public string? Nickname { get; init; }
    public string? FirstName { get; init; }
    public string? LastName { get; init; }
    public string? Image { get; init; }
    public string? Email { get; init; }
}

public sealed record OpenChannel
{
    public string? Id { get; init; }
    public string? Platform { get; init; }
    public string? Type { get; init; }
    public string? MessageId { get; init; }
    public OpenRecipient? To { get; init; }
    public OpenRecipient? From { get; init; }
    public string? Time { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
}

/// <summary>Inbound message, event and receipt bodies and the deprecated single inbound body share these fields.</summary>
public sealed record OpenInbound
{
    public string? Id { get; init; }
    public OpenChannel? Channel { get; init; }
    public string? Type { get; init; }
    public string? Text { get; init; }
    public List<JsonElement>? Content { get; init; }
    public List<WireEvent>? Events { get; init; }
    public string? Status { get; init; }
    public List<ReceiptReason>? Reasons { get; init; }
    public bool? IsFinalReceipt { get; init; }
    public string? Direction { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
}

public sealed record ReceiptReason(string? Code, string? Message);

/// <summary>What Parley answers for inbound requests and what it POSTs to the webhook (docs/compatibility.md §Open Messaging inbound, §Open Messaging webhooks).</summary>
public sealed record OpenNormalized
{
    public required string Id { get; init; }
    public required OpenChannel Channel { get; init; }
    public required string Type { get; init; }
    public string? Text { get; init; }
    public List<JsonElement>? Content { get; init; }
    public List<WireEvent>? Events { get; init; }
    public string? Status { get; init; }
    public List<ReceiptReason>? Reasons { get; init; }
    public bool? IsFinalReceipt { get; init; }
    public string? OriginatingEntity { get; init; }
    public string? Direction { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
    public string? ConversationId { get; init; }
}

/// <summary>Parley extension: one webhook delivery of the outbox, as the dead-letter list shows it.</summary>
public sealed record DeliveryWire(
    string Id, string IntegrationId, string MessageId, string ConversationId, string State, int Attempts, int? LastStatus,
    string? LastError, string DateCreated, string? DateDelivered, JsonElement Body, string SelfUri);
