using System.Diagnostics;

namespace Parley.Bench;

/// <summary>
/// Calls made one at a time, one per guest: from each call's start, the time until the call returned (its HTTP answer,
/// checked) and until the frame it causes reached that guest's socket. The second is the guarantee being measured.
/// </summary>
public static class OneAtATime
{
    public static async Task<(Percentiles ToFrame, Percentiles ToAnswer)> TimeAsync(IEnumerable<BenchConnection> guests,
        Func<BenchConnection, Task> call, Func<Frame, bool> caused, TimeSpan timeout)
    {
        var toFrame = new List<double>();
        var toAnswer = new List<double>();
        foreach (var g in guests)
        {
            var start = Stopwatch.GetTimestamp();
            await call(g);
            var answeredAt = Stopwatch.GetTimestamp();
            var frame = await g.NextAsync(caused, timeout);
            toFrame.Add(Ms(start, frame.ReceivedTicks));
            toAnswer.Add(Ms(start, answeredAt));
        }
        return (Percentiles.Of(toFrame), Percentiles.Of(toAnswer));
    }

    /// <summary>
    /// The same calls for <paramref name="seconds"/>, round robin over <paramref name="guests"/>, not measured: a path's
    /// first seconds in a process are its JIT's (tier-0 code, then the tier-1 compiles on a core the calls need), which a
    /// running server has behind it. <paramref name="after"/> runs after each call's frame (a termination starts the
    /// guest's next conversation there, so the next round has one to end).
    /// </summary>
    public static async Task WarmAsync(IReadOnlyList<BenchConnection> guests, Func<BenchConnection, Task> call, Func<Frame, bool> caused,
        double seconds, TimeSpan timeout, Func<BenchConnection, Task>? after = null)
    {
        var clock = Stopwatch.StartNew();
        for (var i = 0; clock.Elapsed.TotalSeconds < seconds && guests.Count > 0; i++)
        {
            var g = guests[i % guests.Count];
            await call(g);
            await g.NextAsync(caused, timeout);
            if (after is not null) await after(g);
        }
    }

    static double Ms(long fromTicks, long toTicks) => (toTicks - fromTicks) * 1000.0 / Stopwatch.Frequency;
}
