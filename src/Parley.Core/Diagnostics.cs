using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Parley.Core;

/// <summary>
/// The one <see cref="Meter"/> and <see cref="ActivitySource"/> named <c>Parley</c> (BCL types, nothing to install): the
/// domain and the adapters record on them directly; the server's instruments and its exporters live in
/// Parley.Server's ParleyTelemetry (docs/observability.md lists every instrument and span).
/// </summary>
public static class ParleyDiagnostics
{
    public const string Name = "Parley";

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    /// <summary>Seconds, from half a millisecond (a grouped SQLite commit) to ten seconds (a store in trouble).</summary>
    public static readonly IReadOnlyList<double> SecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>A conversation commit as its writer waits for it: queued behind the group, applied, durable.</summary>
    public static readonly Histogram<double> CommitDuration = Meter.CreateHistogram("parley.store.commit.duration", "s",
        "How long a conversation commit took, from the call to its durable answer (group wait included)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    /// <summary>Writes made durable by one transaction (SQLite's group commit; PostgreSQL commits each write alone).</summary>
    public static readonly Histogram<int> CommitGroupSize = Meter.CreateHistogram("parley.store.commit.group_size", "{write}",
        "Writes made durable together by one store transaction (group commit)",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });

    /// <summary>Starts a child of the current span only when someone listens (null otherwise: nothing allocated).</summary>
    public static Activity? Start(string name, ActivityKind kind = ActivityKind.Internal) => Source.StartActivity(name, kind);

    /// <summary>
    /// A span that outlives the synchronous call which started it (it ends when <paramref name="work"/> completes): the
    /// caller's current span is put back at once, so nothing started later on this thread becomes its child by mistake.
    /// </summary>
    public static Task<int> EndWhenDone(Activity? span, Activity? previous, Task<int> work, string countTag)
    {
        if (span is null) return work;
        Activity.Current = previous;
        if (work.IsCompleted) Finish(work, span, countTag);
        else work.ContinueWith((t, s) => Finish(t, (Activity)s!, countTag), span, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return work;
    }

    static void Finish(Task<int> work, Activity span, string countTag)
    {
        if (work.IsCompletedSuccessfully) span.SetTag(countTag, work.Result);
        else span.SetStatus(ActivityStatusCode.Error, work.Exception?.GetBaseException().GetType().Name);
        span.Stop();
    }
}
