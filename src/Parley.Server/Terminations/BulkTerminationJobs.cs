using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.Protocol;

namespace Parley.Server.Terminations;

/// <summary>
/// Runs bulk terminations and keeps their rows: a small one in the request (stored FULFILLED when done), a large one as a
/// job on this node (stored PENDING at once, its counts written as it runs — every 500 conversations or 250 ms, not on
/// every end — and FULFILLED or FAILED at the end). At start, this node's jobs still PENDING are marked FAILED: the node
/// stopped while running them (a job runs on the node that took the request; nothing else would finish it). A single node
/// without <c>Parley:Node:Id</c> (its id changes per process) marks every PENDING job FAILED.
/// </summary>
public sealed class BulkTerminationJobs(BulkTerminator terminator, ITerminationJobStore store, ParleyOptions options, TimeProvider clock,
    ILoggerFactory loggers) : IHostedService
{
    public const string NodeStopped = "The node running this termination stopped before it finished; the counts are those it had written. " +
        "Conversations it had not reached are still live: start another termination with the same filter.";

    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Termination);
    readonly ConcurrentDictionary<string, Task> _running = new();
    readonly CancellationTokenSource _stopping = new();

    public async Task StartAsync(CancellationToken ct)
    {
        try
        {
            // A node with Parley:Node:Id fails its own rows. Without one, the id changes per process, so a row left by the last
            // run is never this node's: on a single node (the local backplane) every PENDING row was left by a stop, since
            // nothing else runs jobs; on several nodes without ids, another node's running job can't be told apart, so none is touched.
            var node = options.NodeIdConfigured || options.BackplaneProvider != BackplaneProvider.Local ? options.NodeId : null;
            var failed = await store.FailPendingAsync(node, NodeStopped, clock.GetUtcNow(), ct);
            if (failed > 0) _log.BulkJobsLeftByStop(failed, node ?? "(any: single node without Parley:Node:Id)");
        }
        // The store is not there yet: readiness says so; the rows stay PENDING until the next start.
        catch (StoreUnavailableException e) { _log.BulkJobsNotChecked(e.Message); }
    }

    public async Task StopAsync(CancellationToken ct)
    {
        await _stopping.CancelAsync();
        try { await Task.WhenAll(_running.Values).WaitAsync(ct); }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// Counts what <paramref name="live"/> selects; up to <see cref="ParleyOptions.TerminationAnswerAtOnceMax"/> ends it
    /// now and answers the FULFILLED row, otherwise stores a PENDING job, starts it and answers that. The set is the
    /// conversations live at the time of the request: its start bound is capped at now (<see cref="Snapshot"/>).
    /// </summary>
    /// <param name="lever">The audit's lever: <see cref="EndLever.Bulk"/>, or <see cref="EndLever.Policy"/> when a policy is applied.</param>
    public async Task<TerminationJob> StartAsync(TerminationFilter filter, LiveFilter live, string? reason, Actor by, CancellationToken ct,
        EndLever lever = EndLever.Bulk)
    {
        var now = clock.GetUtcNow();
        live = Snapshot(live, now);
        var matched = await terminator.CountAsync(live, options.TerminationAnswerAtOnceMax + 1, ct);
        var job = new TerminationJob(Conversations.NewId(), TerminationJobStates.Pending, JsonSerializer.Serialize(filter, ParleyJson.Wire.TerminationFilter),
            reason, default, null, by, options.NodeId, now);
        if (matched <= options.TerminationAnswerAtOnceMax)
        {
            // Not the request's token: an end that committed is not undone by a caller that hung up, and the row is kept.
            var counts = await terminator.EndAsync(live, by, lever, reason, null, _stopping.Token);
            var done = job with { State = TerminationJobStates.Fulfilled, Counts = counts, CompletedAt = clock.GetUtcNow() };
            await store.CreateAsync(done, CancellationToken.None);
            return done;
        }
        await store.CreateAsync(job, ct);
        _running[job.Id] = Task.Run(() => RunAsync(job, live, lever));
        return job;
    }

    /// <summary>
    /// <paramref name="live"/> limited to conversations started by <paramref name="now"/>: the listing pages by id, and ids
    /// grow with time, so without this bound a running job would also reach conversations started after the request.
    /// The bound is exclusive and start times are kept to the millisecond, hence now + 1 ms (one started in the request's
    /// own millisecond is in the set).
    /// </summary>
    public static LiveFilter Snapshot(LiveFilter live, DateTimeOffset now)
    {
        var bound = now.AddMilliseconds(1);
        return live.StartedBefore is { } before && before <= bound ? live : live with { StartedBefore = bound };
    }

    async Task RunAsync(TerminationJob job, LiveFilter live, EndLever lever)
    {
        var progress = new LatestCounts();
        var writer = WriteProgressAsync(job.Id, progress.Reader);
        var state = TerminationJobStates.Failed;
        string? error = null;
        var counts = default(BulkCounts);
        try
        {
            counts = await terminator.EndAsync(live, job.CreatedBy, lever, job.Reason, progress, _stopping.Token);
            state = TerminationJobStates.Fulfilled;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { error = NodeStopped; }
        catch (Exception e) when (StoreOutages.Find(e) is { } unavailable) { error = $"The store could not be reached: {ApiError.Clip(unavailable.Message, 200)}"; }
        catch (Exception e)
        {
            _log.BulkJobFailed(job.Id, e);
            error = "The termination failed on the server; see its log. Conversations it had not reached are still live.";
        }
        finally
        {
            progress.Complete();
            await writer;
            if (state != TerminationJobStates.Fulfilled) counts = progress.Last;
            try { await store.UpdateAsync(job.Id, state, counts, error, clock.GetUtcNow(), CancellationToken.None); }
            catch (Exception e) when (StoreOutages.Find(e) is not null) { /* the row stays PENDING: this node's next start marks it FAILED */ }
            _running.TryRemove(job.Id, out _);
        }
    }

    /// <summary>Writes the latest counts while the job runs; one write at a time, counts that came meanwhile replace each other.</summary>
    async Task WriteProgressAsync(string id, ChannelReader<BulkCounts> counts)
    {
        await foreach (var n in counts.ReadAllAsync())
        {
            try { await store.UpdateAsync(id, TerminationJobStates.Pending, n, null, null, CancellationToken.None); }
            catch (Exception e) when (StoreOutages.Find(e) is not null) { }   // progress only: the final write says it all
        }
    }

    /// <summary>The terminator's progress, kept as the latest counts only (a full channel drops the older).</summary>
    sealed class LatestCounts : IProgress<BulkCounts>
    {
        readonly Channel<BulkCounts> _channel = Channel.CreateBounded<BulkCounts>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        readonly Lock _gate = new();
        BulkCounts _last;

        public ChannelReader<BulkCounts> Reader => _channel.Reader;
        public BulkCounts Last { get { lock (_gate) return _last; } }

        public void Report(BulkCounts value)
        {
            lock (_gate) _last = value;
            _channel.Writer.TryWrite(value);
        }

        public void Complete() => _channel.Writer.TryComplete();
    }
}
