using System.Text.Json;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// The termination recipe that works on Genesys Cloud and on Parley (docs/compatibility.md §Termination levers;
/// docs/ending-sessions.md, "The C# client"). One instance per call: it keeps the calls it made as evidence.
/// </summary>
sealed class TerminationRecipe(Http api, ConversationsClient conversations)
{
    static readonly string[] EndedStates = ["disconnected", "terminated"];
    readonly List<ObservedCall> _calls = [];
    readonly TerminationVerification _verify = api.Options.Verification;
    int? _sockets;
    string? _terminationId;

    public async Task<TerminationResult> RunAsync(string conversationId, string? reason, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(conversationId);
        var seen = await ReadAsync(conversationId, ct);
        if (seen.NotFound) return Result(TerminationStatus.NotFound, conversationId, null, seen, $"Conversation {conversationId} was not found.");
        if (seen.Conversation is null) return Result(TerminationStatus.Failed, conversationId, null, seen, $"Conversation {conversationId} could not be read.");
        // Already ended only when the conversation is, verifiably: every participant left (with an end time) and analytics
        // shows conversationEnd. A customer who left alone proves nothing on Genesys Cloud, where the rest of the
        // conversation can run on: that is the case the teardown below is for.
        if (seen.AllEnded)
        {
            seen = await WithAnalyticsAsync(conversationId, seen, ct);
            if (seen.Verified)
                return Result(TerminationStatus.AlreadyEnded, conversationId, null, seen, $"Conversation {conversationId} had already ended; nothing was changed.");
        }

        // Lever 1: the customer leaves. Without a customer participant (not a guest conversation), or with one who already
        // left while the conversation runs on, straight to the teardown.
        if (seen.Customer is { } customer && !seen.CustomerEnded)
        {
            var answer = await conversations.PatchParticipantAsync(conversationId, customer.Id, reason, ct);
            var outcome = await AfterLeverAsync(conversationId, answer, TerminationLever.ParticipantDisconnect, ct);
            if (outcome is not null) return outcome;
        }

        // Lever 2: the platform's teardown.
        var teardown = await conversations.PostDisconnectAsync(conversationId, reason, ct);
        return await AfterLeverAsync(conversationId, teardown, TerminationLever.ConversationDisconnect, ct)
            ?? Result(TerminationStatus.Failed, conversationId, null, await WithAnalyticsAsync(conversationId, await ReadAsync(conversationId, ct), ct),
                $"Neither lever produced a verified end of conversation {conversationId}: see the calls and the last reading.");
    }

    /// <summary>The outcome once a lever answered, or null to try the next lever.</summary>
    async Task<TerminationResult?> AfterLeverAsync(string id, Answer answer, TerminationLever lever, CancellationToken ct)
    {
        Record(answer);
        if (answer.Status is 401 or 403) throw answer.Failure();   // the caller's credentials: not an outcome of this conversation
        if (int.TryParse(answer.Header(ConversationsClient.SocketsNotifiedHeader), out var sockets)) _sockets = (_sockets ?? 0) + sockets;
        _terminationId = answer.Header(ConversationsClient.TerminationIdHeader) ?? _terminationId;
        if (answer.IsSuccess)
        {
            var verified = await VerifyAsync(id, ct);
            if (verified.Verified)
                return Result(TerminationStatus.Ended, id, lever, verified,
                    $"Conversation {id} ended ({Describe(lever)}), verified: every participant is disconnected and analytics shows conversationEnd.");
            return null;
        }
        // Someone else ended it meanwhile (409), or it vanished (404): the conversation decides which. Only a verified end
        // (every participant gone, analytics' conversationEnd) is "already ended"; anything less goes on to the next lever.
        if (answer.Status is 404 or 409)
        {
            var now = await VerifyAsync(id, ct);
            if (now.NotFound) return Result(TerminationStatus.NotFound, id, null, now, $"Conversation {id} was not found.");
            if (now.Verified)
                return Result(TerminationStatus.AlreadyEnded, id, null, now,
                    $"Conversation {id} was ended by someone else meanwhile; this call changed nothing.");
        }
        return null;
    }

