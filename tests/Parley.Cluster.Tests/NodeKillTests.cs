using System.Diagnostics;
using Parley.Cluster.Tests.Engines;
using Xunit.Abstractions;
using static Parley.Cluster.Tests.FaultSteps;

namespace Parley.Cluster.Tests;

/// <summary>A node killed with SIGKILL mid-conversation (issue 11 item 4): its guests resume on another node by token.</summary>
[Collection(FaultCollection.Name)]
public sealed class NodeKillTests(PrivateEngines engines, ITestOutputHelper output)
{
    const int Sends = 200;

    [EngineFaultFact]
    public async Task NodeKilled_ItsGuestResumesOnAnotherNodeByToken_WithEveryAcknowledgedMessage_AndCarriesOn()
    {
        var starting = Stopwatch.StartNew();
        await using var cluster = await Cluster.StartAsync(await engines.ClusterOptionsAsync());
        output.WriteLine($"cluster (2 nodes, fresh database) started in {starting.ElapsedMilliseconds} ms");
        var (a, b) = (cluster.A, cluster.B);
        using var botB = await PlatformClient.ConnectAsync(b.BaseAddress);

        await using var guest = await GuestOnAsync(a);
        await guest.ConfigureAsync();
        var conversationId = (string)(await botB.StartConversationAsync(await guest.SessionIdAsync(), "hello from B"))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);

        // The guest pipelines sends; A is killed once some are acknowledged, with others still in flight.
        var acknowledged = new Dictionary<string, string>();
        for (var i = 0; i < Sends; i++) await guest.SendTextNoWaitAsync($"message {i}");
        while (acknowledged.Count < 20)
        {
            var echo = await guest.NextAsync(Frames.IsInboundEcho);
            acknowledged[(string)echo["body"]!["id"]!] = Text(echo)!;
        }
        a.Kill();
        var killed = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                var echo = await guest.NextAsync(Frames.IsInboundEcho, TimeSpan.FromSeconds(5));
                acknowledged[(string)echo["body"]!["id"]!] = Text(echo)!;
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException) { /* the socket died with the node */ }
        Assert.NotEqual(0, await a.ExitCodeAsync(TimeSpan.FromSeconds(10)));

        // The guest reconnects to B with its token: the same session, and every message it was told was stored.
        await using var resumed = await GuestOnAsync(b, guest.Token);
        Assert.False((bool)(await resumed.ConfigureAsync())["body"]!["newSession"]!);
        output.WriteLine($"node A killed with {acknowledged.Count} of {Sends} messages acknowledged; the guest resumed on B {killed.ElapsedMilliseconds} ms later");
        var history = await HistoryAsync(b.BaseAddress, await resumed.JwtAsync());
        Assert.Empty(acknowledged.Keys.Except(history.Select(m => m.Id)));
        Assert.Contains(history, m => m.Text == "hello from B");
        // What was stored is in the order it was sent: nothing reordered, nothing doubled.
        var sent = history.Select(m => m.Text).Reverse().Where(t => t!.StartsWith("message ", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(0, sent.Count).Select(i => $"message {i}"), sent);

        // The conversation carries on through B: the guest's message is stored and the bot on B reads it, the bot answers.
        var echoOnB = await resumed.SendTextAsync("back, on another node");
        Assert.True(Frames.IsInboundEcho(echoOnB), $"not acknowledged: {echoOnB}");
        var (read, message) = await botB.GetAsync($"/api/v2/conversations/messages/{conversationId}/messages/{echoOnB["body"]!["id"]}");
        Assert.Equal(200, (int)read.StatusCode);
        Assert.Equal("back, on another node", (string?)message!["textBody"]);
        await BotSendAsync(botB, conversationId, "welcome back");
        Assert.Equal("welcome back", Text(await resumed.NextAsync(Frames.IsOutboundText)));
    }
}
