using System.Text.Json;
using System.Text.Json.Serialization;

namespace Parley.Protocol;

// Platform API wire shapes — docs/compatibility.md §Conversation endpoints, §Conversation models, §Platform errors, §OAuth token, §Analytics details. Times are ISO-8601 UTC strings with milliseconds (Wire.Time).

/// <summary>The platform's error body (docs/compatibility.md §Platform errors); the only error form Platform endpoints write.</summary>
public sealed record ErrorBody
{
    public required string Message { get; init; }
    public required string Code { get; init; }
    public required int Status { get; init; }
    public string? MessageWithParams { get; init; }
    public Dictionary<string, string> MessageParams { get; init; } = [];
    public required string ContextId { get; init; }
    public List<ErrorDetail> Details { get; init; } = [];
    public List<ErrorBody> Errors { get; init; } = [];
}

public sealed record ErrorDetail(string? ErrorCode = null, string? FieldName = null, string? EntityId = null, string? EntityName = null);

/// <summary>OAuth errors use their own form (docs/compatibility.md §OAuth token), not ErrorBody.</summary>
public sealed record OAuthError(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("error_description")] string ErrorDescription);

public sealed record TokenResponse(
    [property: JsonPropertyName("access_token")] string AccessToken,
    [property: JsonPropertyName("token_type")] string TokenType,
    [property: JsonPropertyName("expires_in")] long ExpiresIn);

public sealed record EntityListing<T>
{
    public required List<T> Entities { get; init; }
    public int PageSize { get; init; }
    public int PageNumber { get; init; }
    public long Total { get; init; }
    public int PageCount { get; init; }
    public string? FirstUri { get; init; }
    public string? LastUri { get; init; }
    public string? SelfUri { get; init; }
    public string? NextUri { get; init; }
    public string? PreviousUri { get; init; }
}

public sealed record AddressableRef(string Id, string? Name = null, string? SelfUri = null);

public sealed record Address
{
    public string? Name { get; init; }
    public string? NameRaw { get; init; }
    public string? AddressNormalized { get; init; }
    public string? AddressRaw { get; init; }
    public string? AddressDisplayable { get; init; }
}

/// <summary><c>GET /api/v2/conversations/messages/{id}</c> (docs/compatibility.md §Conversation models).</summary>
public sealed record MessageConversation
{
    public required string Id { get; init; }
    public string? Name { get; init; }
    public required List<MessageMediaParticipant> Participants { get; init; }
    public List<string> OtherMediaUris { get; init; } = [];
    public List<AddressableRef> Divisions { get; init; } = [];
    public string? SelfUri { get; init; }
}

public sealed record MessageMediaParticipant
{
    public required string Id { get; init; }
    public string? Name { get; init; }
    public string? Address { get; init; }
    public string? StartTime { get; init; }
    public string? ConnectedTime { get; init; }
    public string? EndTime { get; init; }
    public required string Purpose { get; init; }
    public required string State { get; init; }
    public string? Direction { get; init; }
    public string? DisconnectType { get; init; }
    public bool Held { get; init; }
    public bool WrapupRequired { get; init; }
    public Dictionary<string, string> Attributes { get; init; } = [];
    public List<MessageDetails> Messages { get; init; } = [];
    public string? Type { get; init; }
    public Address? ToAddress { get; init; }
    public Address? FromAddress { get; init; }
    /// <summary>The queue the conversation was routed to (docs/compatibility.md §Queues): on the platform's side of the conversation.</summary>
    public AddressableRef? Queue { get; init; }
}

public sealed record MessageDetails
{
    public required string MessageId { get; init; }
    public string? MessageURI { get; init; }
    public required string MessageStatus { get; init; }
    public int MessageSegmentCount { get; init; } = 1;
    public required string MessageTime { get; init; }
    /// <summary>Parley extension: the message's place in its conversation (1, 2, 3, …); the platform has no such field.</summary>
    public long? Sequence { get; init; }
}

