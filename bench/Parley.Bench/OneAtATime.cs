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

    static double Ms(long fromTicks, long toTicks) => (toTicks - fromTicks) * 1000.0 / Stopwatch.Frequency;
}
