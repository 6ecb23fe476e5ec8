using System.Collections.Concurrent;
using System.Diagnostics;
using Parley.Core;

namespace Parley.Server.Terminations;

/// <summary>
/// Ends every live conversation a <see cref="LiveFilter"/> selects, each exactly as the single lever ends one: through
/// <see cref="Conversations.HandleAsync"/> (guarded commit with its audit row and end notices, then the Disconnect to its
/// guest sockets). The listing is a hint (<see cref="IConversationStore.ListLiveAsync"/>): each end is decided again under
/// its own commit, so a conversation ended meanwhile by another lever, node or policy counts as already ended, never twice.
/// Used by <c>POST /api/v2/parley/terminations</c> (lever <see cref="EndLever.Bulk"/>) and by termination policies
/// (<see cref="EndLever.Policy"/>).
/// </summary>
public sealed class BulkTerminator(IConversationStore store, Conversations conversations, IAuditLog audit, ParleyOptions options,
    ILoggerFactory loggers)
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Termination);
    readonly Conversations _conversations = conversations;
    readonly IAuditLog _audit = audit;

    /// <summary>Live conversations read per page of the listing (keyset by id).</summary>
    public const int PageSize = 1000;

    /// <summary>Socket counts written to the audit rows together, one statement for this many ends.</summary>
    const int AuditBatch = 500;

    /// <summary>Progress is reported every this many conversations done, or after <see cref="ProgressInterval"/>.</summary>
    const int ProgressEvery = 500;
    static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Ends what <paramref name="filter"/> selects, <see cref="ParleyOptions.TerminationParallelism"/> at a time (so the
    /// store's group commit writes many ends per transaction). A store error on one conversation is counted as failed and
    /// the others go on. Completes when every end committed and its guest sockets were told (the counts are final then);
    /// <paramref name="progress"/> hears the counts so far every 500 conversations or 250 ms, and the final counts.
    /// </summary>
    public async Task<BulkCounts> EndAsync(LiveFilter filter, Actor by, EndLever lever, string? reason, IProgress<BulkCounts>? progress,
        CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var run = new Run(this, progress);
        var command = new EndConversation(by, lever, reason);
        try
        {
            if (options.TerminationChunk > 1)
            {
                // Chunks of conversations ended together (one store write each); two or more in flight, so one chunk's
                // decisions and Disconnect frames overlap another's commit (their locks never overlap: StripeChunks).
                await Parallel.ForEachAsync(ListAsync(filter, run, ct).SelectMany(page => StripeChunks(page, _conversations.LockStripeOf,
                    options.TerminationChunk).ToAsyncEnumerable()), new ParallelOptions
                {
                    MaxDegreeOfParallelism = Math.Max(2, options.TerminationParallelism / options.TerminationChunk), CancellationToken = ct,
                }, async (rows, token) => await run.EndManyAsync(rows, command, lever, token));
            }
            else
            {
                await Parallel.ForEachAsync(ListAsync(filter, run, ct).SelectMany(page => page.ToAsyncEnumerable()), new ParallelOptions
                {
                    MaxDegreeOfParallelism = options.TerminationParallelism, CancellationToken = ct,
                }, async (row, token) => await run.EndOneAsync(row.Id, command, lever, token));
            }
        }
        finally
        {
            // What committed is told and counted even when the run stops early (cancelled, or the listing failed).
            await run.DrainAsync();
        }
        var counts = run.Counts;
        progress?.Report(counts);
        _log.BulkTerminated(by.ClientId, ParleyLog.ByUser(by), lever, ParleyLog.Clip(reason), counts.Matched, counts.Ended, counts.AlreadyEnded,
            counts.Failed, counts.SocketsNotified, counts.ChannelsNotified, Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 2));
        return counts;
    }

    /// <summary>How many live conversations <paramref name="filter"/> selects now, counting up to <paramref name="limit"/> at most.</summary>
    public async Task<int> CountAsync(LiveFilter filter, int limit, CancellationToken ct)
    {
        var count = 0;
        string? after = null;
        while (count < limit)
        {
            var want = Math.Min(PageSize, limit - count);
            var page = await store.ListLiveAsync(filter, want, after, ct);
            count += page.Count;
            if (page.Count < want) break;   // a short page is the last
            after = page[^1].Id;
        }
        return count;
    }

    /// <summary>
    /// A page of the listing cut into chunks of about <paramref name="size"/> that share no lock stripe: the page in
    /// stripe order, cut only between stripes (unless one stripe alone would make a chunk of twice the size). The chunks in
    /// flight together are neighbours, so none waits for another's locks. Cut in listing order, any two chunks of 256
    /// shared some of the 1,024 stripes, and the second waited for the whole of the first (its commit, its Disconnect
    /// frames) while the writer had nothing to do (BENCHMARKS.md, round two, eighth run).
    /// </summary>
    internal static IEnumerable<LiveConversation[]> StripeChunks(IReadOnlyList<LiveConversation> page, Func<string, int> stripeOf, int size)
    {
        var stripes = new int[page.Count];
        var rows = new LiveConversation[page.Count];
        for (var i = 0; i < rows.Length; i++) (rows[i], stripes[i]) = (page[i], stripeOf(page[i].Id));
        Array.Sort(stripes, rows);
        for (var start = 0; start < rows.Length;)
        {
            var end = Math.Min(start + size, rows.Length);
            while (end < rows.Length && stripes[end] == stripes[end - 1] && end - start < 2 * size) end++;
            yield return rows[start..end];
            start = end;
        }
    }

    /// <summary>The live conversations <paramref name="filter"/> selects, a page at a time (keyset by id).</summary>
    async IAsyncEnumerable<IReadOnlyList<LiveConversation>> ListAsync(LiveFilter filter, Run run,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        string? after = null;
        while (true)
        {
            var page = await store.ListLiveAsync(filter, PageSize, after, ct);
            if (page.Count == 0) yield break;
            run.Matched(page.Count);
            yield return page;
            if (page.Count < PageSize) yield break;
            after = page[^1].Id;
        }
    }

    /// <summary>One run's counters, its pending socket tallies and its audit count batch.</summary>
    sealed class Run(BulkTerminator owner, IProgress<BulkCounts>? progress)
    {
        int _matched, _ended, _alreadyEnded, _failed, _sockets, _channels, _done;
        long _lastReport = Stopwatch.GetTimestamp();
        readonly ConcurrentQueue<(string AuditId, int Sockets)> _counts = new();
        readonly ConcurrentBag<Task> _deliveries = [];
        readonly SemaphoreSlim _flushing = new(1, 1);

        public BulkCounts Counts => new(Volatile.Read(ref _matched), Volatile.Read(ref _ended), Volatile.Read(ref _alreadyEnded),
            Volatile.Read(ref _failed), Volatile.Read(ref _sockets), Volatile.Read(ref _channels));

        public void Matched(int n) => Interlocked.Add(ref _matched, n);

        public async Task EndOneAsync(string id, EndConversation command, EndLever lever, CancellationToken ct)
        {
            var trace = ParleyTelemetry.StartTermination(lever, id);
            Outcome outcome;
            try
            {
                outcome = await owner._conversations.HandleAsync(id, command, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { trace.Dispose(); throw; }
            catch (Exception e)
            {
                Failed(id, e, trace);
                return;
            }
            Ended(outcome, command, trace);
        }

        /// <summary>A chunk ended together (<see cref="Conversations.HandleManyAsync"/>), each counted and told as one end is.</summary>
        public async Task EndManyAsync(LiveConversation[] rows, EndConversation command, EndLever lever, CancellationToken ct)
        {
            var traces = new ParleyTelemetry.TerminationTrace[rows.Length];
            for (var i = 0; i < rows.Length; i++) traces[i] = ParleyTelemetry.StartTermination(lever, rows[i].Id);
            Conversations.ManyOutcome[] outcomes;
            try
            {
                outcomes = await owner._conversations.HandleManyAsync(Array.ConvertAll(rows, r => r.Id), command, ct);
            }
            catch (Exception e)
            {
                foreach (var t in traces) t.Dispose();
                if (e is OperationCanceledException && ct.IsCancellationRequested) throw;
                for (var i = 0; i < rows.Length; i++) Failed(rows[i].Id, e, null);
                return;
            }
            for (var i = 0; i < outcomes.Length; i++)
            {
                if (outcomes[i] is { Outcome: { } outcome }) Ended(outcome, command, traces[i]);
                else Failed(outcomes[i].ConversationId, outcomes[i].Error!, traces[i]);
            }
        }

        /// <summary>A store error (or a conversation that kept moving): this one is not ended; the others go on.</summary>
        void Failed(string id, Exception e, ParleyTelemetry.TerminationTrace? trace)
        {
            trace?.Dispose();
            owner._log.BulkEndFailed(id, e);
            Interlocked.Increment(ref _failed);
            Done();
        }

        void Ended(Outcome outcome, EndConversation command, ParleyTelemetry.TerminationTrace trace)
        {
            switch (outcome.Status)
            {
                case OutcomeStatus.Done:
                    Interlocked.Increment(ref _ended);
                    if (!outcome.Outbox.IsDefaultOrEmpty) Interlocked.Add(ref _channels, outcome.Outbox.Length);
                    // The slot is free once the end committed; its guest sockets are told meanwhile (counted when they were).
                    _deliveries.Add(ToldAsync(outcome, command, trace));
                    break;
                case OutcomeStatus.NoOp:
                case OutcomeStatus.Rejected when outcome.Rejected?.Code == RejectionCode.ConversationEnded:
                    trace.Dispose();
                    Interlocked.Increment(ref _alreadyEnded);
                    break;
                default:
                    trace.Dispose();
                    Interlocked.Increment(ref _failed);
                    break;
            }
            Done();
        }

        async Task ToldAsync(Outcome outcome, EndConversation command, ParleyTelemetry.TerminationTrace trace)
        {
            using (trace)
            {
                var sockets = await outcome.Delivered;
                var elapsed = trace.Told(outcome, sockets);
                Interlocked.Add(ref _sockets, sockets);
                owner._log.Terminated(outcome, sockets, elapsed, command);
                if (outcome.AuditId is { } auditId)
                {
                    _counts.Enqueue((auditId, sockets));
                    if (_counts.Count >= AuditBatch) await FlushAsync(all: false);
                }
            }
        }

        void Done()
        {
            var done = Interlocked.Increment(ref _done);
            if (progress is null) return;
            var last = Interlocked.Read(ref _lastReport);
            if (done % ProgressEvery != 0 && Stopwatch.GetElapsedTime(last) < ProgressInterval) return;
            if (Interlocked.CompareExchange(ref _lastReport, Stopwatch.GetTimestamp(), last) == last) progress.Report(Counts);
        }

        /// <summary>Waits for every committed end's sockets to be told, then writes the audit counts not yet written.</summary>
        public async Task DrainAsync()
        {
            await Task.WhenAll(_deliveries);
            await FlushAsync(all: true);
        }

        /// <summary>
        /// Writes queued socket counts to their audit rows, a batch per statement. Not the request's token: the ends have
        /// committed. A store lost here costs only counts, never an end (as <see cref="Conversations.AwaitDeliveryAsync"/>).
        /// </summary>
        async Task FlushAsync(bool all)
        {
            await _flushing.WaitAsync();
            try
            {
                while (_counts.Count >= (all ? 1 : AuditBatch))
                {
                    var batch = new List<(string, int)>(AuditBatch);
                    while (batch.Count < AuditBatch && _counts.TryDequeue(out var row)) batch.Add(row);
                    try { await owner._audit.SetSocketsNotifiedAsync(batch, CancellationToken.None); }
                    catch (StoreUnavailableException) { }
                }
            }
            finally { _flushing.Release(); }
        }
    }
}