/// <summary>Generic <c>Conversation</c>: <c>GET /api/v2/conversations/{id}</c> and the PATCH answer (docs/compatibility.md §Conversation endpoints).</summary>
public sealed record ConversationWire
{
    public required string Id { get; init; }
    public string? Name { get; init; }
    public required string StartTime { get; init; }
    public string? EndTime { get; init; }
    public required List<ParticipantWire> Participants { get; init; }
    public List<string> ConversationIds { get; init; } = [];
    public int MaxParticipants { get; init; } = 2;
    public string RecordingState { get; init; } = "NONE";
    public string? State { get; init; }
    public List<AddressableRef> Divisions { get; init; } = [];
    public string? SelfUri { get; init; }
}

public sealed record ParticipantWire
{
    public required string Id { get; init; }
    public string? StartTime { get; init; }
    public string? EndTime { get; init; }
    public string? ConnectedTime { get; init; }
    public string? Name { get; init; }
    public required string Purpose { get; init; }
    public string? State { get; init; }
    public string? Address { get; init; }
    /// <summary>The queue the conversation was routed to (docs/compatibility.md §Queues), as the platform's <c>Participant</c> names it.</summary>
    public string? QueueId { get; init; }
    public string? QueueName { get; init; }
    public bool WrapupRequired { get; init; }
    public Dictionary<string, string> Attributes { get; init; } = [];
    public List<CommunicationWire> Messages { get; init; } = [];
}

/// <summary>A participant's message communication; its <c>id</c> is the communicationId of …/communications/{id}/….</summary>
public sealed record CommunicationWire
{
    public required string Id { get; init; }
    public required string State { get; init; }
    public bool Held { get; init; }
    public string? Direction { get; init; }
    public string? DisconnectType { get; init; }
    public string? ConnectedTime { get; init; }
    public string? DisconnectedTime { get; init; }
    public Address? ToAddress { get; init; }
    public Address? FromAddress { get; init; }
    public List<MessageDetails> Messages { get; init; } = [];
    public string? Type { get; init; }
}

/// <summary>PATCH bodies: <c>MediaParticipantRequest</c> and <c>Conversation</c>; only <c>state</c> matters (docs/compatibility.md §Conversation models).</summary>
public sealed record StateChangeRequest
{
    public string? State { get; init; }
    public bool? WrapupSkipped { get; init; }
    /// <summary>Parley extension: why the conversation is being ended; recorded in the termination audit.</summary>
    public string? Reason { get; init; }
}

/// <summary><c>AdditionalMessage</c>: the send body (docs/compatibility.md §Conversation models).</summary>
public sealed record AdditionalMessage
{
    public string? TextBody { get; init; }
    public List<string>? MediaIds { get; init; }
    public JsonElement? MessagingTemplate { get; init; }
}

public sealed record MessageTypingEventRequest(TypingBody? Typing);

public sealed record NormalizedMessage
{
    public string? Id { get; init; }
    public string? Type { get; init; }
    public string? Text { get; init; }
    public List<WireEvent>? Events { get; init; }
    public string? Direction { get; init; }
    public string? OriginatingEntity { get; init; }
}

/// <summary><c>MessageData</c> (docs/compatibility.md §Conversation models).</summary>
public sealed record MessageData
{
    public required string Id { get; init; }
    public string? Name { get; init; }
    public required string Timestamp { get; init; }
    public string? FromAddress { get; init; }
    public string? ToAddress { get; init; }
    public required string Direction { get; init; }
    public string? MessengerType { get; init; }
    public string? TextBody { get; init; }
    public required string Status { get; init; }
    public NormalizedMessage? NormalizedMessage { get; init; }
    public string? ConversationId { get; init; }
    public string? SelfUri { get; init; }
    /// <summary>Parley extension: the message's place in its conversation (1, 2, 3, …); the platform has no such field.</summary>
    public long? Sequence { get; init; }
}

