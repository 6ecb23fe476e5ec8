using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Parley.Core;

namespace Parley.Server.OpenMessaging;

/// <summary>
/// Sends the outbox to the integrations' webhooks. Each body is POSTed as stored, signed with
/// <c>X-Hub-Signature-256: sha256=base64(HMAC-SHA256(secret, body))</c> (docs/compatibility.md §Open Messaging webhooks) and with the timestamped
/// <c>Parley-Webhook-Signature</c> (<see cref="WebhookSignature"/>). Only public addresses are connected to, unless
/// allowed (<see cref="WebhookNetworkGuard"/>); a refused target, or stored headers that may not be sent
/// (<see cref="WebhookHeaderRules"/>), dead-letter the delivery at once. 2xx: delivered. Network error,
/// timeout, 408, 429 or 5xx: retried with exponential backoff and jitter, up to <see cref="ParleyOptions.WebhookMaxAttempts"/>.
/// Any other status: not retried, the delivery is dead-lettered (readable and redeliverable through the API).
/// Each delivery runs on its own; an integration never has more than <see cref="PerDestination"/> in flight, counting what
/// other nodes hold leased, and the lease skips integrations at that cap, so a slow or dead receiver never takes the
/// others' turn. A conversation's deliveries go one at a time, oldest first, so its channel sees them in order.
/// </summary>
public sealed class WebhookRelay(IOutbox outbox, IDirectoryStore directory, ParleyOptions options, TimeProvider clock,
    ILoggerFactory loggers, StoreOutages outages, IReceiptStore receipts, IChangeBroadcast nodes) : BackgroundService
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Webhooks);
    /// <summary>Longest a leased delivery may take before another relay may take it over (above the send timeout; Parley:Webhooks:LeaseSeconds).</summary>
    TimeSpan Lease => options.WebhookLeaseOrDefault;
    const int MaxInFlight = 256;
    /// <summary>Deliveries in flight to one integration; a slow receiver holds at most these, never the others' share.</summary>
    const int PerDestination = 8;

    readonly SemaphoreSlim _wake = new(0, 1);
    readonly ConcurrentDictionary<string, int> _inFlightTo = new();
    int _inFlight;
    /// <summary>The attempts under way, which a stop lets finish; cancelled only when the host's shutdown timeout runs out.</summary>
    readonly List<Task> _attempts = [];
    readonly CancellationTokenSource _abandon = new();

    readonly HttpClient _http = new(WithinFileReserve(WebhookNetworkGuard.CreateHandler(options.WebhooksAllowPrivateNetworks)))
        { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Outbound connections draw on the open-file reserve (docs/connection-limits.md): bounded per receiver, idle ones let go.</summary>
    static SocketsHttpHandler WithinFileReserve(SocketsHttpHandler handler)
    {
        handler.MaxConnectionsPerServer = PerDestination;
        handler.PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30);
        return handler;
    }

    public override void Dispose()
    {
        base.Dispose();
        _http.Dispose();
        _abandon.Dispose();
    }

    /// <summary>
    /// Stops leasing, then lets the attempts under way finish and records their outcomes (each within its own send
    /// timeout, all within the host's shutdown timeout): a receiver that answered before or during a graceful stop is not
    /// sent the same delivery again after the restart. Only a crash, or a shutdown timeout that ran out, leaves a
    /// delivery to be resent (receivers de-duplicate by its id).
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        Task[] attempts;
        lock (_attempts) attempts = [.. _attempts];
        await using var abandon = cancellationToken.Register(_abandon.Cancel);
        await Task.WhenAll(attempts);   // an attempt never throws (DeliverAsync catches); abandoned ones end as cancelled sends
    }

    /// <summary>New deliveries were committed.</summary>
    public void Wake()
    {
        try { _wake.Release(); } catch (SemaphoreFullException) { /* already awake */ }
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        // What this node (Parley:Node:Id) still holds leased, it leased before it stopped or was killed mid-delivery: resend
        // it now rather than after its lease; the receiver may see it twice and de-duplicates by delivery id. Other nodes'
        // leases are theirs: a live node keeps its deliveries, a dead node's come back to every relay when their lease runs out.
        try
        {
            if (await outbox.ReleaseLeasesAsync(stop) is > 0 and var released)
                _log.WebhooksResumed(released);
        }
        catch (StoreUnavailableException e) { outages.Failed("releasing webhook leases at start", e); }   // they run out on their own
        // A store outage is waited out with a growing pause (a commit, which means the store is back, wakes the relay early).
        var outageBackoff = OutageBackoffStart;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var room = MaxInFlight - Volatile.Read(ref _inFlight);
                var inFlight = new Dictionary<string, int>(_inFlightTo.Where(d => d.Value > 0));
                var due = room > 0 ? await outbox.LeaseDueAsync(clock.GetUtcNow(), Lease, room, PerDestination, inFlight, stop) : [];
                foreach (var delivery in due)
                {
                    _inFlightTo.AddOrUpdate(delivery.Item.Destination, 1, (_, n) => n + 1);
                    Interlocked.Increment(ref _inFlight);
                    var attempt = Task.Run(() => DeliverAsync(delivery, _abandon.Token), CancellationToken.None);
                    lock (_attempts)
                    {
                        _attempts.RemoveAll(t => t.IsCompleted);
                        _attempts.Add(attempt);
                    }
                }
                if (outageBackoff != OutageBackoffStart) outages.Answered();
                outageBackoff = OutageBackoffStart;
                await CountOutboxAsync(stop);
                if (due.Count > 0 && due.Count == room) continue;
                await SleepAsync(stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
            catch (StoreUnavailableException e)
            {
                outages.Failed("the webhook relay", e);
                try { await _wake.WaitAsync(outageBackoff, stop); }
                catch (OperationCanceledException) { return; }
                outageBackoff = TimeSpan.FromTicks(Math.Min(outageBackoff.Ticks * 2, OutageBackoffMax.Ticks));
            }
            catch (Exception e)
            {
                _log.WebhookRelayFailed(e);
                try { await Task.Delay(TimeSpan.FromSeconds(1), stop); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    /// <summary>Until woken by a commit, or the next retry is due, or a second passes (deliveries leased elsewhere may expire).</summary>
    async Task SleepAsync(CancellationToken stop)
    {
        var wait = TimeSpan.FromSeconds(1);
        if (await outbox.NextDueAsync(stop) is { } next)
        {
            var until = next - clock.GetUtcNow();
            if (until < wait) wait = until;
        }
        // Due but not leasable (its integration is at capacity): the finishing delivery wakes us; never spin.
        if (wait < MinSleep) wait = MinSleep;
        await _wake.WaitAsync(wait, stop);
    }

    static readonly TimeSpan MinSleep = TimeSpan.FromMilliseconds(20);
    static readonly TimeSpan OutageBackoffStart = TimeSpan.FromMilliseconds(250), OutageBackoffMax = TimeSpan.FromSeconds(5);

    /// <summary>Every few seconds, the outbox's pending and dead counts for parley.outbox.depth (two indexed counts).</summary>
    async Task CountOutboxAsync(CancellationToken stop)
    {
        if (Stopwatch.GetElapsedTime(_countedAt) < OutboxCountPeriod) return;
        _countedAt = Stopwatch.GetTimestamp();
        var pending = await outbox.ListDeliveriesAsync(DeliveryState.Pending, null, 0, 1, stop);
        var dead = await outbox.ListDeliveriesAsync(DeliveryState.Dead, null, 0, 1, stop);
        ParleyTelemetry.OutboxCounted(pending.Total, dead.Total);
    }

    long _countedAt;
    static readonly TimeSpan OutboxCountPeriod = TimeSpan.FromSeconds(5);

    async Task DeliverAsync(OutboxDelivery delivery, CancellationToken abandon)
    {
        // One span per attempt; the HttpClient instrumentation's client span is its child.
        using var span = ParleyDiagnostics.Start("parley.webhook.delivery", ActivityKind.Producer);
        span?.SetTag("parley.delivery.id", delivery.Item.Id);
        span?.SetTag("parley.delivery.attempt", delivery.Attempts + 1);
        try
        {
            if (await SendAsync(delivery, abandon)) await SettledAsync(delivery.Item.Id);
        }
        catch (OperationCanceledException) when (abandon.IsCancellationRequested) { /* the lease runs out; a restart resends */ }
        // Its outcome could not be recorded: the lease runs out and the delivery is sent again (receivers de-duplicate by id).
        catch (StoreUnavailableException e) { outages.Failed($"recording webhook delivery {delivery.Item.Id}", e); }
        catch (Exception e) { _log.WebhookDeliveryCrashed(e, delivery.Item.Id); }
        finally
        {
            _inFlightTo.AddOrUpdate(delivery.Item.Destination, 0, (_, n) => n - 1);
            Interlocked.Decrement(ref _inFlight);
            Wake();
        }
    }

    /// <summary>
    /// A delivery reached its outcome (delivered or dead): when it is a termination's end notice, that termination's
    /// receipt changed, and every node is told.
    /// </summary>
    async Task SettledAsync(string deliveryId)
    {
        try
        {
            if (await receipts.TerminationOfDeliveryAsync(deliveryId, CancellationToken.None) is { } terminationId) nodes.ReceiptChanged(terminationId);
        }
        catch (StoreUnavailableException) { /* the receipt reads the outcome anyway; only this push is missed */ }
    }

    /// <summary>Sends one delivery and records the attempt; true when the delivery settled (delivered or dead), false for a retry.</summary>
    async Task<bool> SendAsync(OutboxDelivery delivery, CancellationToken abandon)
    {
        var item = delivery.Item;
        var attempt = delivery.Attempts + 1;
        var integration = await directory.GetIntegrationAsync(item.Destination, abandon);
        if (integration is null)
        {
            _log.WebhookDeadLettered(item.Id, item.Destination, attempt, "-", "the integration no longer exists");
            ParleyTelemetry.WebhookAttempt("dead");
            await outbox.MarkDeadAsync(item.Id, attempt, null, "the integration no longer exists", abandon);
            return true;
        }

        // Rows saved before header validation existed may hold what must never reach the wire (a CR/LF would smuggle a
        // second request): such a delivery is not sent at all.
        if (WebhookHeaderRules.Problem(integration.WebhookHeaders) is { } badHeader)
        {
            _log.WebhookDeadLettered(item.Id, integration.Id, attempt, "-", "not sent: its webhookHeaders are refused");
            ParleyTelemetry.WebhookAttempt("dead");
            await outbox.MarkDeadAsync(item.Id, attempt, null,
                $"not sent: the integration's webhookHeaders are refused ({badHeader}) Fix them with PATCH, then redeliver.", abandon);
            return true;
        }

        int? status = null;
        string error;
        try
        {
            using var request = Sign(new HttpRequestMessage(HttpMethod.Post, integration.WebhookUrl), item, integration, attempt, clock.GetUtcNow());
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(abandon);
            deadline.CancelAfter(options.WebhookTimeout);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                ParleyTelemetry.WebhookAttempt("delivered");
                // The receiver has it: recorded whatever happens next, so nothing delivered is sent again.
                await outbox.MarkDeliveredAsync(item.Id, status.Value, clock.GetUtcNow(), CancellationToken.None);
                return true;
            }
            // The reason phrase is the receiver's text: kept short, it is stored and shown by the deliveries API.
            var reason = response.ReasonPhrase is { Length: > 64 } phrase ? phrase[..64] + "…" : response.ReasonPhrase;
            error = $"the receiver answered {status} {reason}";
            if (!IsRetryable(response.StatusCode))
            {
                _log.WebhookDeadLettered(item.Id, integration.Id, attempt, Status(status), "the receiver refused it (not retried)");
                ParleyTelemetry.WebhookAttempt("dead");
                await outbox.MarkDeadAsync(item.Id, attempt, status, error + " (not retried)", CancellationToken.None);
                return true;
            }
        }
        catch (OperationCanceledException) when (!abandon.IsCancellationRequested)
        {
            error = $"no answer within {options.WebhookTimeout.TotalSeconds:0.#} s";
        }
        catch (HttpRequestException e) when (RefusedTarget(e) is { } refused)
        {
            // Not retried: the address will not become public by waiting, and nothing was sent to it.
            _log.WebhookDeadLettered(item.Id, integration.Id, attempt, "-", "not sent: refused by the network guard (Parley:Webhooks:AllowPrivateNetworks)");
            ParleyTelemetry.WebhookAttempt("dead");
            await outbox.MarkDeadAsync(item.Id, attempt, null, $"not sent: {refused.Message}. Set Parley:Webhooks:AllowPrivateNetworks=true " +
                "only for local development.", abandon);
            return true;
        }
        catch (HttpRequestException e)
        {
            error = $"network error: {e.Message}";
        }

        if (attempt >= options.WebhookMaxAttempts)
        {
            _log.WebhookDeadLettered(item.Id, integration.Id, attempt, Status(status), $"gave up: {error}");
            ParleyTelemetry.WebhookAttempt("dead");
            await outbox.MarkDeadAsync(item.Id, attempt, status, $"{error} (gave up after {attempt} attempts)", CancellationToken.None);
            return true;
        }
        _log.WebhookAttemptFailed(item.Id, integration.Id, attempt, Status(status), error);
        ParleyTelemetry.WebhookAttempt("retry");
        await outbox.MarkRetryAsync(item.Id, attempt, clock.GetUtcNow() + Backoff(attempt), status, error, CancellationToken.None);
        return false;
    }

    static string Status(int? status) => status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no status";

    static WebhookTargetRefusedException? RefusedTarget(Exception e)
    {
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
            if (inner is WebhookTargetRefusedException refused) return refused;
        return null;
    }

    static bool IsRetryable(HttpStatusCode status) =>
        (int)status >= 500 || status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;

    /// <summary>Exponential, capped, with "equal jitter": half fixed, half random, so many retries do not arrive together.</summary>
    TimeSpan Backoff(int attempt)
    {
        var exponential = options.WebhookRetryBase.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 20));
        var capped = Math.Min(exponential, options.WebhookRetryCap.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped / 2 + Random.Shared.NextDouble() * capped / 2);
    }

    /// <summary>
    /// The integration's own headers first (validated again by <see cref="HttpHeaders.Add(string, string)"/>), then
    /// Parley's, which no integration header can replace. Signed afresh on every attempt: a retry has a new timestamp.
    /// </summary>
    static HttpRequestMessage Sign(HttpRequestMessage request, OutboxItem item, OpenIntegration integration, int attempt, DateTimeOffset now)
    {
        foreach (var (name, value) in integration.WebhookHeaders) request.Headers.Add(name, value);
        request.Content = new ByteArrayContent(item.Body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var timestamp = now.ToUnixTimeSeconds();
        request.Headers.Add(WebhookSignature.HubHeader, WebhookSignature.Hub(integration.SecretToken, item.Body));
        request.Headers.Add(WebhookSignature.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(WebhookSignature.SignatureHeader, WebhookSignature.Header(timestamp, integration.SecretsInForce(now), item.Body));
        request.Headers.Add("X-Parley-Delivery-Id", item.Id);
        request.Headers.Add("X-Parley-Delivery-Attempt", attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.UserAgent.ParseAdd("Parley-Webhook/1.0");
        return request;
    }
}
