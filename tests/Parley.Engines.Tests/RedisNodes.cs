using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Parley.Backplane.Redis;
using Parley.E2E.Tests;
using Parley.Server;

namespace Parley.Engines.Tests;

/// <summary>
/// Nodes in this process on one Redis backplane: real Kestrel hosts on loopback ports sharing one SQLite data folder (two
/// stores on one file, as the storage contract suite runs them), each with its own node id. Every cluster has a prefix
/// of its own, so clusters of tests running at once, or another suite's, never hear one another.
/// </summary>
public sealed class RedisNodes : IAsyncDisposable
{
    public const string Variable = "ConnectionStrings__Redis";
    readonly string _dataDir = Path.Combine(Path.GetTempPath(), "parley-nodes-" + Guid.NewGuid().ToString("N"));
    readonly List<ParleyServer> _nodes = [];

    public string Prefix { get; } = $"parley-test:{Guid.NewGuid():N}:";
    public string Redis { get; }
    public ParleyServer this[int i] => _nodes[i];

    RedisNodes(string redis) => Redis = redis;

    /// <param name="redis">A StackExchange.Redis configuration string; by default the one scripts/start-services exports.</param>
    /// <param name="waitForJoin">Return only once every node joined the backplane (false: Redis may be away).</param>
    public static async Task<RedisNodes> StartAsync(int count = 2, string? redis = null, Func<ParleyOptions, ParleyOptions>? configure = null,
        bool waitForJoin = true)
    {
        var nodes = new RedisNodes(redis ?? EngineFactAttribute.Require(Variable));
        try
        {
            for (var i = 0; i < count; i++)
            {
                var id = $"node-{(char)('a' + i)}";
                nodes._nodes.Add(await ParleyServer.StartAsync(o =>
                {
                    var node = o with
                    {
                        // One SQLite file shared on purpose (one store for the cluster, as the storage contract suite runs
                        // it): the data folder's lock, which keeps a second process off it, is left off for these nodes.
                        DataDir = nodes._dataDir, LockDataFolder = false, NodeId = id, BackplaneProvider = BackplaneProvider.Redis,
                        RedisConnectionString = nodes.Redis, RedisPrefix = nodes.Prefix,
                    };
                    return configure is null ? node : configure(node);
                }));
            }
            if (waitForJoin) await nodes.JoinedAsync();
        }
        catch
        {
            await nodes.DisposeAsync();
            throw;
        }
        return nodes;
    }

    public RedisBackplane Backplane(int node) => _nodes[node].Services.GetRequiredService<RedisBackplane>();

    /// <summary>Until every node is connected and sees every other as a live member (they join before listening).</summary>
    public Task JoinedAsync(TimeSpan? timeout = null) => Until(() => _nodes.All(n =>
    {
        var b = n.Services.GetRequiredService<RedisBackplane>();
        return b.IsConnected && _nodes.All(o => b.Members.Contains(o.Services.GetRequiredService<ParleyOptions>().NodeId));
    }), timeout ?? TimeSpan.FromSeconds(20), "every node joined the backplane");

    public async Task<HealthReport> HealthAsync(int node) =>
        await _nodes[node].Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();

    /// <summary>Polls a condition of state that has no event to await (a reconnect inside the Redis client), with a deadline.</summary>
    public static async Task Until(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > timeout) throw new TimeoutException($"Not within {timeout.TotalSeconds} s: {what}.");
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
    }
}

static class PlatformExtensions
{
    /// <summary>A bot message into the session's live conversation (agentless, useExistingActiveConversation).</summary>
    public static async Task<string> SendIntoLiveAsync(this PlatformClient platform, string sessionId, string text)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = ParleyServer.DeploymentId, toAddress = sessionId, toAddressMessengerType = "webmessaging", textBody = text,
            useExistingActiveConversation = true,
        });
        Assert.Equal(200, (int)response.StatusCode);
        return body!["conversationId"]!.GetValue<string>();
    }

    public static async Task<int> SocketsOfAsync(this PlatformClient platform, string sessionId)
    {
        var (_, body) = await platform.GetAsync("/api/v2/parley/webmessaging/sessions");
        return (int)body!["entities"]!.AsArray().Single(s => (string?)s!["id"] == sessionId)!["sockets"]!;
    }

    public static bool IsText(JsonObject f, string text) => Frames.IsOutboundText(f) && (string?)f["body"]!["text"] == text;
}
