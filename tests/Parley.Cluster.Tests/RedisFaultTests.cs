using System.Diagnostics;
using Parley.Cluster.Tests.Engines;
using Xunit.Abstractions;
using static Parley.Cluster.Tests.FaultSteps;

namespace Parley.Cluster.Tests;

/// <summary>
/// Redis (the backplane) goes away mid-conversation and comes back (issue 11 item 4): every node keeps serving its own
/// sockets, the store still refuses what an end on another node forbids, health says degraded, pushes resume.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class RedisFaultTests(PrivateEngines engines, ITestOutputHelper output)
{
    [EngineFaultFact]
    public async Task RedisDown_NodesServeTheirOwnSockets_TheStoreStillRefuses_AndPushesResumeWhenItReturns()
    {
        var starting = Stopwatch.StartNew();
        await using var cluster = await Cluster.StartAsync(await engines.ClusterOptionsAsync());
        output.WriteLine($"cluster (2 nodes, fresh database) started in {starting.ElapsedMilliseconds} ms");
        var (a, b) = (cluster.A, cluster.B);
        using var botA = await PlatformClient.ConnectAsync(a.BaseAddress);
        using var botB = await PlatformClient.ConnectAsync(b.BaseAddress);

        // Two guests on A, each in a conversation the bot started through B: B → Redis → A works before the fault.
        await using var ending = await GuestOnAsync(a);
        await ending.ConfigureAsync();
        var endingConversation = (string)(await botB.StartConversationAsync(await ending.SessionIdAsync(), "hello from B"))["conversationId"]!;
        await ending.NextAsync(Frames.IsOutboundText);
        await using var staying = await GuestOnAsync(a);
        await staying.ConfigureAsync();
        var stayingConversation = (string)(await botB.StartConversationAsync(await staying.SessionIdAsync(), "hello from B"))["conversationId"]!;
        await staying.NextAsync(Frames.IsOutboundText);

        await engines.Redis.KillAsync();
        var degraded = await Task.WhenAll(
            WaitForHealthAsync(a, "/healthz", 200, "Degraded"), WaitForHealthAsync(b, "/healthz", 200, "Degraded"));
        output.WriteLine($"Redis killed: /healthz Degraded after {degraded.Max().TotalMilliseconds:0} ms (A {degraded[0].TotalMilliseconds:0}, B {degraded[1].TotalMilliseconds:0})");

        // A keeps serving its own sockets: the bot's message through A reaches the guest on A, the guest's send is stored.
        await BotSendAsync(botA, stayingConversation, "through A, Redis down");
        Assert.Equal("through A, Redis down", Text(await staying.NextAsync(Frames.IsOutboundText)));
        var stored = await staying.SendTextAsync("still here");
        Assert.True(Frames.IsInboundEcho(stored), $"not acknowledged: {stored}");

        // B ends the conversation of a guest on A. B cannot reach A's socket: it answers within its bounded wait, counting none.
        var clock = Stopwatch.StartNew();
        var (ended, _) = await botB.PostAsync($"/api/v2/conversations/{endingConversation}/disconnect");
        var endTook = clock.Elapsed;
        Assert.Equal(202, (int)ended.StatusCode);
        Assert.Equal("0", ended.Headers.GetValues("Parley-Sockets-Notified").Single());
        Assert.True(endTook < TimeSpan.FromSeconds(10), $"the termination took {endTook}");
        output.WriteLine($"termination on B with Redis down answered in {endTook.TotalMilliseconds:0} ms, Parley-Sockets-Notified: 0");

        // The guest on A had no push; its next send is refused by the store, which B's end committed to.
        var (refused, before) = await SendCollectingAsync(ending, "are you still there?");
        Assert.DoesNotContain(before, Frames.IsDisconnect);
        Assert.Equal("string", (string?)refused["class"]);
        Assert.Equal(409, (int)refused["code"]!);
        Assert.Equal("Session is read-only, no new messages allowed", (string?)refused["body"]);

        // A message through B while Redis is down is stored (the guest will find it in its history).
        var missedId = await BotSendAsync(botB, stayingConversation, "through B, Redis down");

        foreach (var node in new[] { a, b })
        {
            var health = await HealthAsync(node, "/healthz");
            Assert.Equal((200, "Degraded"), (health.Code, health.Status));
        }

        // Redis returns: both nodes healthy again by themselves, and pushes from B reach the guest on A again.
        await engines.Redis.StartServerAsync();
        var healthy = await Task.WhenAll(
            WaitForHealthAsync(a, "/healthz", 200, "Healthy"), WaitForHealthAsync(b, "/healthz", 200, "Healthy"));
        output.WriteLine($"Redis restarted: /healthz Healthy after {healthy.Max().TotalMilliseconds:0} ms");
        clock.Restart();
        await BotSendAsync(botB, stayingConversation, "through B, Redis back");
        await staying.NextAsync(f => Frames.IsOutboundText(f) && Text(f) == "through B, Redis back", TimeSpan.FromSeconds(10));
        output.WriteLine($"first push from B after Redis returned reached A's guest in {clock.Elapsed.TotalMilliseconds:0} ms");

        // A guest that reconnects (here to B) catches up from the store: what it missed while Redis was down is there.
        await using var reconnected = await GuestOnAsync(b, staying.Token);
        Assert.False((bool)(await reconnected.ConfigureAsync())["body"]!["newSession"]!);
        var history = await HistoryAsync(b.BaseAddress, await reconnected.JwtAsync());
        Assert.Contains(history, m => m.Id == missedId && m.Text == "through B, Redis down");
        Assert.Equal(["hello from B", "through A, Redis down", "still here", "through B, Redis down", "through B, Redis back"],
            history.Select(m => m.Text).Reverse());   // the history is newest first
    }
}
