using System.Diagnostics;

namespace Parley.Bench;

/// <summary>The steady load every target gets: each active guest sends, waits for its echo, the bot replies, it waits for that.</summary>
public static class ClosedLoop
{
    /// <summary>
    /// Runs the loop for <paramref name="seconds"/>, each guest's bot reply sent through <paramref name="botFor"/>'s target
    /// (another node's, in a cluster); adds each round trip (ms) to <paramref name="rtts"/>. Answers the seconds it took.
    /// </summary>
    public static async Task<double> RunAsync(IReadOnlyList<BenchConnection> active, Func<BenchConnection, Target> botFor, double seconds,
        TimeSpan timeout, List<double> rtts)
    {
        var clock = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        await Task.WhenAll(active.Select(async g =>
        {
            var local = new List<double>();
            var bot = botFor(g);
            var n = 0;
            while (clock.Elapsed < deadline)
            {
                var start = Stopwatch.GetTimestamp();
                var t = await g.SendTextAsync($"guest message {n}");
                await g.NextAsync(f => f.TracingId == t, timeout);
                await bot.BotReplyAsync(g, $"bot reply {n++}");
                var reply = await g.NextAsync(f => f.Direction == "Outbound" && f.TracingId is null, timeout);
                local.Add((reply.ReceivedTicks - start) * 1000.0 / Stopwatch.Frequency);
            }
            lock (rtts) rtts.AddRange(local);
        }));
        return clock.Elapsed.TotalSeconds;
    }
}
