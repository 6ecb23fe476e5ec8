using System.Diagnostics;
using System.Diagnostics.Metrics;
using Parley.Core;

namespace Parley.Server;

/// <summary>
/// The server's instruments on the one <c>Parley</c> meter (<see cref="ParleyDiagnostics"/>, shared with the domain and
/// the adapters) and the span a termination is. Tags are few and bounded (levers, directions, error codes: never an id
/// a stranger chooses), and built on the stack: counting a message allocates nothing. docs/observability.md lists them.
/// </summary>
public static class ParleyTelemetry
{
    static readonly Meter Meter = ParleyDiagnostics.Meter;

    public static readonly UpDownCounter<long> GuestSessionsConnected = Meter.CreateUpDownCounter<long>("parley.guest.sessions.connected", "{connection}",
        "Guest sockets bound to a session on this node (a session open in two tabs counts twice)");
    static readonly Counter<long> Messages = Meter.CreateCounter<long>("parley.messages", "{message}",
        "Messages committed to conversations, by direction (inbound: from the customer) and channel");
    static readonly Counter<long> Terminations = Meter.CreateCounter<long>("parley.terminations", "{termination}",
        "Conversations ended, by the lever that ended them");
    static readonly Histogram<double> TerminationDuration = Meter.CreateHistogram("parley.termination.duration", "s",
        "From the termination's call to every guest socket told (or cut off at the notify timeout)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ParleyDiagnostics.SecondsBuckets });
    static readonly Counter<long> WebhookAttempts = Meter.CreateCounter<long>("parley.webhook.delivery.attempts", "{attempt}",
        "Webhook delivery attempts, by outcome: delivered, retry (will be sent again), dead (dead-lettered)");
    static readonly Counter<long> Refusals = Meter.CreateCounter<long>("parley.refusals", "{refusal}",
        "Requests refused (401, 403, 409, 413, 429, 503), by status and the error code answered");

    // The outbox as the relay last counted it (store-wide, so every node reports the same figure).
    static long _outboxPending = -1, _outboxDead;
    static readonly ObservableGauge<long> OutboxDepth = Meter.CreateObservableGauge("parley.outbox.depth", ObserveOutbox, "{delivery}",
        "Webhook deliveries in the outbox, by state (pending: waiting or retrying; dead: dead-lettered), as last counted by the relay");

    static IEnumerable<Measurement<long>> ObserveOutbox()
    {
        var pending = Interlocked.Read(ref _outboxPending);
        if (pending < 0) return [];   // not counted yet: say nothing rather than 0
        return [new(pending, new KeyValuePair<string, object?>("parley.outbox.state", "pending")),
            new(Interlocked.Read(ref _outboxDead), new KeyValuePair<string, object?>("parley.outbox.state", "dead"))];
    }

    public static void OutboxCounted(long pending, long dead)
    {
        Interlocked.Exchange(ref _outboxDead, dead);
        Interlocked.Exchange(ref _outboxPending, pending);
    }

    static readonly string[] DirectionNames = ["inbound", "outbound"];
    static readonly string[] ChannelNames = ["web_messaging", "open"];
    static readonly string[] LeverNames = ["participant_patch", "conversation_patch", "conversation_disconnect", "guest_clear", "inactivity", "policy", "bulk"];

    static string Name(string[] names, int value) => (uint)value < (uint)names.Length ? names[value] : "other";

    public static string LeverName(EndLever lever) => Name(LeverNames, (int)lever);

    /// <summary>A committed message (cheap: two tags on the stack, string values that are never boxed).</summary>
    public static void MessageCommitted(ConversationMessage m, ChannelKind channel)
    {
        if (!Messages.Enabled) return;
        Messages.Add(1, new KeyValuePair<string, object?>("parley.message.direction", Name(DirectionNames, (int)m.Direction)),
            new KeyValuePair<string, object?>("parley.channel", Name(ChannelNames, (int)channel)));
    }

    public static void WebhookAttempt(string outcome) => WebhookAttempts.Add(1, new KeyValuePair<string, object?>("parley.webhook.outcome", outcome));

    // Boxed once: a flood of refusals allocates nothing for its tags.
    static readonly object S401 = 401, S403 = 403, S409 = 409, S413 = 413, S429 = 429, S503 = 503;

    /// <summary>A refusal in any protocol's form; <paramref name="reason"/> is one of the server's own error codes.</summary>
    public static void Refused(int status, string reason)
    {
        var boxed = status switch { 401 => S401, 403 => S403, 409 => S409, 413 => S413, 429 => S429, 503 => S503, _ => null };
        if (boxed is null) return;
        Refusals.Add(1, new KeyValuePair<string, object?>("http.response.status_code", boxed),
            new KeyValuePair<string, object?>("parley.refusal.reason", reason));
    }

    /// <summary>
    /// One termination: the <c>parley.termination</c> span (parent of the commit and the fan-out) and, once the sockets
    /// were told (<see cref="TerminationTrace.Told"/>) and only if the conversation ended, the counter and the duration.
    /// Dispose it in every case.
    /// </summary>
    /// <param name="conversationId">Null when the caller learns it only from the outcome (a guest's Clear): Told tags it then.</param>
    public static TerminationTrace StartTermination(EndLever lever, string? conversationId)
    {
        var span = ParleyDiagnostics.Start("parley.termination");
        if (conversationId is not null) span?.SetTag("parley.conversation.id", conversationId);
        span?.SetTag("parley.termination.lever", LeverName(lever));
        return new TerminationTrace(span, Stopwatch.GetTimestamp(), lever);
    }

    public readonly struct TerminationTrace(Activity? span, long started, EndLever lever) : IDisposable
    {
        /// <summary>
        /// The command committed and <paramref name="sockets"/> guest sockets were told: counts the termination and records
        /// its duration only when <paramref name="outcome"/>'s events hold the conversation's end (a PATCH that disconnects
        /// one participant while the conversation goes on is not a termination). Returns the time from the call to now,
        /// for the log line.
        /// </summary>
        public TimeSpan Told(Outcome outcome, int sockets)
        {
            var elapsed = Stopwatch.GetElapsedTime(started);
            if (outcome.Conversation?.Id is { } conversationId) span?.SetTag("parley.conversation.id", conversationId);
            span?.SetTag("parley.sockets.told", sockets);
            if (Ended(outcome))
            {
                var tag = new KeyValuePair<string, object?>("parley.termination.lever", LeverName(lever));
                Terminations.Add(1, tag);
                TerminationDuration.Record(elapsed.TotalSeconds, tag);
            }
            return elapsed;
        }

        static bool Ended(Outcome outcome)
        {
            foreach (var e in outcome.Events)
                if (e is ConversationEnded) return true;
            return false;
        }

        public void Dispose() => span?.Dispose();
    }
}
