using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.Cluster.Tests;

/// <summary>
/// Issue 11, "what it must show": two Parley processes on different loopback ports sharing one PostgreSQL and one Redis.
/// A guest's sockets on node A, the bot on node B's Platform API; every termination guarantee holds across them.
/// </summary>
[Collection(SharedCluster.Name)]
public sealed class MultiNodeTests(ClusterFixture cluster)
{
    const string Deployment = ParleyOptions.DefaultDeploymentId;

    ParleyProcess A => cluster.A;
    ParleyProcess B => cluster.B;

    static async Task<TestGuest> GuestAsync(ParleyProcess node, string? token = null, string deployment = Deployment)
    {
        var guest = await TestGuest.ConnectAsync(node.BaseAddress, token ?? Guid.NewGuid().ToString(), null, deployment);
        await guest.ConfigureAsync();
        return guest;
    }

    static async Task<string> BotCommunicationAsync(PlatformClient platform, string conversationId) =>
        (string)(await platform.ConversationAsync(conversationId))["participants"]!.AsArray()
            .Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!;

    [ClusterFact]
    public async Task GuestOnA_BotOnB_MessagesAndTheDisconnectReachEverySocketBeforeBAnswers_AndBothNodesReadTheSame()
    {
        await using var guest = await GuestAsync(A);
        await using var secondTab = await GuestAsync(B, guest.Token);   // the same session, a socket on the other node
        using var botOnB = await PlatformClient.ConnectAsync(B.BaseAddress);
        using var botOnA = await PlatformClient.ConnectAsync(A.BaseAddress);

        // The bot starts the conversation and talks through B; the guest's socket on A hears each message, in order.
        var conversationId = (string)(await botOnB.StartConversationAsync(await guest.SessionIdAsync(), "hello from B"))["conversationId"]!;
        Assert.Equal("hello from B", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
        var communication = await BotCommunicationAsync(botOnB, conversationId);
        for (var i = 1; i <= 3; i++)
        {
            var (sent, _) = await botOnB.PostAsync($"/api/v2/conversations/messages/{conversationId}/communications/{communication}/messages",
                new { textBody = $"bot message {i}" });
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }
        for (var i = 1; i <= 3; i++)
            Assert.Equal($"bot message {i}", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
        Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("thanks, that is all"))["class"]);

        // The end, through B: both sockets (one on A, one on B) hold the Disconnect frame before B's answer arrives.
        var response = await botOnB.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        var answeredAt = Stopwatch.GetTimestamp();
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        foreach (var socket in new[] { guest, secondTab })
        {
            var disconnect = await socket.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
            Assert.Equal("true", (string?)disconnect["body"]!["metadata"]!["readOnly"]);
            var early = Stopwatch.GetElapsedTime(socket.ArrivedAt(disconnect), answeredAt);
            Assert.True(early > TimeSpan.Zero, $"the Disconnect frame reached a socket {-early.TotalMilliseconds:0.0} ms after B answered");
        }

        // The guest on A sends after the end: the read-only error, and nothing is stored.
        var refused = await guest.SendTextAsync("wait, one more thing");
        Assert.Equal(409, (int)refused["code"]!);
        Assert.Equal("Session is read-only, no new messages allowed", (string?)refused["body"]);

        // The conversation, its analytics and its audit row read the same from either node.
        foreach (var path in new[]
                 {
                     $"/api/v2/conversations/{conversationId}", $"/api/v2/conversations/messages/{conversationId}",
                     $"/api/v2/analytics/conversations/{conversationId}/details", $"/api/v2/analytics/conversations/details?id={conversationId}",
                     $"/api/v2/parley/audit/terminations?conversationId={conversationId}",
                 })
        {
            var (fromA, bodyA) = await botOnA.GetAsync(path);
            var (fromB, bodyB) = await botOnB.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, fromA.StatusCode);
            Assert.Equal(HttpStatusCode.OK, fromB.StatusCode);
            Assert.Equal(bodyB!.ToJsonString(), bodyA!.ToJsonString());
        }
        var query = new
        {
            interval = $"{DateTime.UtcNow.AddHours(-1):yyyy-MM-ddTHH:mm:ss.fffZ}/{DateTime.UtcNow.AddHours(1):yyyy-MM-ddTHH:mm:ss.fffZ}",
            conversationFilters = new[] { new { type = "and", predicates = new[] { new { dimension = "conversationId", value = conversationId } } } },
        };
        var (queryA, resultA) = await botOnA.PostAsync("/api/v2/analytics/conversations/details/query", query);
        var (queryB, resultB) = await botOnB.PostAsync("/api/v2/analytics/conversations/details/query", query);
        Assert.Equal(HttpStatusCode.OK, queryA.StatusCode);
        Assert.Equal(resultB!.ToJsonString(), resultA!.ToJsonString());
        // A page of the store's listing too (every ended conversation of the last hour), not only the one looked up by id.
        var listing = new { interval = query.interval, conversationFilters = new[] { new { type = "and", predicates = new[] { new { dimension = "conversationEnd", @operator = "exists" } } } } };
        var (listA, pageA) = await botOnA.PostAsync("/api/v2/analytics/conversations/details/query", listing);
        var (_, pageB) = await botOnB.PostAsync("/api/v2/analytics/conversations/details/query", listing);
        Assert.Equal(HttpStatusCode.OK, listA.StatusCode);
        Assert.Equal(pageB!.ToJsonString(), pageA!.ToJsonString());
        var details = resultA["conversations"]!.AsArray().Single()!;
        Assert.Equal(conversationId, (string?)details["conversationId"]);
        Assert.NotNull(details["conversationEnd"]);

