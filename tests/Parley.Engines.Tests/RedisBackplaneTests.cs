using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Parley.E2E.Tests;
using StackExchange.Redis;

namespace Parley.Engines.Tests;

/// <summary>
/// The Redis backplane (issue 11 item 2) between two real nodes in this process, on the Redis scripts/start-services
/// runs: a guest's sockets on node A, the bot's calls on node B. docs/fanout.md "Redis backplane".
/// </summary>
public sealed class RedisBackplaneTests
{
    const string Redis = RedisNodes.Variable;
    /// <summary>A private Redis's nodes notice it gone within a second (StackExchange.Redis's default is 5 s).</summary>
    const string QuickTimeouts = ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000";

    [EngineFact(Redis)]
    public async Task BotMessageAndTermination_OnB_ReachTheGuestOnA_AndTheAnswerCountsSocketsOnEveryNode()
    {
        await using var nodes = await RedisNodes.StartAsync();
        using var bot = await nodes[1].PlatformAsync();
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        await using var tab = await nodes[1].GuestAsync(guest.Token);   // the same session in a tab connected to B
        await tab.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        Assert.Equal(2, await bot.SocketsOfAsync(sessionId));

        var conversationId = (await bot.StartConversationAsync(sessionId, "Hello from B"))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(f => PlatformExtensions.IsText(f, "Hello from B"));
        await tab.NextAsync(f => PlatformExtensions.IsText(f, "Hello from B"));

        var response = await bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        // Both sockets confirmed the Disconnect before B answered: A's through Redis, B's directly.
        Assert.Equal("2", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        await guest.NextAsync(Frames.IsDisconnect);
        await tab.NextAsync(Frames.IsDisconnect);
        using var onA = await nodes[0].PlatformAsync();
        var (_, audit) = await onA.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        Assert.Equal(2, (int)audit!["entities"]!.AsArray().Single()!["socketsNotified"]!);
        var reply = await guest.SendTextAsync("still there?");   // A refuses it: the store says B ended it
        Assert.Equal("Session is read-only, no new messages allowed", (string?)reply["body"]);
    }

    /// <summary>
    /// A third node the test plays over Redis (a live member holding two sockets of the session) answers the Disconnect
    /// only when the test lets it: B's answer waits for it and counts its sockets, while A's guest has the frame already.
    /// </summary>
    [EngineFact(Redis)]
    public async Task Termination_WaitsForEveryLiveNode_AndCountsTheSocketsItReports()
    {
        await using var nodes = await RedisNodes.StartAsync();
        await using var played = await PlayedNode.JoinAsync(nodes, "node-played", member: true, sockets: 2);
        using var bot = await nodes[1].PlatformAsync();
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        Assert.Equal(3, await bot.SocketsOfAsync(sessionId));   // the listing asks every node too
        var conversationId = (await bot.StartConversationAsync(sessionId))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);

        var termination = bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        await played.EndedReceived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await guest.NextAsync(Frames.IsDisconnect);   // A answered already...
        Assert.False(termination.IsCompleted);        // ...but B waits for the played node
        played.Release.SetResult();
        var response = await termination.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("3", response.Headers.GetValues("Parley-Sockets-Notified").Single());
    }

    /// <summary>
    /// A subscriber that is no live member (a node whose membership key expired: hung, or its machine gone without
    /// closing the connection) never answers; it is not waited for once every live node answered.
    /// </summary>
    [EngineFact(Redis)]
    public async Task Termination_DoesNotWaitForASubscriberThatIsNoLiveMember()
    {
        // A long deadline, so that an answer well before it shows the wait was not a timeout.
        await using var nodes = await RedisNodes.StartAsync(configure: o => o with { NotifyTimeout = TimeSpan.FromSeconds(20) });
        await using var zombie = await PlayedNode.JoinAsync(nodes, "node-gone", member: false, sockets: 5);
        using var bot = await nodes[1].PlatformAsync();
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var conversationId = (await bot.StartConversationAsync(sessionId))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);

