using Parley.Core;

namespace Parley.Server;

/// <summary>
/// Every line Parley logs, source-generated (no formatting, no boxing when the level is off) with a stable event id an
/// operator can filter and alert on. Ids are grouped by area, and each area logs under its own category, so one
/// <c>Logging:LogLevel:Parley.&lt;Area&gt;</c> key turns it up or down. docs/logging.md lists them all: keep it in step.
/// Never log a guest token, a bearer token, a client secret, an Authorization header or message text.
/// </summary>
public static partial class ParleyLog
{
    // ---- categories: one per area (Logging:LogLevel:<category>) ----
    public const string GuestApi = "Parley.GuestApi";           // 1xxx
    public const string Conversations = "Parley.Conversations"; // 2xxx
    public const string Termination = "Parley.Termination";     // 3xxx
    public const string Refusals = "Parley.Refusals";           // 4xxx
    public const string Webhooks = "Parley.Webhooks";           // 5xxx
    public const string Store = "Parley.Store";                 // 6xxx (the Redis backplane's 62xx: Parley.Backplane, BackplaneLog)
    public const string Hosting = "Parley.Hosting";             // 7xxx
    public const string OAuth = "Parley.OAuth";                 // 8xxx
    public const string Access = "Parley.Access";               // 9xxx

    /// <summary>Operator-given text (a termination reason) is kept short in a log line.</summary>
    public const int MaxReasonLength = 200;

    /// <summary>Text from a client, cut to <paramref name="max"/> characters and kept on one line.</summary>
    public static string Clip(string? value, int max = MaxReasonLength)
    {
        if (string.IsNullOrEmpty(value)) return "";
        var text = value.Length <= max ? value : value[..max] + "…";
        return text.AsSpan().IndexOfAny('\r', '\n') < 0 ? text : text.Replace('\r', ' ').Replace('\n', ' ');
    }

    // ---- 1xxx guest sockets (Parley.GuestApi) ----

    [LoggerMessage(1001, LogLevel.Information, "Guest session {SessionId} started on deployment {DeploymentId}")]
    public static partial void GuestSessionStarted(this ILogger log, string sessionId, string deploymentId);

    [LoggerMessage(1002, LogLevel.Information, "Guest session {SessionId} resumed on deployment {DeploymentId}")]
    public static partial void GuestSessionResumed(this ILogger log, string sessionId, string deploymentId);

    [LoggerMessage(1003, LogLevel.Information, "Guest socket closed: session {SessionId}, deployment {DeploymentId}, {CloseReason}, open {DurationMs} ms")]
    public static partial void GuestSocketClosed(this ILogger log, string sessionId, string deploymentId, string closeReason, long durationMs);

    [LoggerMessage(1004, LogLevel.Information, "Guest session {SessionId} cleared by the guest; {Sockets} sockets told")]
    public static partial void GuestSessionCleared(this ILogger log, string sessionId, int sockets);

    [LoggerMessage(1005, LogLevel.Error, "Guest request {Action} failed")]
    public static partial void GuestRequestFailed(this ILogger log, Exception error, string action);

    [LoggerMessage(1006, LogLevel.Warning, "A message push to a guest session failed; the guest catches up from history")]
    public static partial void GuestPushFailed(this ILogger log, Exception? error);

    // ---- 2xxx conversations (Parley.Conversations) ----

    [LoggerMessage(2001, LogLevel.Information, "Conversation {ConversationId} started ({Direction}) for guest session {SessionId} on deployment {DeploymentId}")]
    public static partial void ConversationStarted(this ILogger log, string conversationId, MessageDirection direction, string sessionId, string deploymentId);

    [LoggerMessage(2002, LogLevel.Error, "Inactivity sweep failed; retrying")]
    public static partial void InactivitySweepFailed(this ILogger log, Exception error);

    // ---- 3xxx terminations (Parley.Termination) ----

    [LoggerMessage(3001, LogLevel.Information,
        "Conversation {ConversationId} terminated by {ClientId}{ByUser} via {Lever} (reason: {Reason}); {Sockets} sockets told in {LatencyMs} ms")]
    public static partial void ConversationTerminated(this ILogger log, string conversationId, string clientId, string byUser, EndLever lever, string reason,
        int sockets, double latencyMs);

    [LoggerMessage(3003, LogLevel.Information,
        "Bulk termination by {ClientId}{ByUser} via {Lever} (reason: {Reason}): {Matched} matched, {Ended} ended, {AlreadyEnded} already ended, " +
        "{Failed} failed; {Sockets} sockets told and {Channels} channel end notices stored for delivery, in {LatencyMs} ms")]
    public static partial void BulkTerminated(this ILogger log, string clientId, string byUser, EndLever lever, string reason, int matched, int ended,
        int alreadyEnded, int failed, int sockets, int channels, double latencyMs);

    [LoggerMessage(3004, LogLevel.Warning, "Bulk termination could not end conversation {ConversationId}; the others go on")]
    public static partial void BulkEndFailed(this ILogger log, string conversationId, Exception error);