        var conversation = await botOnA.ConversationAsync(conversationId);
        Assert.Equal("disconnected", (string?)conversation["state"]);
        var customer = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Single(customer["messages"]![0]!["messages"]!.AsArray());   // "thanks, that is all"; the refused one is not there
        var (_, audit) = await botOnA.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        var row = audit!["entities"]!.AsArray().Single()!;
        Assert.Equal(2, (int)row["socketsNotified"]!);
    }

    [ClusterFact]
    public async Task ATokenIssuedByOneNode_WorksOnTheOther()
    {
        var fromB = await TokenAsync(B.BaseAddress);
        var fromA = await TokenAsync(A.BaseAddress);
        foreach (var (node, token) in new[] { (A, fromB), (B, fromA) })
        {
            using var http = new HttpClient { BaseAddress = node.BaseAddress };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var response = await http.GetAsync("/api/v2/conversations/messages");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // And the guest's JWT: issued by A (getJwt), read by B's guest history endpoint.
        await using var guest = await GuestAsync(A);
        Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("hello"))["class"]);
        using var history = new HttpClient { BaseAddress = B.BaseAddress };
        history.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await guest.JwtAsync());
        var messages = (await history.GetFromJsonAsync<JsonObject>("/api/v2/webmessaging/messages"))!;
        Assert.Contains(messages["entities"]!.AsArray(), m => (string?)m!["text"] == "hello");
    }

    [ClusterFact]
    public async Task TwoNodesEndingTheSameConversation_GiveOneEndAndOne409_AndTheGuestHearsOneDisconnect()
    {
        using var onA = await PlatformClient.ConnectAsync(A.BaseAddress);
        using var onB = await PlatformClient.ConnectAsync(B.BaseAddress);
        for (var trial = 0; trial < 5; trial++)
        {
            await using var guest = await GuestAsync(trial % 2 == 0 ? A : B);
            var conversationId = (string)(await onA.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;
            await guest.NextAsync(Frames.IsOutboundText);

            var answers = await Task.WhenAll(
                onA.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null),
                onB.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null));
            Assert.Single(answers, r => r.StatusCode == HttpStatusCode.Accepted);
            var conflict = Assert.Single(answers, r => r.StatusCode == HttpStatusCode.Conflict);
            var error = (await conflict.Content.ReadFromJsonAsync<JsonObject>())!;
            Assert.Equal("conversation.already.disconnected", (string?)error["code"]);

            // One Disconnect frame: the echo sentinel comes after it, and no second one before the sentinel.
            await guest.NextAsync(Frames.IsDisconnect);
            var sentinel = guest.NextTracingId();
            await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = sentinel, message = new { type = "Text", text = "ping" } });
            for (var frame = await guest.NextFrameAsync(); (string?)frame["tracingId"] != sentinel; frame = await guest.NextFrameAsync())
                Assert.False(Frames.IsDisconnect(frame), "a second Disconnect frame");
            var (_, audit) = await onB.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
            Assert.Equal(1, (int)audit!["total"]!);
        }
    }

    [ClusterFact]
    public async Task TheInactivitySweepRunningOnBothNodes_EndsEachIdleConversationOnce()
    {
        using var onB = await PlatformClient.ConnectAsync(B.BaseAddress);
        var (created, deployment) = await onB.PostAsync("/api/v2/parley/deployments", new { name = "idle on two nodes", inactivityTimeoutSeconds = 1 });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var deploymentId = (string)deployment!["id"]!;

        // Guests on both nodes, each with a conversation that then goes quiet; both nodes sweep every second.
        var guests = new List<TestGuest>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                var guest = await GuestAsync(i % 2 == 0 ? A : B, deployment: deploymentId);
                guests.Add(guest);
                Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("anyone there?"))["class"]);
            }
            foreach (var guest in guests)
            {
                var disconnect = await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(15));
                var conversationId = (string)disconnect["body"]!["metadata"]!["conversationId"]!;
                var sentinel = guest.NextTracingId();
                await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = sentinel, message = new { type = "Text", text = "ping" } });
                for (var frame = await guest.NextFrameAsync(); (string?)frame["tracingId"] != sentinel; frame = await guest.NextFrameAsync())
                    Assert.False(Frames.IsDisconnect(frame), "a second Disconnect frame");

                // The sweeping node records the socket count in a second, small write after the fan-out (the end
                // itself committed first), so the guest can hold the Disconnect before the count is in the row.
                var row = await AuditWithSocketCountAsync(onB, conversationId);
                Assert.Equal("Inactivity", (string?)row["lever"]);
                Assert.Equal(1, (int)row["socketsNotified"]!);
                var conversation = await onB.ConversationAsync(conversationId);
                Assert.All(conversation["participants"]!.AsArray(), p => Assert.Equal("inactivity", (string?)p!["messages"]![0]!["disconnectType"]));
                Assert.Equal(409, (int)(await guest.SendTextAsync("still there?"))["code"]!);
            }
        }
        finally
        {
            foreach (var guest in guests) await guest.DisposeAsync();
        }
    }

    [ClusterFact]
    public async Task ANotificationChannelOnA_HearsTheEndCommittedOnB()
    {
        using var onA = await PlatformClient.ConnectAsync(A.BaseAddress);
        using var onB = await PlatformClient.ConnectAsync(B.BaseAddress);
        await using var guest = await GuestAsync(A);
        var conversationId = (string)(await onB.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);

        await using var channel = await NotificationChannel.OpenAsync(onA, $"v2.detail.events.conversation.{conversationId}.customer.end");
        var (ended, _) = await onB.PostAsync($"/api/v2/conversations/{conversationId}/disconnect");
        Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
        var frame = await channel.NextAsync(f => (string?)f["topicName"] != "channel.metadata");
        Assert.Equal($"v2.detail.events.conversation.{conversationId}.customer.end", (string?)frame["topicName"]);
        Assert.Equal(conversationId, (string?)frame["eventBody"]!["conversationId"]);
    }

    static async Task<string> TokenAsync(Uri node)
    {
        using var http = new HttpClient { BaseAddress = node };
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ParleyOptions.DefaultClientId}:{ParleyOptions.DefaultClientSecret}")));
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["access_token"]!;
    }

    /// <summary>The conversation's one audit row, once its socket count is recorded (within 10 s).</summary>
    static async Task<JsonNode> AuditWithSocketCountAsync(PlatformClient platform, string conversationId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
            var row = Assert.Single(audit!["entities"]!.AsArray())!;
            if (row["socketsNotified"] is not null || DateTime.UtcNow > deadline) return row;
            await Task.Delay(50);   // polling a store row: there is no event to wait on
        }
    }
}
