namespace Parley.Client;

/// <summary>What <see cref="ParleyClient.TerminateAsync"/> established.</summary>
public enum TerminationStatus
{
    /// <summary>This call ended it, and the conversation and the analytics both show the end.</summary>
    Ended,
    /// <summary>It had already ended (before the call, or by someone else meanwhile); nothing was changed.</summary>
    AlreadyEnded,
    /// <summary>No such conversation (or not visible to these credentials).</summary>
    NotFound,
    /// <summary>No lever produced a verified end; <see cref="TerminationResult.Evidence"/> says what was seen.</summary>
    Failed,
}

/// <summary>The call that ended the conversation.</summary>
public enum TerminationLever
{
    /// <summary><c>PATCH /api/v2/conversations/messages/{id}/participants/{customerId}</c> <c>{"state":"disconnected"}</c>.</summary>
    ParticipantDisconnect,
    /// <summary><c>POST /api/v2/conversations/{id}/disconnect</c>, the fallback.</summary>
    ConversationDisconnect,
}

/// <summary>
/// A verified termination outcome: never a bare status code. <see cref="Lever"/> is the call that worked (null when none
/// was needed or none worked); <see cref="Message"/> says in a sentence what happened.
/// </summary>
public sealed record TerminationResult(
    TerminationStatus Status, string ConversationId, TerminationLever? Lever, TerminationEvidence Evidence, string Message);

/// <summary>What the recipe saw, from its last reading.</summary>
public sealed record TerminationEvidence
{
    /// <summary><c>disconnected</c> when every participant is, else <c>connected</c> (null when the conversation could not be read).</summary>
    public string? ConversationState { get; init; }

    public string? CustomerParticipantId { get; init; }

    /// <summary>The customer participant's <c>state</c> (<c>disconnected</c> once it ended).</summary>
    public string? CustomerState { get; init; }

    /// <summary>The customer participant's <c>endTime</c>.</summary>
    public string? CustomerEndTime { get; init; }

    public string? CustomerDisconnectType { get; init; }

    /// <summary>The analytics details' <c>conversationEnd</c> (null while analytics shows it live, or has not indexed it).</summary>
    public string? AnalyticsConversationEnd { get; init; }

    /// <summary>Every call the recipe made, in order, with its answer's status.</summary>
    public IReadOnlyList<ObservedCall> Calls { get; init; } = [];

    /// <summary>Parley: how many guest sockets took the Disconnect frame before the lever answered (<c>Parley-Sockets-Notified</c>).</summary>
    public int? SocketsNotified { get; init; }

    /// <summary>Parley: the termination's id (<c>Parley-Termination-Id</c>: its audit row, also its receipt's id).</summary>
    public string? TerminationId { get; init; }

    /// <summary>Parley: where the termination's receipt is read (<c>/api/v2/parley/receipts/{terminationId}</c>).</summary>
    public string? ReceiptUri { get; init; }
}

/// <summary>One call of the recipe: <c>PATCH /api/v2/…</c> answered 202; <see cref="ErrorCode"/> from the error body when it failed.</summary>
public sealed record ObservedCall(string Method, string Path, int Status, string? ErrorCode = null)
{
    public override string ToString() => ErrorCode is null ? $"{Method} {Path} → {Status}" : $"{Method} {Path} → {Status} {ErrorCode}";
}