    /// <summary>Reads the conversation and its analytics until both show the end, with a bounded backoff.</summary>
    async Task<Reading> VerifyAsync(string id, CancellationToken ct)
    {
        var delay = _verify.FirstDelay;
        Reading last = Reading.Unread;
        for (var attempt = 1; attempt <= Math.Max(1, _verify.Attempts); attempt++)
        {
            last = await ReadAsync(id, ct);
            if (last.AllEnded) last = await WithAnalyticsAsync(id, last, ct);
            if (last.Verified || last.NotFound) return last;
            if (attempt < _verify.Attempts)
            {
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _verify.MaxDelay.Ticks));
            }
        }
        return last;
    }

    async Task<Reading> ReadAsync(string id, CancellationToken ct)
    {
        var answer = await api.SendAsync(HttpMethod.Get, $"/api/v2/conversations/messages/{Http.Segment(id)}", null, ct);
        Record(answer);
        if (answer.Status is 401 or 403) throw answer.Failure();
        if (answer.Status == 404) return Reading.Unread with { NotFound = true };
        if (!answer.IsSuccess) return Reading.Unread;
        MessageConversation? conversation;
        try { conversation = JsonSerializer.Deserialize(answer.Body, ParleyJson.Wire.MessageConversation); }
        catch (JsonException) { return Reading.Unread; }
        return conversation is null ? Reading.Unread : new Reading(conversation, false, null);
    }

    async Task<Reading> WithAnalyticsAsync(string id, Reading reading, CancellationToken ct)
    {
        if (reading.Conversation is null) return reading;
        var answer = await api.SendAsync(HttpMethod.Get, $"/api/v2/analytics/conversations/{Http.Segment(id)}/details", null, ct);
        Record(answer);
        if (answer.Status is 401 or 403) throw answer.Failure();
        if (!answer.IsSuccess) return reading;   // not indexed yet (the platform's analytics is asynchronous)
        try { return reading with { ConversationEnd = JsonSerializer.Deserialize(answer.Body, ParleyJson.Wire.AnalyticsConversation)?.ConversationEnd }; }
        catch (JsonException) { return reading; }
    }

    void Record(Answer answer)
    {
        string? code = null;
        if (!answer.IsSuccess && answer.Body.Length > 0)
        {
            try { code = JsonSerializer.Deserialize(answer.Body, ParleyJson.Wire.ErrorBody)?.Code; }
            catch (JsonException) { }
        }
        _calls.Add(new ObservedCall(answer.Method, answer.Path, answer.Status, code));
    }

    TerminationResult Result(TerminationStatus status, string id, TerminationLever? lever, Reading reading, string message) =>
        Result(status, id, lever, Evidence(reading), message);

    static TerminationResult Result(TerminationStatus status, string id, TerminationLever? lever, TerminationEvidence evidence, string message) =>
        new(status, id, lever, evidence, message);

    TerminationEvidence Evidence(Reading r) => new()
    {
        ConversationState = r.Conversation is null ? null : r.AllDisconnected ? "disconnected" : "connected",
        CustomerParticipantId = r.Customer?.Id, CustomerState = r.Customer?.State, CustomerEndTime = r.Customer?.EndTime,
        CustomerDisconnectType = r.Customer?.DisconnectType, AnalyticsConversationEnd = r.ConversationEnd,
        Calls = [.. _calls], SocketsNotified = _sockets, TerminationId = _terminationId,
        ReceiptUri = _terminationId is null ? null : $"/api/v2/parley/receipts/{Uri.EscapeDataString(_terminationId)}",
    };

    static string Describe(TerminationLever lever) => lever switch
    {
        TerminationLever.ParticipantDisconnect => "the customer participant was disconnected",
        _ => "POST /api/v2/conversations/{id}/disconnect, after the participant disconnect did not show",
    };

    /// <summary>One reading of the conversation (and of its analytics, when it looked ended).</summary>
    sealed record Reading(MessageConversation? Conversation, bool NotFound, string? ConversationEnd)
    {
        public static readonly Reading Unread = new(null, false, null);

        public MessageMediaParticipant? Customer => Conversation?.Participants.FirstOrDefault(p => p.Purpose == "customer");

        public bool AllDisconnected => Conversation is { Participants.Count: > 0 } c && c.Participants.All(p => EndedStates.Contains(p.State));

        static bool Left(MessageMediaParticipant p) => EndedStates.Contains(p.State) && p.EndTime is not null;

        /// <summary>The customer participant left, with an end time (the conversation may still run on without them).</summary>
        public bool CustomerEnded => Customer is { } c && Left(c);

        /// <summary>Every participant left, each with an end time.</summary>
        public bool AllEnded => Conversation is { Participants.Count: > 0 } c && c.Participants.All(Left);

        /// <summary>The conversation ended, verified: every participant left and analytics shows conversationEnd.</summary>
        public bool Verified => AllEnded && ConversationEnd is not null;
    }
}