        var clock = Stopwatch.StartNew();
        var response = await bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"answered after {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(zombie.EndedReceived.Task.IsCompleted, "the zombie subscriber received the delivery (it was counted as a receiver)");
        Assert.Equal("1", response.Headers.GetValues("Parley-Sockets-Notified").Single());
    }

    [EngineFact(Redis)]
    public async Task ManyMessagesThenTheEnd_OnB_ArriveOnA_InTheOrderTheyWereCommitted()
    {
        await using var nodes = await RedisNodes.StartAsync();
        using var bot = await nodes[1].PlatformAsync();
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var conversationId = (await bot.StartConversationAsync(sessionId, "m0"))["conversationId"]!.GetValue<string>();
        const int messages = 40;
        for (var i = 1; i < messages; i++) Assert.Equal(conversationId, await bot.SendIntoLiveAsync(sessionId, $"m{i}"));
        var response = await bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        Assert.Equal("1", response.Headers.GetValues("Parley-Sockets-Notified").Single());

        for (var i = 0; i < messages; i++)
        {
            var frame = await guest.NextAsync(f => Frames.IsOutboundText(f) || Frames.IsDisconnect(f));
            Assert.Equal($"m{i}", (string?)frame["body"]!["text"]);
        }
        await guest.NextAsync(Frames.IsDisconnect);
    }

    [EngineFact(Redis)]
    public async Task CloseAllConnections_AndGuestClear_OnB_CloseTheSessionsSocketsOnA()
    {
        await using var nodes = await RedisNodes.StartAsync();
        using var bot = await nodes[1].PlatformAsync();
        await using var onA = await nodes[0].GuestAsync();
        await onA.ConfigureAsync();
        await using var onB = await nodes[1].GuestAsync(onA.Token);
        await onB.ConfigureAsync();

        var t = onB.NextTracingId();
        await onB.RequestAsync(new { action = "closeSession", token = onB.Token, closeAllConnections = true, tracingId = t }, t);
        await onA.NextAsync(f => (string?)f["class"] == "ConnectionClosedEvent");
        await onA.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(10));

        await using var again = await nodes[0].GuestAsync(onA.Token);
        await again.ConfigureAsync();
        var sessionId = await again.SessionIdAsync();
        await bot.StartConversationAsync(sessionId);
        await again.NextAsync(Frames.IsOutboundText);
        await using var clearing = await nodes[1].GuestAsync(onA.Token);
        await clearing.ConfigureAsync();
        t = clearing.NextTracingId();
        await clearing.SendAsync(new
        {
            action = "onMessage", token = clearing.Token, tracingId = t,
            message = new { type = "Event", events = new[] { new { eventType = "Presence", presence = new { type = "Clear" } } } },
        });
        await again.NextAsync(f => (string?)f["class"] == "SessionClearedEvent");
        await again.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await clearing.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>A channel held on A hears B's commit; B's own channel hears it too; each exactly once.</summary>
    [EngineFact(Redis)]
    public async Task ANotificationChannelOnA_ReceivesTheEndCommittedOnB_ExactlyOnce_AndSoDoesOneOnB()
    {
        await using var nodes = await RedisNodes.StartAsync();
        using var bot = await nodes[1].PlatformAsync();
        using var listenerOnA = await nodes[0].PlatformAsync();
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (await bot.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
        var topic = $"v2.detail.events.conversation.{conversationId}.customer.end";
        using var channelOnA = await OpenChannelAsync(listenerOnA, topic);
        using var channelOnB = await OpenChannelAsync(bot, topic);

        var response = await bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        foreach (var channel in new[] { channelOnA, channelOnB })
        {
            var frame = await ReceiveAsync(channel);
            Assert.Equal(topic, (string?)frame["topicName"]);
            Assert.Equal(conversationId, (string?)frame["eventBody"]!["conversationId"]);
            // A sentinel: the next frame is the pong, so the end did not arrive twice.
            await channel.SendAsync("{\"message\":\"ping\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            Assert.Equal("pong", (string?)(await ReceiveAsync(channel))["eventBody"]!["message"]);
        }
    }

    static async Task<ClientWebSocket> OpenChannelAsync(PlatformClient platform, string topic)
    {
        var (_, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        var channelId = channel!["id"]!.GetValue<string>();
        var (subscribed, _) = await platform.PostAsync($"/api/v2/notifications/channels/{channelId}/subscriptions", new[] { new { id = topic } });
        Assert.Equal(HttpStatusCode.OK, subscribed.StatusCode);
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri(channel["connectUri"]!.GetValue<string>()), CancellationToken.None);
        await socket.SendAsync("{\"message\":\"ping\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("pong", (string?)(await ReceiveAsync(socket))["eventBody"]!["message"]);   // connected: events reach it from now on
        return socket;
    }

    static async Task<JsonObject> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new byte[16384];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var r = await socket.ReceiveAsync(buffer, timeout.Token);
        return JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, r.Count))!.AsObject();
    }

    /// <summary>Redis stopped: each node serves its own sockets within the deadline and says Degraded; restarted: pushes cross again.</summary>
    [EngineFact(Redis)]
    public async Task RedisDown_NodesServeTheirOwnSockets_AndReportDegraded_ThenPushesResumeWhenItReturns()
    {
        await using var redis = await PrivateRedis.StartAsync();
        await using var nodes = await RedisNodes.StartAsync(redis: redis.ConnectionString + QuickTimeouts);
        using var botOnA = await nodes[0].PlatformAsync();
        using var botOnB = await nodes[1].PlatformAsync();
        Assert.Equal("Healthy", (await nodes.HealthAsync(0)).Status.ToString());

        await redis.KillAsync();
        await RedisNodes.Until(() => !nodes.Backplane(0).IsConnected && !nodes.Backplane(1).IsConnected, TimeSpan.FromSeconds(20), "both nodes saw Redis go");
        var health = await nodes.HealthAsync(0);
        Assert.Equal("Degraded", health.Status.ToString());
        Assert.Contains("unreachable", health.Entries["redis-backplane"].Description);

        // This node's own guest: served and counted, at once.
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var conversationId = (await botOnA.StartConversationAsync(sessionId, "local while Redis is down"))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(f => PlatformExtensions.IsText(f, "local while Redis is down"));
        var clock = Stopwatch.StartNew();
        var ended = await botOnA.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        Assert.Equal("1", ended.Headers.GetValues("Parley-Sockets-Notified").Single());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the local termination took {clock.Elapsed.TotalMilliseconds:0} ms");
        await guest.NextAsync(Frames.IsDisconnect);

        // Across nodes, the push is lost, and nothing waits for it; the store still decides.
        await using var other = await nodes[0].GuestAsync();
        await other.ConfigureAsync();
        var otherSession = await other.SessionIdAsync();
        var otherConversation = (await botOnB.StartConversationAsync(otherSession, "lost"))["conversationId"]!.GetValue<string>();
        clock.Restart();
        var lost = await botOnB.Http.PostAsync($"/api/v2/conversations/{otherConversation}/disconnect", null);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the cross-node termination took {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal("0", lost.Headers.GetValues("Parley-Sockets-Notified").Single());
        var refused = await other.SendTextAsync("after the end");   // no push came, but the store decides
        Assert.Equal("Session is read-only, no new messages allowed", (string?)refused["body"]);

        await redis.StartServerAsync();
        await nodes.JoinedAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("Healthy", (await nodes.HealthAsync(0)).Status.ToString());
        await using var later = await nodes[0].GuestAsync();
        await later.ConfigureAsync();
        await botOnB.StartConversationAsync(await later.SessionIdAsync(), "across again");
        await later.NextAsync(f => PlatformExtensions.IsText(f, "across again"));
    }

    /// <summary>
    /// Nodes started while Redis is unreachable start degraded (they serve their own sockets) and join once it answers;
    /// each delivery then reaches a guest on the other node once, not once per subscription attempt.
    /// </summary>
    [EngineFact(Redis)]
    public async Task NodesStartedWithoutRedis_StartDegraded_AndJoinWhenItComes_DeliveringEachPushOnce()
    {
        await using var redis = new PrivateRedis();   // not started yet
        await using var nodes = await RedisNodes.StartAsync(redis: redis.ConnectionString + QuickTimeouts, waitForJoin: false);
        Assert.Equal("Degraded", (await nodes.HealthAsync(1)).Status.ToString());
        using var bot = await nodes[1].PlatformAsync();

        await redis.StartServerAsync();
        await nodes.JoinedAsync(TimeSpan.FromSeconds(30));

        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        await bot.StartConversationAsync(sessionId, "once");
        await guest.NextAsync(f => PlatformExtensions.IsText(f, "once"));
        await bot.SendIntoLiveAsync(sessionId, "twice?");
        await guest.NextAsync(f => PlatformExtensions.IsText(f, "twice?"));
        var t = guest.NextTracingId();
        await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = t, message = new { type = "Text", text = "ping" } });
        var next = await guest.NextFrameAsync();   // the sentinel's reply is the next frame: no copy of a push came in between
        Assert.Equal(t, (string?)next["tracingId"]);
        Assert.Equal(1, await bot.SocketsOfAsync(sessionId));
    }
}