    [LoggerMessage(3005, LogLevel.Warning, "{Count} bulk termination jobs of node {NodeId} were left PENDING by its last stop; marked FAILED")]
    public static partial void BulkJobsLeftByStop(this ILogger log, int count, string nodeId);

    [LoggerMessage(3006, LogLevel.Warning, "Could not check this node's unfinished bulk termination jobs at start: {Reason}")]
    public static partial void BulkJobsNotChecked(this ILogger log, string reason);

    [LoggerMessage(3007, LogLevel.Error, "Bulk termination job {JobId} failed")]
    public static partial void BulkJobFailed(this ILogger log, string jobId, Exception error);

    [LoggerMessage(3002, LogLevel.Information,
        "Participant {ParticipantId} of conversation {ConversationId} disconnected by {ClientId} via {Lever} (reason: {Reason}); {LatencyMs} ms")]
    public static partial void ParticipantDisconnected(this ILogger log, string participantId, string conversationId, string clientId, EndLever lever,
        string reason, double latencyMs);

    /// <summary>
    /// The one termination line, for every lever: who, how, why (clipped), how many sockets took the Disconnect frame, and
    /// the milliseconds from the call to them (<paramref name="elapsed"/>, taken when the sockets were told: not the
    /// audit row's count write after).
    /// </summary>
    public static void Terminated(this ILogger log, Outcome outcome, int sockets, TimeSpan elapsed, Command? command = null)
    {
        if (!log.IsEnabled(LogLevel.Information) || outcome.Conversation is not { } c) return;
        var ms = Math.Round(elapsed.TotalMilliseconds, 2);
        foreach (var e in outcome.Events)
        {
            if (e is ConversationEnded end)
            {
                log.ConversationTerminated(c.Id, end.By.ClientId, ByUser(end.By), end.Lever, Clip(end.Reason), sockets, ms);
                return;
            }
        }
        // A participant ended without ending the conversation (a PATCH on an agent or bot participant).
        if (command is DisconnectParticipant p)
            log.ParticipantDisconnected(p.ParticipantId, c.Id, p.By.ClientId, p.Lever, Clip(p.Reason), ms);
    }

    /// <summary>" for user {id} ({name})" when a user's token acted (the name clipped and printable), else empty.</summary>
    public static string ByUser(Actor by) => by.UserId is { } id ? $" for user {id} ({Clip(by.UserName)})" : "";

    // ---- 4xxx refusals (Parley.Refusals) ----

    [LoggerMessage(4001, LogLevel.Information, "Refused {Method} {Path}: {Status} {Code}: {Reason}")]
    public static partial void PlatformRefused(this ILogger log, string method, string path, int status, string code, string reason);

    [LoggerMessage(4002, LogLevel.Warning, "Token request refused ({Reason}): client {ClientId} from {Address}")]
    public static partial void TokenRefused(this ILogger log, string reason, string clientId, System.Net.IPAddress? address);

    [LoggerMessage(4003, LogLevel.Warning,
        "Token requests throttled: client {ClientId} from {Address}, retry after {Seconds} s (further refusals for this pair are not logged for 10 s)")]
    public static partial void TokenThrottled(this ILogger log, string clientId, System.Net.IPAddress? address, int seconds);

    [LoggerMessage(4004, LogLevel.Information, "Guest request {Action} refused: {Status}: {Reason} (session {SessionId}, deployment {DeploymentId})")]
    public static partial void GuestRefused(this ILogger log, string action, int status, string reason, string sessionId, string deploymentId);

    /// <summary>At Debug: a guest over its rate is refused per frame, and a flood must not become a flood of lines.</summary>
    [LoggerMessage(4005, LogLevel.Debug, "Guest message refused: 429: {Reason}, retry after {RetryAfter} s (session {SessionId})")]
    public static partial void GuestRateLimited(this ILogger log, string reason, int retryAfter, string sessionId);

    [LoggerMessage(4006, LogLevel.Warning,
        "Connection limit: {Reason}. So far {Total} refused at the process limit, {PerAddress} at the per-address limit, {Evicted} silent ones closed")]
    public static partial void ConnectionsRefused(this ILogger log, string reason, long total, long perAddress, long evicted);

    // ---- 5xxx webhooks (Parley.Webhooks) ----

    [LoggerMessage(5001, LogLevel.Warning, "Webhook delivery {DeliveryId} to integration {IntegrationId}: attempt {Attempt} failed ({Status}: {Error}); retrying")]
    public static partial void WebhookAttemptFailed(this ILogger log, string deliveryId, string integrationId, int attempt, string status, string error);

    [LoggerMessage(5002, LogLevel.Warning, "Webhook delivery {DeliveryId} to integration {IntegrationId} dead-lettered after attempt {Attempt} ({Status}): {Reason}")]
    public static partial void WebhookDeadLettered(this ILogger log, string deliveryId, string integrationId, int attempt, string status, string reason);

    [LoggerMessage(5003, LogLevel.Information, "Resuming {Count} webhook deliveries that were in flight when Parley last stopped")]
    public static partial void WebhooksResumed(this ILogger log, int count);