/// <summary><c>SendAgentlessOutboundMessageRequest</c>; Parley adds <c>webmessaging</c> as a messenger type.</summary>
public sealed record AgentlessRequest
{
    public string? FromAddress { get; init; }
    public string? ToAddress { get; init; }
    public string? ToAddressMessengerType { get; init; }
    public string? TextBody { get; init; }
    public bool? UseExistingActiveConversation { get; init; }
    public JsonElement? MessagingTemplate { get; init; }
    /// <summary>Parley extension: the campaign tag of the conversation this request starts, kept as the customer
    /// participant's <c>attributes.campaign</c> (docs/ending-sessions.md "Campaign tag").</summary>
    public string? Campaign { get; init; }
}

public sealed record AgentlessResponse
{
    public required string Id { get; init; }
    public required string ConversationId { get; init; }
    public string? FromAddress { get; init; }
    public string? ToAddress { get; init; }
    public string? MessengerType { get; init; }
    public bool UseExistingActiveConversation { get; init; }
    public string? TextBody { get; init; }
    public required MessageData Message { get; init; }
    public required string Timestamp { get; init; }
    public AddressableRef? User { get; init; }
    public string? SelfUri { get; init; }
}

// Analytics (docs/compatibility.md §Analytics details)

public sealed record AnalyticsConversation
{
    public required string ConversationId { get; init; }
    public required string ConversationStart { get; init; }
    public string? ConversationEnd { get; init; }
    public string? OriginatingDirection { get; init; }
    public string? ConversationInitiator { get; init; }
    public bool CustomerParticipation { get; init; }
    public List<string> DivisionIds { get; init; } = ["*"];
    public required List<AnalyticsParticipant> Participants { get; init; }
}

public sealed record AnalyticsParticipant(string ParticipantId, string? ParticipantName, string Purpose, List<AnalyticsSession> Sessions);

public sealed record AnalyticsSession
{
    public required string SessionId { get; init; }
    public required string MediaType { get; init; }
    public string? MessageType { get; init; }
    public string? Direction { get; init; }
    public string? AddressFrom { get; init; }
    public string? AddressTo { get; init; }
    public required List<AnalyticsSegment> Segments { get; init; }
}

public sealed record AnalyticsSegment
{
    public required string SegmentStart { get; init; }
    public string? SegmentEnd { get; init; }
    public required string SegmentType { get; init; }
    public string? DisconnectType { get; init; }
    /// <summary>The queue the conversation was routed to (docs/compatibility.md §Queues); also a segment filter dimension.</summary>
    public string? QueueId { get; init; }
}

public sealed record ConversationQuery
{
    public string? Interval { get; init; }
    public string? Order { get; init; }
    public string? OrderBy { get; init; }
    public PagingSpec? Paging { get; init; }
    public List<QueryFilter>? ConversationFilters { get; init; }
    public List<QueryFilter>? SegmentFilters { get; init; }
    public List<JsonElement>? EvaluationFilters { get; init; }
    public List<JsonElement>? SurveyFilters { get; init; }
    public List<JsonElement>? ResolutionFilters { get; init; }
    public List<JsonElement>? Aggregations { get; init; }
}

public sealed record PagingSpec(int? PageSize, int? PageNumber);

public sealed record QueryFilter
{
    public string? Type { get; init; }
    public List<QueryPredicate>? Predicates { get; init; }
    public List<QueryFilter>? Clauses { get; init; }
}

public sealed record QueryPredicate
{
    public string? Type { get; init; }
    public string? Dimension { get; init; }
    public string? Operator { get; init; }
    public string? Value { get; init; }
    public JsonElement? Range { get; init; }
}

public sealed record AnalyticsQueryResponse(List<AnalyticsConversation>? Conversations, long TotalHits);

public sealed record AnalyticsConversationList(List<AnalyticsConversation> Conversations);

// Parley extensions (documented in README): audit, deployments, guest sessions, OAuth clients.

/// <summary>A termination as audited; <c>user</c> names the person when a user's token ended it (docs/users.md).</summary>
public sealed record TerminationAuditWire(
    string Id, string ConversationId, string? ParticipantId, string Lever, AddressableRef Client, string? Reason,
    string Timestamp, int? SocketsNotified, string SelfUri, AddressableRef? User = null, string? ReceiptUri = null);

