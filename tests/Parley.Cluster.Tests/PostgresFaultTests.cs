using System.Diagnostics;
using Parley.Cluster.Tests.Engines;
using Xunit.Abstractions;
using static Parley.Cluster.Tests.FaultSteps;

namespace Parley.Cluster.Tests;

/// <summary>
/// PostgreSQL (the store) goes away and comes back under a running node (issue 11 item 4): writes answer 503 in each
/// protocol's form, nothing is acknowledged that was not stored, and the node recovers by itself.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class PostgresFaultTests(PrivateEngines engines, ITestOutputHelper output)
{
    // One node: the store is what fails here, so no backplane is involved.
    static readonly Dictionary<string, string> OneNode = new() { ["Parley__Backplane__Provider"] = "Local" };

    [EngineFaultFact]
    public async Task PostgresDown_WritesAnswer503_NothingUnstoredIsAcknowledged_AndTheNodeRecoversByItself()
    {
        var starting = Stopwatch.StartNew();
        await using var cluster = await Cluster.StartAsync(await engines.ClusterOptionsAsync(nodes: ["a"], environment: OneNode));
        output.WriteLine($"cluster (1 node, fresh database) started in {starting.ElapsedMilliseconds} ms");
        var node = cluster.A;
        using var bot = await PlatformClient.ConnectAsync(node.BaseAddress);
        await using var guest = await GuestOnAsync(node);
        await guest.ConfigureAsync();
        var conversationId = (string)(await bot.StartConversationAsync(await guest.SessionIdAsync(), "hello"))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);
        await BotCommunicationAsync(bot, conversationId);   // what the bot reads before it writes, known before the outage
        var before = await guest.SendTextAsync("before the outage");
        Assert.True(Frames.IsInboundEcho(before));

        // A crash of the database server: every connection cut at once.
        await engines.Postgres.StopAsync(immediate: true);
        var down = Stopwatch.StartNew();

        // Platform API write: 503 in the platform's error form, naming nothing of the store's connection.
        var (refused, error) = await BotSendRawAsync(bot, conversationId, "while the store is down");
        Assert.Equal(503, (int)refused.StatusCode);
        Assert.Equal(503, (int)error!["status"]!);
        Assert.Equal("service.unavailable", (string?)error["code"]);
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
        Assert.DoesNotContain("Password", error.ToJsonString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(engines.Postgres.Port.ToString(), error.ToJsonString());
        output.WriteLine($"Platform API write with PostgreSQL down: {(int)refused.StatusCode} {error.ToJsonString()}");

        // The guest's send: an error frame for it, no acknowledgement (no echo), and the socket stays open.
        var (reply, framesBefore) = await SendCollectingAsync(guest, "sent while the store is down");
        Assert.Equal("string", (string?)reply["class"]);
        Assert.Equal(503, (int)reply["code"]!);
        Assert.DoesNotContain(framesBefore, Frames.IsInboundEcho);
        output.WriteLine($"guest send with PostgreSQL down: {reply.ToJsonString()}");

        // Not ready (a load balancer stops sending it work); still alive.
        await WaitForHealthAsync(node, "/readyz", 503, null, TimeSpan.FromSeconds(10));
        Assert.Equal(200, (await HealthAsync(node, "/healthz")).Code);

        // PostgreSQL returns: the same process becomes ready again by itself.
        await engines.Postgres.StartAsync();
        var outage = down.Elapsed;
        var recovered = await WaitForHealthAsync(node, "/readyz", 200, null);
        output.WriteLine($"PostgreSQL down for {outage.TotalMilliseconds:0} ms; /readyz 200 again {recovered.TotalMilliseconds:0} ms after it was back");
        Assert.False(node.HasExited);

        // The guest retries on the same socket: stored once. The bot writes again too.
        var retried = await guest.SendTextAsync("sent while the store is down");
        Assert.True(Frames.IsInboundEcho(retried), $"the retry was not acknowledged: {retried}");
        await BotSendAsync(bot, conversationId, "after the outage");
        Assert.Equal("after the outage", Text(await guest.NextAsync(Frames.IsOutboundText)));

        // Nothing acknowledged is missing, nothing refused was stored, the retry is there once.
        var history = (await HistoryAsync(node.BaseAddress, await guest.JwtAsync())).Select(m => m.Text).Reverse();
        Assert.Equal(["hello", "before the outage", "sent while the store is down", "after the outage"], history);
    }
}
