using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;

namespace Parley.Core;

public enum OutcomeStatus { Done, NoOp, NotFound, Rejected }

/// <summary>
/// What happened to a command. <see cref="Delivered"/> completes when the committed facts were handed to the guest's
/// sockets (the count of sockets told that their conversation ended). <see cref="Outbox"/> holds the channel deliveries
/// the commit stored with the facts (for an end: the open messaging end notice, when its integration sends one).
/// </summary>
public sealed record Outcome(
    OutcomeStatus Status,
    Conversation? Conversation,
    ImmutableArray<ConversationEvent> Events,
    Rejection? Rejected,
    Task<int> Delivered,
    string? AuditId = null,
    ImmutableArray<OutboxItem> Outbox = default)
{
    static readonly Task<int> None = Task.FromResult(0);
    public static Outcome NotFound() => new(OutcomeStatus.NotFound, null, [], null, None);
    public static Outcome Reject(Conversation? c, Rejection r) => new(OutcomeStatus.Rejected, c, [], r, None);
    public static Outcome NoOp(Conversation c) => new(OutcomeStatus.NoOp, c, [], null, None);
    public ConversationMessage? Message
    {
        get
        {
            foreach (var e in Events)
                if (e is MessageAdded added) return added.Message;
            return null;
        }
    }
}

/// <summary>What a conversation is tagged with when an agentless request starts it (docs/ending-sessions.md "Campaign tag").</summary>
public sealed record StartTags(string? Campaign, string? StartedBy);

/// <summary>Settings the domain needs from configuration.</summary>
public sealed record ConversationOptions(string BotName = "Parley Bot", string GuestName = "Guest");