public sealed record DeploymentWire
{
    public string? Id { get; init; }
    public string? Name { get; init; }
    public List<string>? AllowedOrigins { get; init; }
    public ConversationDisconnectConfig? ConversationDisconnect { get; init; }
    public EnabledFlag? ConversationClear { get; init; }
    /// <summary>End a live conversation after this many seconds without a message (0 or absent: never).</summary>
    public int? InactivityTimeoutSeconds { get; init; }
    /// <summary>Guest onMessage requests allowed per session per second (0 or absent: no limit; the platform's is 2).</summary>
    public int? GuestMessagesPerSecond { get; init; }
    /// <summary>Parley extension: the queue its conversations are routed to (absent on create: the demo queue).</summary>
    public string? QueueId { get; init; }
    public string? DateCreated { get; init; }
    public string? SelfUri { get; init; }
}

public sealed record GuestSessionWire(string Id, string DeploymentId, string? ConversationId, bool Connected, int Sockets,
    bool ReadOnly, string DateCreated, string? CustomerId = null, string? CustomerIdType = null);

/// <summary>Create (POST) and update (PUT) body, the platform's OAuthClientRequest with Parley's permissions in place of roles.</summary>
public sealed record OAuthClientRequest
{
    public string? Name { get; init; }
    public string? Description { get; init; }
    public string? AuthorizedGrantType { get; init; }
    public List<string>? Permissions { get; init; }
    /// <summary>Where a CODE or TOKEN client's login may redirect (exact match); the platform's field.</summary>
    public List<string>? RegisteredRedirectUri { get; init; }
}

/// <summary>The platform's OAuthClient (JSDK <c>OAuthClient</c>): what GET, PUT and the create answer return.</summary>
public sealed record OAuthClientWire
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public string? Description { get; init; }
    public string AuthorizedGrantType { get; init; } = "CLIENT-CREDENTIALS";
    public required List<string> Permissions { get; init; }
    public List<string>? RegisteredRedirectUri { get; init; }
    /// <summary>Only in the answer that created the client or regenerated its secret; never readable again.</summary>
    public string? Secret { get; init; }
    public required string DateCreated { get; init; }
    public string? DateModified { get; init; }
    public AddressableRef? CreatedBy { get; init; }
    public AddressableRef? ModifiedBy { get; init; }
    public string State { get; init; } = "Active";
    public string? SelfUri { get; init; }
}

/// <summary>A credential change (Parley's <c>/api/v2/parley/audit/credentials</c>).</summary>
public sealed record CredentialAuditWire(
    string Id, string Action, string EntityType, string EntityId, AddressableRef Client, string Timestamp, string? Detail);

/// <summary>A token-signing key as Parley's key endpoints show it: never the key itself.</summary>
public sealed record SigningKeyWire(string Kid, string DateCreated, string SignsFrom, string? RetiresAt, bool Signing, bool Verifying);

/// <summary>Rotation body (all optional): how long older keys keep verifying, and when the new key starts signing.</summary>
public sealed record SigningKeyRotateRequest
{
    public int? OverlapSeconds { get; init; }
    public int? ActivateAfterSeconds { get; init; }
}

// Routing queues (docs/compatibility.md §Queues)

/// <summary>
/// The platform's <c>Queue</c> (JSDK <c>Queue</c>, listed in a <c>QueueEntityListing</c>), the fields Parley has; also the
/// create body (<c>CreateQueueRequest</c>: <c>name</c> required, <c>description</c>).
/// </summary>
public sealed record QueueWire
{
    public string? Id { get; init; }
    public string? Name { get; init; }
    public string? Description { get; init; }
    public string? DateCreated { get; init; }
    public string? DateModified { get; init; }
    public string? ModifiedBy { get; init; }
    public string? CreatedBy { get; init; }
    /// <summary>Parley routes to no agents: every count is 0.</summary>
    public int? MemberCount { get; init; }
    public int? UserMemberCount { get; init; }
    public int? JoinedMemberCount { get; init; }
    public string? SelfUri { get; init; }
}
