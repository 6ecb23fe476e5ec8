using System.Text.Json;
using System.Text.Json.Serialization;

namespace Parley.Protocol;

// Web Messaging Guest API (WebSocket) wire shapes — docs/compatibility.md §Guest frames. Field names are written exactly as the protocol spells them; a request's are read case-insensitively (the web defaults).

// Settable, not init-only, like GuestMessage below: the source generator reads init-only records through its
// parameterised-constructor path, which boxes every field into an argument array and builds its state per frame
// (BENCHMARKS.md, round two, eleventh run). Nothing sets them after the parse.
/// <summary>Every client frame: <c>action</c> selects the operation; the other fields depend on it (docs/compatibility.md §Guest actions).</summary>
public sealed record GuestRequest
{
    public string? Action { get; set; }
    public string? Token { get; set; }
    public string? DeploymentId { get; set; }
    public bool? StartNew { get; set; }
    public string? TracingId { get; set; }
    public GuestMessage? Message { get; set; }
    public bool? CloseAllConnections { get; set; }
    public JsonElement? JourneyContext { get; set; }
    public JsonElement? Data { get; set; }
    public string? Time { get; set; }
}

public sealed record GuestMessage
{
    public string? Type { get; set; }
    public string? Text { get; set; }
    public List<WireEvent>? Events { get; set; }
    public WireChannel? Channel { get; set; }
    public List<JsonElement>? Content { get; set; }
    public Dictionary<string, string>? Metadata { get; set; }
}

public sealed record WireEvent
{
    public string? EventType { get; init; }
    public TypingBody? Typing { get; init; }
    public PresenceBody? Presence { get; init; }
}

public sealed record TypingBody(string? Type, int? Duration = null);

public sealed record PresenceBody(string? Type);

public sealed record WireChannel
{
    public string? Time { get; init; }
    public string? MessageId { get; init; }
    public string? Type { get; init; }
    public WireRecipient? From { get; init; }
    public WireRecipient? To { get; init; }
    public ChannelMetadata? Metadata { get; init; }
}

public sealed record ChannelMetadata(Dictionary<string, string>? CustomAttributes);

public sealed record WireRecipient
{
    public string? Nickname { get; init; }
    public string? FirstName { get; init; }
    public string? LastName { get; init; }
    public string? Image { get; init; }
}

/// <summary>docs/compatibility.md §Session response.</summary>
public sealed record SessionResponse
{
    public required bool Connected { get; init; }
    public bool NewSession { get; init; }
    public bool ReadOnly { get; init; }
    public int MaxCustomDataBytes { get; init; }
    public AllowedMedia? AllowedMedia { get; init; }
    public List<string>? BlockedExtensions { get; init; }
    public bool ClearedExistingSession { get; init; }
    public long? DurationSeconds { get; init; }
    public long? ExpirationDate { get; init; }
}

public sealed record AllowedMedia(InboundMedia Inbound);
public sealed record InboundMedia(List<FileType> FileTypes, int MaxFileSizeKB);
public sealed record FileType(string Type);

/// <summary>docs/compatibility.md §Guest server frames: every conversation message or event pushed to the guest.</summary>
public sealed record StructuredMessage
{
    public required string Id { get; init; }
    public WireChannel? Channel { get; init; }
    public required string Type { get; init; }
    public string? Text { get; init; }
    public required string Direction { get; init; }
    public string? OriginatingEntity { get; init; }
    public List<WireEvent>? Events { get; init; }
    public List<JsonElement>? Content { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
}

public sealed record JwtResponse(string Jwt, long Exp);

/// <summary>docs/compatibility.md §Guest server frames: the rate-limit answer.</summary>
public sealed record TooManyRequestsBody(int RetryAfter, int ErrorCode, string ErrorMessage);

public sealed record EmptyBody;

/// <summary>Guest history: <c>GET /api/v2/webmessaging/messages</c> (docs/compatibility.md §Guest REST).</summary>
public sealed record WebMessagingMessageEntityList(List<StructuredMessage> Entities, int PageSize, int PageNumber, long Total, int PageCount);

/// <summary>Deployment <c>config.json</c> (docs/compatibility.md §Guest REST), the subset the official clients require.</summary>
public sealed record DeploymentConfig(
    string Id, string Version, List<string> Languages, string DefaultLanguage, string ApiEndpoint, string Status,
    MessengerConfig Messenger, EnabledFlag JourneyEvents, AuthConfig Auth);

public sealed record MessengerConfig(bool Enabled, Dictionary<string, string> Styles, Dictionary<string, string> LauncherButton,
    FileUploadConfig FileUpload, AppsConfig Apps);
public sealed record FileUploadConfig(List<FileUploadMode> Modes);
public sealed record FileUploadMode(List<string> FileTypes, int MaxFileSizeKB);
public sealed record AppsConfig(ConversationsConfig Conversations);
public sealed record ConversationsConfig(
    string MessagingEndpoint, bool ShowAgentTypingIndicator, bool ShowUserTypingIndicator, EnabledFlag AutoStart,
    ConversationDisconnectConfig ConversationDisconnect, EnabledFlag ConversationClear, NotificationsConfig Notifications,
    EnabledFlag Markdown, EnabledFlag Humanize);
public sealed record ConversationDisconnectConfig(bool Enabled, string Type);
public sealed record NotificationsConfig(bool Enabled, string NotificationContentType);
public sealed record EnabledFlag(bool Enabled);
public sealed record AuthConfig(bool Enabled, bool AllowSessionUpgrade);