    [LoggerMessage(5004, LogLevel.Error, "Webhook relay loop failed; retrying")]
    public static partial void WebhookRelayFailed(this ILogger log, Exception error);

    [LoggerMessage(5005, LogLevel.Error, "Webhook delivery {DeliveryId} failed unexpectedly")]
    public static partial void WebhookDeliveryCrashed(this ILogger log, Exception error, string deliveryId);

    // ---- 6xxx store (Parley.Store) ----

    [LoggerMessage(6001, LogLevel.Warning, "The store is unavailable: {What} failed ({Error}). {Unlogged} further failures since the last report")]
    public static partial void StoreUnavailable(this ILogger log, string what, string error, int unlogged);

    [LoggerMessage(6002, LogLevel.Information, "The store answers again, after {Failures} failed operations")]
    public static partial void StoreAnswersAgain(this ILogger log, int failures);

    [LoggerMessage(6003, LogLevel.Critical, "The store's writer stopped: this node takes no writes until it is restarted (/healthz and /readyz answer 503)")]
    public static partial void StoreWriterStopped(this ILogger log, Exception cause);

    // ---- 7xxx hosting (Parley.Hosting) ----

    [LoggerMessage(7001, LogLevel.Information, "Parley started on {Urls}")]
    public static partial void Started(this ILogger log, string urls);

    [LoggerMessage(7002, LogLevel.Information, "Draining: /readyz answers 503; guest sockets are told to go in {Seconds} s")]
    public static partial void Draining(this ILogger log, double seconds);

    [LoggerMessage(7003, LogLevel.Warning,
        "Parley:Limits:MaxConnections {Configured} exceeds the open-file limit {Limit} less a reserve of {Reserve}; using {Used}. Raise the limit (ulimit -n) to hold more")]
    public static partial void ConnectionsCapped(this ILogger log, int configured, int limit, int reserve, int used);

    [LoggerMessage(7004, LogLevel.Error, "Request {Method} {Path} failed")]
    public static partial void RequestFailed(this ILogger log, Exception error, string method, string path);

    [LoggerMessage(7005, LogLevel.Warning, "Cannot accept connections: {Error} (the open-file limit is reached); retrying with back-off")]
    public static partial void AcceptFailing(this ILogger log, System.Net.Sockets.SocketError error);

    [LoggerMessage(7006, LogLevel.Warning, "Accepting connections again after {Failures} failed accepts for lack of descriptors")]
    public static partial void AcceptRecovered(this ILogger log, int failures);

    [LoggerMessage(7007, LogLevel.Information, "Access log on: one {Category} line per request (Parley:AccessLog:Enabled={Enabled}, environment {Environment})")]
    public static partial void AccessLogOn(this ILogger log, string category, string enabled, string environment);

    [LoggerMessage(7008, LogLevel.Error, "Health check {Check} failed unexpectedly ({Unlogged} further failures of it since the last report)")]
    public static partial void HealthCheckFailed(this ILogger log, Exception exception, string check, int unlogged);

    // ---- 8xxx OAuth clients and signing keys (Parley.OAuth) ----

    [LoggerMessage(8001, LogLevel.Information, "OAuth client {ClientId} created by {Caller} with permissions {Permissions}")]
    public static partial void ClientCreated(this ILogger log, string clientId, string caller, string permissions);

    [LoggerMessage(8002, LogLevel.Information, "OAuth client {ClientId} updated by {Caller}")]
    public static partial void ClientUpdated(this ILogger log, string clientId, string caller);

    [LoggerMessage(8003, LogLevel.Information, "OAuth client {ClientId} deleted by {Caller}; its tokens no longer work")]
    public static partial void ClientDeleted(this ILogger log, string clientId, string caller);

    [LoggerMessage(8004, LogLevel.Information, "OAuth client {ClientId}: secret regenerated by {Caller}; earlier tokens no longer work")]
    public static partial void ClientSecretRegenerated(this ILogger log, string clientId, string caller);

    [LoggerMessage(8005, LogLevel.Warning, "Token-signing key rotated by client {ClientId}: new key {Kid} signs from {From}; previous keys retire at {RetireAt}")]
    public static partial void SigningKeyRotated(this ILogger log, string clientId, string kid, DateTimeOffset from, DateTimeOffset retireAt);

    [LoggerMessage(8006, LogLevel.Error, "Reloading the token-signing keys failed")]
    public static partial void SigningKeysReloadFailed(this ILogger log, Exception error);

    // ---- 9xxx access log (Parley.Access) ----

    [LoggerMessage(9001, LogLevel.Information, "{Method} {Path} {Status} {DurationMs} ms {Bytes} B from {Client}")]
    public static partial void Request(this ILogger log, string method, string path, int status, double durationMs, string bytes, string client);

    [LoggerMessage(9002, LogLevel.Information, "{Method} {Path} {Status} WebSocket closed after {DurationMs} ms from {Client}")]
    public static partial void WebSocketClosed(this ILogger log, string method, string path, int status, double durationMs, string client);
}