/// <summary>
/// A node the test plays straight on Redis: it subscribes to the cluster's delivery channel, optionally keeps a
/// membership key, answers every request with <c>sockets</c> (an Ended only once <see cref="Release"/> is set), or, as
/// a non-member, never answers at all.
/// </summary>
sealed class PlayedNode : IAsyncDisposable
{
    readonly ConnectionMultiplexer _redis;
    readonly ChannelMessageQueue _queue;
    public TaskCompletionSource EndedReceived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    PlayedNode(ConnectionMultiplexer redis, ChannelMessageQueue queue) => (_redis, _queue) = (redis, queue);

    public static async Task<PlayedNode> JoinAsync(RedisNodes nodes, string id, bool member, int sockets)
    {
        var redis = await ConnectionMultiplexer.ConnectAsync(nodes.Redis);
        if (member)
        {
            await redis.GetDatabase().StringSetAsync(nodes.Prefix + "node:" + id, id, TimeSpan.FromMinutes(2));
            await redis.GetDatabase().SetAddAsync(nodes.Prefix + "nodes", id);
        }
        var queue = await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(nodes.Prefix + "deliveries"));
        var node = new PlayedNode(redis, queue);
        queue.OnMessage(async m =>
        {
            var e = JsonNode.Parse((string)m.Message!)!;
            var kind = (string?)e["Kind"];
            if (kind == "ended") node.EndedReceived.TrySetResult();
            if (!member) return;
            if (kind == "ended") await node.Release.Task;
            await redis.GetSubscriber().PublishAsync(RedisChannel.Literal(nodes.Prefix + "replies:" + (string?)e["Origin"]), $"{(long)e["Id"]!} {sockets} {id}");
        });
        // The nodes refresh their members every heartbeat: wait until they know this one.
        if (member) await RedisNodes.Until(() => nodes.Backplane(1).Members.Contains(id), TimeSpan.FromSeconds(10), "the nodes see the played node");
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        Release.TrySetResult();
        await _queue.UnsubscribeAsync();
        await _redis.DisposeAsync();
    }
}

