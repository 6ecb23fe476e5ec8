using System.Text.Json.Serialization;

namespace Parley.Protocol;

// Parley's termination extensions (docs/ending-sessions.md): bulk terminations and their jobs, termination policies and
// their dry-run previews, termination receipts. These are not Genesys Cloud endpoints; their shapes follow the platform's
// conventions (camelCase, ISO-8601 UTC times with milliseconds, entity listings, selfUri) so one client reads both.

/// <summary>
/// Which live conversations a bulk termination ends. Every field set must match; at least one must be set (an empty
/// filter is refused, never "end everything"). Unknown fields are refused too: a misspelt field must not widen the set.
/// Times are ISO-8601; both bounds are exclusive.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record TerminationFilter
{
    public string? DeploymentId { get; init; }
    public string? IntegrationId { get; init; }
    public string? QueueId { get; init; }
    public string? StartedBefore { get; init; }
    public string? StartedAfter { get; init; }
    public string? Campaign { get; init; }
    public string? CustomerId { get; init; }
}

/// <summary>The body of <c>POST /api/v2/parley/terminations</c>.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record BulkTerminationRequest
{
    public TerminationFilter? Filter { get; init; }
    public string? Reason { get; init; }
}

/// <summary>Job states, the platform's analytics-job spelling.</summary>
public static class TerminationJobStates
{
    public const string Pending = "PENDING";
    public const string Fulfilled = "FULFILLED";
    public const string Failed = "FAILED";
}

/// <summary>
/// A bulk termination: answered at once (<c>200</c>, <see cref="State"/> FULFILLED) for a small set, or as a job
/// (<c>202</c>, PENDING) read back with <c>GET /api/v2/parley/terminations/{id}</c>. Counts grow while it runs.
/// <see cref="ChannelsNotified"/> counts open messaging end notices stored for delivery in the end's own transaction
/// (each receipt says which webhook acknowledged).
/// </summary>
public sealed record BulkTerminationWire
{
    public required string Id { get; init; }
    public required string State { get; init; }
    public TerminationFilter? Filter { get; init; }
    public string? Reason { get; init; }
    public int Matched { get; init; }
    public int Ended { get; init; }
    public int AlreadyEnded { get; init; }
    public int Failed { get; init; }
    public int SocketsNotified { get; init; }
    public int ChannelsNotified { get; init; }
    public string? ErrorMessage { get; init; }
    public AddressableRef? CreatedBy { get; init; }
    public string? DateCreated { get; init; }
    public string? DateCompleted { get; init; }
    public string? SelfUri { get; init; }
}

/// <summary>Policy types.</summary>
public static class TerminationPolicyTypes
{
    public const string MaxDuration = "maxDuration";
    public const string Campaign = "campaign";
    public const string BusinessHours = "businessHours";
}

/// <summary>
/// A termination policy of one deployment (<see cref="DeploymentId"/>) or one open messaging integration
/// (<see cref="IntegrationId"/>). <see cref="Type"/> decides which fields apply:
/// maxDuration — <see cref="MaxDurationSeconds"/>; campaign — <see cref="Campaign"/> and/or <see cref="StartedBy"/> (an
/// OAuth client id), with <see cref="EndAt"/> (conversations they started before it end at it; default: when created);
/// businessHours — <see cref="CloseAt"/> ("HH:mm" local), <see cref="TimeZone"/> (IANA), optional <see cref="Days"/>.
/// </summary>
public sealed record TerminationPolicyWire
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Type { get; init; }
    public bool Enabled { get; init; }
    public string? DeploymentId { get; init; }
    public string? IntegrationId { get; init; }
    public int? MaxDurationSeconds { get; init; }
    public string? Campaign { get; init; }
    public string? StartedBy { get; init; }
    public string? EndAt { get; init; }
    public string? CloseAt { get; init; }
    public string? TimeZone { get; init; }
    public List<string>? Days { get; init; }
    public string? Reason { get; init; }
    public string? DateCreated { get; init; }
    public string? DateModified { get; init; }
    public AddressableRef? CreatedBy { get; init; }
    public string? SelfUri { get; init; }
}

/// <summary>The writable fields of a policy (POST, PUT, and the dry run of an unsaved policy). Unknown fields are refused.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record TerminationPolicyRequest
{
    public string? Name { get; init; }
    public string? Type { get; init; }
    public bool? Enabled { get; init; }
    public string? DeploymentId { get; init; }
    public string? IntegrationId { get; init; }
    public int? MaxDurationSeconds { get; init; }
    public string? Campaign { get; init; }
    public string? StartedBy { get; init; }
    public string? EndAt { get; init; }
    public string? CloseAt { get; init; }
    public string? TimeZone { get; init; }
    public List<string>? Days { get; init; }
    public string? Reason { get; init; }
}

/// <summary>A dry run: which live conversations the policy would end, and when (<see cref="PolicyPreviewEntry.EndsAt"/>).</summary>
public sealed record PolicyPreviewWire
{
    public string? PolicyId { get; init; }
    public required string EvaluatedAt { get; init; }
    public required List<PolicyPreviewEntry> Entities { get; init; }
    public long Total { get; init; }
}

public sealed record PolicyPreviewEntry
{
    public required string ConversationId { get; init; }
    public required string StartTime { get; init; }
    public required string EndsAt { get; init; }
    public string? QueueId { get; init; }
    public string? Campaign { get; init; }
}

/// <summary>
/// Receipt states: pending until every socket and channel is accounted for; failed if any delivery failed; none when the
/// end had nothing to deliver (no socket was written, no channel notice was stored): not a delivery claim.
/// </summary>
public static class ReceiptStates
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string Failed = "failed";
    /// <summary>The end was recorded but had nothing to deliver to anyone: zero sockets written, none failed, no channel notices.</summary>
    public const string NothingToDeliver = "none";
}

/// <summary>
/// Proof of who was told of one termination (<see cref="Id"/> is the termination's audit id): each guest socket whose
/// Disconnect frame write completed (per node), each open messaging channel whose webhook acknowledged the end notice,
/// and what is still pending or failed. It never claims a delivery that did not happen.
/// </summary>
public sealed record TerminationReceiptWire
{
    public required string Id { get; init; }
    public required string ConversationId { get; init; }
    public required string State { get; init; }
    public string? Lever { get; init; }
    public string? At { get; init; }
    /// <summary>Sockets the fan-out handed the Disconnect to (null while the fan-out has not answered).</summary>
    public int? SocketsTargeted { get; init; }
    public List<SocketReceiptWire> Sockets { get; init; } = [];
    public List<ChannelReceiptWire> Channels { get; init; } = [];
    public string? SelfUri { get; init; }
}

public sealed record SocketReceiptWire
{
    public required string Node { get; init; }
    public required string SocketId { get; init; }
    public required string State { get; init; }
    public string? At { get; init; }
    public string? Error { get; init; }
}

public sealed record ChannelReceiptWire
{
    public required string DeliveryId { get; init; }
    public string? IntegrationId { get; init; }
    public required string State { get; init; }
    public int Attempts { get; init; }
    public int? LastStatus { get; init; }
    public string? LastError { get; init; }
    public string? DeliveredAt { get; init; }
}
