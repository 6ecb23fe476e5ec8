using System.Diagnostics;
using Parley.E2E.Tests;
using Xunit.Abstractions;

namespace Parley.Engines.Tests;

/// <summary>
/// Cross-node termination latency over the Redis backplane: the bot's disconnect call on node B until the Disconnect
/// frame is read on a guest socket held by node A, beside the same on one node (guest and call both on B). Prints p50/p99;
/// PARLEY_TERMINATIONS sets the count (30 by default, so the suite stays fast; docs/fanout.md quotes a run of 1000).
/// </summary>
public sealed class RedisLatencyTests(ITestOutputHelper output)
{
    [EngineFact(RedisNodes.Variable)]
    public async Task CrossNodeTermination_Latency()
    {
        var n = int.TryParse(Environment.GetEnvironmentVariable("PARLEY_TERMINATIONS"), out var count) && count > 0 ? count : 30;
        // Thousands of new guest sessions from 127.0.0.1 within a minute: this deployment's own new-session limits.
        await using var nodes = await RedisNodes.StartAsync(configure: o => o with
        {
            NewSessionsPerAddressPerMinute = 1_000_000, NewSessionsPerDeploymentPerMinute = 1_000_000,
        });
        using var bot = await nodes[1].PlatformAsync();
        var cross = new List<double>(n);
        var crossAnswer = new List<double>(n);
        var local = new List<double>(n);
        for (var i = 0; i < n; i++)
        {
            cross.Add(await TerminateAsync(nodes[0], bot, crossAnswer));
            local.Add(await TerminateAsync(nodes[1], bot, null));
        }
        output.WriteLine($"terminations: {n} per kind");
        output.WriteLine($"cross-node (call on B, guest on A) to Disconnect read: {Percentiles(cross)}");
        output.WriteLine($"cross-node to B's HTTP answer:                       {Percentiles(crossAnswer)}");
        output.WriteLine($"one node (call and guest on B) to Disconnect read:   {Percentiles(local)}");
        Console.WriteLine($"redis termination latency (n={n}): cross-node {Percentiles(cross)}; answer {Percentiles(crossAnswer)}; one node {Percentiles(local)}");
    }

    /// <summary>One conversation with a fresh guest on <paramref name="guestNode"/>, ended by the bot; ms to the guest's Disconnect.</summary>
    static async Task<double> TerminateAsync(ParleyServer guestNode, PlatformClient bot, List<double>? answers)
    {
        await using var guest = await guestNode.GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (await bot.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);
        var clock = Stopwatch.StartNew();
        var call = bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        await guest.NextAsync(Frames.IsDisconnect);
        var toFrame = clock.Elapsed.TotalMilliseconds;
        var response = await call;
        answers?.Add(clock.Elapsed.TotalMilliseconds);
        Assert.Equal("1", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        return toFrame;
    }

    static string Percentiles(List<double> ms)
    {
        var sorted = ms.Order().ToArray();
        double At(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return $"p50 {At(0.50):0.00} ms, p99 {At(0.99):0.00} ms, max {sorted[^1]:0.00} ms";
    }
}