/// <summary>The token endpoint's failure limit is one limit across nodes with the Redis backplane (docs/fanout.md).</summary>
public sealed class RedisTokenThrottleTests
{
    static async Task<HttpStatusCode> TokenAsync(ParleyServer node, string secret)
    {
        using var http = new HttpClient { BaseAddress = node.BaseAddress };
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Parley.Server.ParleyOptions.DefaultClientId}:{secret}")));
        return (await http.SendAsync(request)).StatusCode;
    }

    [EngineFact(RedisNodes.Variable)]
    public async Task FailuresSpreadOverTwoNodes_MeetOneLimit()
    {
        // Three failures per (client, address); the other buckets out of the way.
        await using var nodes = await RedisNodes.StartAsync(configure: o => o with
        {
            OAuthMaxFailuresPerClientAddress = 3, OAuthMaxFailuresPerAddress = 1000, OAuthMaxFailuresPerClient = 1000,
        });

        Assert.Equal(HttpStatusCode.Unauthorized, await TokenAsync(nodes[0], "wrong-1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenAsync(nodes[0], "wrong-2"));
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenAsync(nodes[1], "wrong-3"));

        // Each node alone has seen fewer than three: only the shared count refuses.
        Assert.Equal(HttpStatusCode.TooManyRequests, await TokenAsync(nodes[0], "wrong-4"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await TokenAsync(nodes[1], Parley.Server.ParleyOptions.DefaultClientSecret));
    }
}