/// <summary>
/// The order of effects is the design: load, decide, commit (one transaction, guarded by the version decided on),
/// then fan out. A per-conversation lock keeps this node's writers in line and its pushes in version order; the
/// version check in the store is what keeps several nodes honest, and a conflict is retried on fresh state.
/// </summary>
public sealed class Conversations(
    IConversationStore store,
    IGuestSessionStore sessions,
    IConversationFanout fanout,
    TimeProvider clock,
    ConversationOptions? options = null,
    IOutboundEffects? effects = null)
{
    readonly ConversationOptions _options = options ?? new();
    // Write-path caches of this node: live conversations as last committed, and each session's current conversation.
    // They save the store a read per message; they never decide alone, because every commit is still checked against
    // the stored version (a conversation) or the stored session pointer (a new conversation), and a miss reloads.
    readonly ConcurrentDictionary<string, Conversation> _live = new();
    readonly ConcurrentDictionary<string, string?> _current = new();
    const int MaxCached = 200_000;
    readonly StripedLock _conversationLocks = new(1024);
    readonly StripedLock _sessionLocks = new(1024);
    const int MaxAttempts = 8;

    /// <summary>Milliseconds are what the wire and the store carry, so the domain decides on the same precision.</summary>
    DateTimeOffset Now()
    {
        var t = clock.GetUtcNow();
        return t.AddTicks(-(t.Ticks % TimeSpan.TicksPerMillisecond));
    }

    // Time-ordered (UUID v7): new rows land at the end of the store's B-trees, so a group commit dirties a few pages
    // instead of one random page per row (measured: BENCHMARKS.md).
    public static string NewId() => Guid.CreateVersion7().ToString();
    public static string NewMessageId() => Guid.CreateVersion7().ToString("N");

    /// <summary>A conversation as the write path sees it (this node's cache first). Reads for API answers use the store.</summary>
    public Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct) => LoadForWriteAsync(conversationId, ct).AsTask();

    /// <summary>Runs a command against an existing conversation.</summary>
    public async Task<Outcome> HandleAsync(string conversationId, Command command, CancellationToken ct)
    {
        using var held = await _conversationLocks.AcquireAsync(conversationId, ct);
        return await HandleLockedAsync(conversationId, command, ct);
    }

    async Task<Outcome> HandleLockedAsync(string conversationId, Command command, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var conversation = await LoadForWriteAsync(conversationId, ct, underLock: true);
            if (conversation is null) return Outcome.NotFound();
            var decision = ConversationMachine.Decide(conversation, command, Now());
            if (decision.Rejected is { } rejected) return Outcome.Reject(conversation, rejected);
            if (decision.IsNoOp) return Outcome.NoOp(conversation);

            var after = ConversationMachine.ApplyAll(conversation, decision.Events);
            var audit = AuditFor(command, after, decision.Events);
            var outbox = await RenderEffectsAsync(after, decision.Events, ct);
            var committed = await CommitAsync(new Commit(after, conversation.Version, decision.Events, Audit: audit, Outbox: outbox), ct);
            if (committed.Stored) return Stored(conversation, after, decision.Events, committed, audit, outbox);
            _live.TryRemove(conversationId, out _);   // another writer moved first: decide again on what is stored
            if (attempt >= MaxAttempts) throw new InvalidOperationException($"Conversation {conversationId} kept moving; gave up after {attempt} attempts.");
        }
    }

    /// <summary>A stored commit of a change: remembered, then published to the conversation's sockets (under its lock).</summary>
    Outcome Stored(Conversation before, Conversation after, ImmutableArray<ConversationEvent> decided, CommitResult committed,
        TerminationAudit? audit, ImmutableArray<OutboxItem> outbox)
    {
        var events = ConversationMachine.Sequenced(decided, committed.LastSequence);
        if (committed.ChangedAt is { } changedAt && events.Any(e => e is not MessageAdded && e.At < changedAt))
        {
            // Stamped later by the store (a later-stamped message committed first): publish the end as stored.
            events = ConversationMachine.Stamped(events, changedAt);
            after = ConversationMachine.ApplyAll(before, events);
        }
        Remember(after);
        return Published(after, events, audit?.Id, outbox, started: false);
    }

    /// <summary>
    /// The lock stripe of a conversation: <see cref="HandleManyAsync"/> calls over conversations of different stripes run
    /// side by side; two that share a stripe run one after the other.
    /// </summary>
    public int LockStripeOf(string conversationId) => _conversationLocks.StripeOf(conversationId);

    /// <summary>What <see cref="HandleManyAsync"/> did to one conversation: its outcome, or the error that stopped it.</summary>
    public readonly record struct ManyOutcome(string ConversationId, Outcome? Outcome, Exception? Error);

    /// <summary>
    /// Runs one command against many conversations (a bulk termination's chunk) with the guarantees of
    /// <see cref="HandleAsync"/> for each: under every one's lock (taken in stripe order, so two chunks never deadlock),
    /// each decided on its own state and committed guarded by its own version, then published in version order. The
    /// commits are made by the store together (<see cref="IConversationStore.CommitManyAsync"/>: one write instead of one
    /// per conversation); one refused (another writer or node moved first) is decided again alone, as a single command is.
    /// </summary>
    public async Task<ManyOutcome[]> HandleManyAsync(IReadOnlyList<string> conversationIds, Command command, CancellationToken ct)
    {
        var results = new ManyOutcome[conversationIds.Count];
        using var held = await _conversationLocks.AcquireManyAsync(conversationIds, ct);
        var pending = new List<(int Index, Conversation Before, Conversation After, ImmutableArray<ConversationEvent> Events,
            TerminationAudit? Audit, ImmutableArray<OutboxItem> Outbox)>(conversationIds.Count);
        var commits = new List<Commit>(conversationIds.Count);
        for (var i = 0; i < conversationIds.Count; i++)
        {
            var id = conversationIds[i];
            try
            {
                var conversation = await LoadForWriteAsync(id, ct, underLock: true);
                if (conversation is null) { results[i] = new(id, Outcome.NotFound(), null); continue; }
                var decision = ConversationMachine.Decide(conversation, command, Now());
                if (decision.Rejected is { } rejected) { results[i] = new(id, Outcome.Reject(conversation, rejected), null); continue; }
                if (decision.IsNoOp) { results[i] = new(id, Outcome.NoOp(conversation), null); continue; }
                var after = ConversationMachine.ApplyAll(conversation, decision.Events);
                var audit = AuditFor(command, after, decision.Events);
                var outbox = await RenderEffectsAsync(after, decision.Events, ct);
                pending.Add((i, conversation, after, decision.Events, audit, outbox));
                commits.Add(new Commit(after, conversation.Version, decision.Events, Audit: audit, Outbox: outbox));
            }
            catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
            {
                results[i] = new(id, null, e);
            }
        }
        if (commits.Count == 0) return results;

        IReadOnlyList<CommitResult> committed;
        using (var span = ParleyDiagnostics.Start("parley.store.commit", ActivityKind.Client))
        {
            span?.SetTag("parley.store.commits", commits.Count);
            var started = Stopwatch.GetTimestamp();
            try { committed = await store.CommitManyAsync(commits, ct); }
            catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
            {
                foreach (var p in pending) results[p.Index] = new(conversationIds[p.Index], null, e);
                return results;
            }
            ParleyDiagnostics.CommitDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        for (var k = 0; k < pending.Count; k++)
        {
            var (index, before, after, events, audit, outbox) = pending[k];
            var id = conversationIds[index];
            if (committed[k].Stored) { results[index] = new(id, Stored(before, after, events, committed[k], audit, outbox), null); continue; }
            // Refused (or failed alone): decide it again on what is stored, as a single command would; still under its lock.
            _live.TryRemove(id, out _);
            try { results[index] = new(id, await HandleLockedAsync(id, command, ct), null); }
            catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested)) { results[index] = new(id, null, e); }
        }
        return results;
    }

    /// <summary>
    /// A message to a guest session's conversation, from the guest (<see cref="MessageDirection.Inbound"/>) or from the
    /// bot initiating contact (<see cref="MessageDirection.Outbound"/>). It goes to the session's live conversation, or
    /// starts one when there is none. After an end, a guest message starts a new conversation only in Send mode (or
    /// with the disconnect notice off); in ReadOnly mode it is refused. A bot may always start a new conversation.
    /// <paramref name="start"/> tags a conversation this call starts (an agentless request's campaign and caller); a live
    /// conversation it joins keeps its own.
    /// </summary>
    public async Task<Outcome> SendToSessionAsync(string sessionId, ChannelSettings channel, MessageDirection direction,
        Func<Conversation, AddMessage> message, CancellationToken ct, bool mayJoinLive = true, StartTags? start = null)
    {
        using var held = await _sessionLocks.AcquireAsync(sessionId, ct);
        for (var attempt = 0; ; attempt++)
        {
            if (!_current.TryGetValue(sessionId, out var currentId))
            {
                if (await sessions.GetAsync(sessionId, ct) is not { } stored) return Outcome.NotFound();
                currentId = stored.ConversationId;
                RememberSession(sessionId, currentId);
            }
            var conversation = currentId is { } cid ? await LoadForWriteAsync(cid, ct) : null;
            if (conversation is { IsEnded: false } && !mayJoinLive)
            {
                return Outcome.Reject(conversation, new Rejection(RejectionCode.ConversationActive,
                    $"Conversation {conversation.Id} is already live for this recipient."));
            }
            if (conversation is { IsEnded: false })
            {
                using var __ = await _conversationLocks.AcquireAsync(conversation.Id, ct);
                var outcome = await HandleLockedAsync(conversation.Id, message(conversation), ct);
                // Ended between our look and our lock: go round again, so the mode of that end decides.
                if (outcome.Rejected?.Code != RejectionCode.ConversationEnded) return outcome;
            }
            else if (direction == MessageDirection.Inbound && conversation is { IsReadOnlyForGuest: true })
            {
                // The end may have committed but not yet reached the guest's sockets (its writer publishes under the
                // conversation's lock): take the lock, so the refusal is answered after the Disconnect frame, never before.
                using var ended = await _conversationLocks.AcquireAsync(conversation.Id, ct);
                return Outcome.Reject(conversation, new Rejection(RejectionCode.ConversationEnded, ReadOnlyMessage));
            }
            else if (await StartAsync(sessionId, currentId, channel, direction, message, start, ct) is { } started)
            {
                return started;
            }
            else
            {
                _current.TryRemove(sessionId, out _);   // the session moved on elsewhere: read it again
            }
            if (attempt >= MaxAttempts) throw new InvalidOperationException($"Session {sessionId} kept moving; gave up.");
        }
    }

    /// <summary>The actor of an end for inactivity in the audit log.</summary>
    public static readonly Actor Inactivity = new("parley:inactivity");

    /// <summary>
    /// Ends the conversation if it is still idle past its timeout (docs/compatibility.md §Termination levers, inactivity): decided under the
    /// conversation's lock, so a message appended meanwhile on this node keeps it alive. Null when it was not ended.
    /// </summary>
    public async Task<Outcome?> EndIfIdleAsync(string conversationId, CancellationToken ct)
    {
        using var held = await _conversationLocks.AcquireAsync(conversationId, ct);
        var c = await LoadForWriteAsync(conversationId, ct, underLock: true);
        if (c is not { IsEnded: false, InactivityTimeout: { } timeout }) return null;
        if (await store.LastActivityAsync(conversationId, ct) is { } last && last + timeout > Now()) return null;
        return await HandleLockedAsync(conversationId, new EndConversation(Inactivity, EndLever.Inactivity, "inactivity"), ct);
    }

    /// <summary>Detaches a session from its ended conversation (the guest starts a new chat).</summary>
    public async Task<bool> DetachAsync(string sessionId, string endedConversationId, CancellationToken ct)
    {
        using var held = await _sessionLocks.AcquireAsync(sessionId, ct);
        var detached = await sessions.DetachConversationAsync(sessionId, endedConversationId, ct);
        _current.TryRemove(sessionId, out _);
        return detached;
    }

    /// <summary>
    /// The guest clears its session (Presence Clear): its live conversation ends (the customer leaves) and the session is
    /// forgotten, so its token starts afresh. Both under the session lock, so no message can start a conversation in
    /// between that nothing could reach. Returns the end's outcome, or null when nothing was live.
    /// </summary>
    public async Task<Outcome?> ClearSessionAsync(string sessionId, CancellationToken ct)
    {
        // From the moment the guest asks, the session opens nothing (IsClearing), not only once its row is deleted:
        // the end's commit and the delete are two writes, and the guest hears the Disconnect between them.
        _clearing.AddOrUpdate(sessionId, 1, (_, n) => n + 1);
        try
        {
            return await ClearLockedAsync(sessionId, ct);
        }
        finally
        {
            if (_clearing.AddOrUpdate(sessionId, 0, (_, n) => n - 1) <= 0) _clearing.TryRemove(new KeyValuePair<string, int>(sessionId, 0));
        }
    }

    readonly ConcurrentDictionary<string, int> _clearing = new();

    /// <summary>The guest has asked to clear this session and the clear is under way (after it, the session is gone).</summary>
    public bool IsClearing(string sessionId) => _clearing.ContainsKey(sessionId);

    async Task<Outcome?> ClearLockedAsync(string sessionId, CancellationToken ct)
    {
        using var held = await _sessionLocks.AcquireAsync(sessionId, ct);
        Outcome? ended = null;
        var currentId = _current.TryGetValue(sessionId, out var cached) ? cached : (await sessions.GetAsync(sessionId, ct))?.ConversationId;
        if (currentId is not null && await LoadForWriteAsync(currentId, ct) is { IsEnded: false } live)
        {
            using var conversationHeld = await _conversationLocks.AcquireAsync(live.Id, ct);
            ended = await HandleLockedAsync(live.Id,
                new DisconnectParticipant(live.Customer.Id, Actor.Guest, EndLever.GuestClear, "guest cleared the conversation"), ct);
        }
        await sessions.DeleteAsync(sessionId, ct);
        _current.TryRemove(sessionId, out _);
        return ended;
    }

    /// <summary>
    /// The cache first, else the store. Only a read made under the conversation's lock is cached: one made outside it
    /// could be older than a commit that has already updated (or evicted) the entry. A ValueTask: nearly every call is
    /// answered from the cache, and then allocates nothing.
    /// </summary>
    async ValueTask<Conversation?> LoadForWriteAsync(string id, CancellationToken ct, bool underLock = false)
    {
        if (_live.TryGetValue(id, out var cached)) return cached;
        var loaded = await store.LoadAsync(id, ct);
        if (loaded is not null && underLock) Remember(loaded);
        return loaded;
    }

    void Remember(Conversation c)
    {
        if (c.IsEnded) { _live.TryRemove(c.Id, out _); return; }
        if (_live.Count >= MaxCached) _live.Clear();   // a crude bound: the store is always there behind it
        _live[c.Id] = c;
    }

    void RememberSession(string sessionId, string? conversationId)
    {
        if (_current.Count >= MaxCached) _current.Clear();
        _current[sessionId] = conversationId;
    }

    /// <summary>The Guest API's text for a write to a read-only session (docs/compatibility.md §Disconnect modes).</summary>
    public const string ReadOnlyMessage = "Session is read-only, no new messages allowed";

    /// <summary>Creates a conversation with its first message in one commit; null when the session moved meanwhile.</summary>
    async Task<Outcome?> StartAsync(string sessionId, string? currentId, ChannelSettings channel, MessageDirection direction,
        Func<Conversation, AddMessage> message, StartTags? start, CancellationToken ct)
    {
        var now = Now();
        var fresh = ConversationMachine.Start(NewId(), channel.Channel, channel.ChannelId, sessionId,
            channel.Mode, direction, channel.CustomerName ?? _options.GuestName, _options.BotName, NewId, now, channel.InactivityTimeout, channel.QueueId,
            start?.Campaign, start?.StartedBy);
        var decision = ConversationMachine.Decide(fresh, message(fresh), now);
        if (decision.Rejected is { } rejected) return Outcome.Reject(null, rejected);
        var after = ConversationMachine.ApplyAll(fresh, decision.Events);
        var move = new SessionMove(sessionId, currentId, after.Id);
        var outbox = await RenderEffectsAsync(after, decision.Events, ct);
        var committed = await CommitAsync(new Commit(after, 0, decision.Events, move, Outbox: outbox), ct);
        if (!committed.Stored) return null;
        Remember(after);
        RememberSession(sessionId, after.Id);
        return Published(after, ConversationMachine.Sequenced(decision.Events, committed.LastSequence), null, outbox, started: true);
    }

    /// <summary>The store's commit, timed (parley.store.commit.duration) and traced (a parley.store.commit span).</summary>
    async Task<CommitResult> CommitAsync(Commit commit, CancellationToken ct)
    {
        using var span = ParleyDiagnostics.Start("parley.store.commit", ActivityKind.Client);
        span?.SetTag("parley.conversation.id", commit.After.Id);
        var started = Stopwatch.GetTimestamp();
        var committed = await store.CommitAsync(commit, ct);
        ParleyDiagnostics.CommitDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        span?.SetTag("parley.store.stored", committed.Stored);
        return committed;
    }

    ValueTask<ImmutableArray<OutboxItem>> RenderEffectsAsync(Conversation after, ImmutableArray<ConversationEvent> events, CancellationToken ct) =>
        effects?.RenderAsync(after, events, ct) ?? ValueTask.FromResult(ImmutableArray<OutboxItem>.Empty);

    Outcome Published(Conversation after, ImmutableArray<ConversationEvent> events, string? auditId, ImmutableArray<OutboxItem> outbox,
        bool started)
    {
        if (!outbox.IsDefaultOrEmpty) effects?.Committed(outbox);
        return new(OutcomeStatus.Done, after, events, null, fanout.PublishAsync(after, events, started, auditId), auditId, outbox);
    }

    TerminationAudit? AuditFor(Command command, Conversation after, ImmutableArray<ConversationEvent> events)
    {
        var (by, lever, reason, participant) = command switch
        {
            DisconnectParticipant d => (d.By, d.Lever, d.Reason, d.ParticipantId),
            EndConversation e => (e.By, e.Lever, e.Reason, (string?)null),
            _ => (null!, default(EndLever), null, null),
        };
        if (by is null || events.IsEmpty) return null;
        return new TerminationAudit(NewId(), after.Id, participant, lever, by.ClientId, reason, events[^1].At, null, by.UserId, by.UserName);   // the instant of the end itself
    }

    /// <summary>
    /// Records how many guest sockets were told, once the fan-out finished. A separate small write: the termination
    /// itself (and the audit row) committed first, so a crash here loses only the count, never the fact.
    /// </summary>
    public static async Task<int> AwaitDeliveryAsync(Outcome outcome, IAuditLog audit, CancellationToken ct)
    {
        var sockets = await outcome.Delivered;
        // Not the request's token: the end has committed, and an aborted request must not turn that into an error.
        if (outcome.AuditId is { } id)
        {
            try { await audit.SetSocketsNotifiedAsync(id, sockets, CancellationToken.None); }
            // Nor a store lost just after the commit: the end stands and is answered as done; only the audit row lacks its count.
            catch (StoreUnavailableException) { }
        }
        return sockets;
    }
}

