using System.Diagnostics;

namespace Parley.E2E.Tests;

/// <summary>
/// Records the spans of one trace, as an exporter would see them: an <see cref="ActivityListener"/> on Parley's source and
/// ASP.NET Core's, keeping only the stopped spans of the trace this recorder made up. A request sent with
/// <see cref="TraceParent"/> starts that trace on the server; spans of other tests running meanwhile are never kept.
/// </summary>
public sealed class SpanRecorder : IDisposable
{
    readonly ActivityListener _listener;
    readonly List<Activity> _stopped = [];
    readonly SemaphoreSlim _added = new(0);

    public ActivityTraceId TraceId { get; } = ActivityTraceId.CreateRandom();

    /// <summary>A W3C <c>traceparent</c> header value: the client's span in this trace, sampled.</summary>
    public string TraceParent => $"00-{TraceId}-{ActivitySpanId.CreateRandom()}-01";

    public SpanRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Parley" or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.TraceId != TraceId) return;
                lock (_stopped) _stopped.Add(activity);
                _added.Release();
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>The first stopped span of the trace that matches, waiting for it up to <paramref name="timeout"/>.</summary>
    public async Task<Activity> WaitForAsync(Func<Activity, bool> match, string what, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(10);
        while (true)
        {
            lock (_stopped)
                if (_stopped.FirstOrDefault(match) is { } found) return found;
            var left = limit - deadline.Elapsed;
            if (left <= TimeSpan.Zero || !await _added.WaitAsync(left))
                throw new TimeoutException($"No span {what} in trace {TraceId} within {limit.TotalSeconds} s; seen: " +
                    string.Join(", ", Spans.Select(s => s.OperationName)));
        }
    }

    public Task<Activity> WaitForAsync(string operationName, TimeSpan? timeout = null) =>
        WaitForAsync(a => a.OperationName == operationName, operationName, timeout);

    public IReadOnlyList<Activity> Spans
    {
        get { lock (_stopped) return [.. _stopped]; }
    }

    public void Dispose() => _listener.Dispose();
}