/// <summary>A fixed set of async locks picked by key hash: bounded memory, no per-key bookkeeping.</summary>
public sealed class StripedLock(int stripes)
{
    readonly SemaphoreSlim[] _locks = Enumerable.Range(0, stripes).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    /// <summary>The stripe whose lock <paramref name="key"/> takes (keys of different stripes never wait for each other).</summary>
    public int StripeOf(string key) => (int)((uint)StringComparer.Ordinal.GetHashCode(key) % (uint)_locks.Length);

    public async ValueTask<Releaser> AcquireAsync(string key, CancellationToken ct)
    {
        var gate = _locks[StripeOf(key)];
        await gate.WaitAsync(ct);
        return new Releaser(gate);
    }

    public readonly struct Releaser(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }

    /// <summary>
    /// The locks of many keys at once: each stripe once (a stripe is not re-entrant), in stripe order, so two holders of
    /// many never wait on each other in a cycle. Released together.
    /// </summary>
    public async ValueTask<ManyReleaser> AcquireManyAsync(IEnumerable<string> keys, CancellationToken ct)
    {
        var stripes = keys.Select(StripeOf).Distinct().Order().ToArray();
        var taken = 0;
        try
        {
            for (; taken < stripes.Length; taken++) await _locks[stripes[taken]].WaitAsync(ct);
        }
        catch
        {
            for (var i = 0; i < taken; i++) _locks[stripes[i]].Release();
            throw;
        }
        return new ManyReleaser(_locks, stripes);
    }

    public readonly struct ManyReleaser(SemaphoreSlim[] locks, int[] stripes) : IDisposable
    {
        public void Dispose()
        {
            foreach (var s in stripes) locks[s].Release();
        }
    }
}
