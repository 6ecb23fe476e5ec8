using System.Net;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

public sealed class ConversationFlowTests
{
    [Fact]
    public async Task BotInitiatedConversation_ReachesEveryGuestSocket_AndIsListedActive()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        var session = await guest.ConfigureAsync();
        Assert.Equal("SessionResponse", (string?)session["class"]);
        Assert.True(session["body"]!["connected"]!.GetValue<bool>());
        Assert.True(session["body"]!["newSession"]!.GetValue<bool>());
        Assert.False(session["body"]!["readOnly"]!.GetValue<bool>());
        await using var secondTab = await server.GuestAsync(guest.Token);
        Assert.False((await secondTab.ConfigureAsync())["body"]!["newSession"]!.GetValue<bool>());
        var sessionId = await guest.SessionIdAsync();

        var started = await platform.StartConversationAsync(sessionId, "Your order shipped");

        var conversationId = started["conversationId"]!.GetValue<string>();
        Assert.Equal("webmessaging", (string?)started["messengerType"]);
        Assert.Equal("outbound", (string?)started["message"]!["direction"]);
        foreach (var tab in new[] { guest, secondTab })
        {
            var pushed = await tab.NextAsync(Frames.IsOutboundText);
            Assert.Equal("message", (string?)pushed["type"]);
            Assert.Equal("Your order shipped", (string?)pushed["body"]!["text"]);
            Assert.Equal("Bot", (string?)pushed["body"]!["originatingEntity"]);
            Assert.Equal(started["id"]!.GetValue<string>(), (string?)pushed["body"]!["id"]);
        }
        var (listResponse, list) = await platform.GetAsync("/api/v2/conversations/messages");
        Assert.Equal(HttpStatusCode.OK, listResponse.StatusCode);
        var listed = list!["entities"]!.AsArray().Single(c => (string?)c!["id"] == conversationId)!;
        Assert.Equal(["customer", "workflow"], listed["participants"]!.AsArray().Select(p => (string)p!["purpose"]!).Order());
        Assert.All(listed["participants"]!.AsArray(), p => Assert.Equal("connected", (string?)p!["state"]));
        var botMessages = listed["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!["messages"]!.AsArray();
        Assert.Equal(started["id"]!.GetValue<string>(), (string?)botMessages.Single()!["messageId"]);
    }

    [Fact]
    public async Task TheBotFindsAGuestByItsJourneyCustomerId()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await using var other = await server.GuestAsync();
        var t = guest.NextTracingId();
        await guest.RequestAsync(new
        {
            action = "configureSession", token = guest.Token, deploymentId = ParleyServer.DeploymentId, tracingId = t,
            journeyContext = new { customer = new { id = "crm-4711", idType = "externalId" }, customerSession = new { id = "", type = "web" } },
        }, t);
        await other.ConfigureAsync();

        var (response, body) = await platform.GetAsync("/api/v2/parley/webmessaging/sessions?customerId=crm-4711");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var found = Assert.Single(body!["entities"]!.AsArray())!;
        Assert.Equal(await guest.SessionIdAsync(), (string?)found["id"]);
        Assert.Equal("externalId", (string?)found["customerIdType"]);
        var started = await platform.StartConversationAsync((string)found["id"]!, "Hello crm-4711");
        Assert.Equal("Hello crm-4711", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
        Assert.NotNull((string?)started["conversationId"]);
    }

    [Fact]
    public async Task Messages_FlowBothWays_AndAreStoredInOrder()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();

        var echo = await guest.SendTextAsync("I need help");

        Assert.Equal("message", (string?)echo["type"]);
        Assert.Equal("StructuredMessage", (string?)echo["class"]);
        Assert.Equal("Inbound", (string?)echo["body"]!["direction"]);
        Assert.Equal("I need help", (string?)echo["body"]!["text"]);
        var (activeResponse, active) = await platform.GetAsync("/api/v2/conversations/messages");
        Assert.Equal(HttpStatusCode.OK, activeResponse.StatusCode);
        var conversationId = active!["entities"]!.AsArray().Single()!["id"]!.GetValue<string>();
        var conversation = await platform.ConversationAsync(conversationId);
        var bot = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!;
        var communicationId = bot["messages"]![0]!["id"]!.GetValue<string>();

        var (sendResponse, sent) = await platform.PostAsync(
            $"/api/v2/conversations/messages/{conversationId}/communications/{communicationId}/messages", new { textBody = "Hi, how can I help?" });

        Assert.Equal(HttpStatusCode.OK, sendResponse.StatusCode);
        Assert.Equal("outbound", (string?)sent!["direction"]);
        Assert.Equal("sent", (string?)sent["status"]);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", (string)sent["timestamp"]!);
        var pushed = await guest.NextAsync(Frames.IsOutboundText);
        Assert.Equal("Hi, how can I help?", (string?)pushed["body"]!["text"]);

        var jwt = await guest.JwtAsync();
        using var history = new HttpClient { BaseAddress = server.BaseAddress };
        history.DefaultRequestHeaders.Authorization = new("bearer", jwt);
        var page = await history.GetFromJsonAsync<JsonObject>("/api/v2/webmessaging/messages?pageSize=25&pageNumber=1");
        Assert.Equal(2, (int)page!["total"]!);
        Assert.Equal(1, (int)page["pageCount"]!);
        Assert.Equal(["Hi, how can I help?", "I need help"], page["entities"]!.AsArray().Select(e => (string)e!["text"]!));   // newest first

        var (messageResponse, message) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}/messages/{sent["id"]}");
        Assert.Equal(HttpStatusCode.OK, messageResponse.StatusCode);
        Assert.Equal("Hi, how can I help?", (string?)message!["textBody"]);
    }

    [Fact]
    public async Task GuestTyping_IsStoredAndEchoed_BotTypingReachesGuest()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var started = await platform.StartConversationAsync(await guest.SessionIdAsync());
        var conversationId = started["conversationId"]!.GetValue<string>();
        var conversation = await platform.ConversationAsync(conversationId);
        var botCommunication = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!
            .GetValue<string>();

        var t = guest.NextTracingId();
        var echo = await guest.RequestAsync(new
        {
            action = "onMessage", token = guest.Token, tracingId = t,
            message = new { type = "Event", events = new[] { new { eventType = "Typing", typing = new { type = "On" } } } },
        }, t);
        var (typingResponse, _) = await platform.PostAsync(
            $"/api/v2/conversations/messages/{conversationId}/communications/{botCommunication}/typing", new { typing = new { type = "On" } });

        Assert.Equal("Typing", (string?)echo["body"]!["events"]![0]!["eventType"]);
        Assert.Equal(HttpStatusCode.Accepted, typingResponse.StatusCode);
        var botTyping = await guest.NextAsync(f => (string?)f["body"]?["events"]?[0]?["eventType"] == "Typing" && (string?)f["body"]!["direction"] == "Outbound");
        Assert.Equal(5000, (int)botTyping["body"]!["events"]![0]!["typing"]!["duration"]!);
    }

    [Fact]
    public async Task Restart_KeepsSessionsHistoryAndEndedConversations()
    {
        await using var server = await ParleyServer.StartAsync();
        string liveToken = Guid.NewGuid().ToString(), endedToken = Guid.NewGuid().ToString();
        string liveConversation, endedConversation;
        await using (var liveGuest = await server.GuestAsync(liveToken))
        await using (var endedGuest = await server.GuestAsync(endedToken))
        {
            await liveGuest.ConfigureAsync();
            await endedGuest.ConfigureAsync();
            await liveGuest.SendTextAsync("first");
            await liveGuest.SendTextAsync("second");
            await endedGuest.SendTextAsync("bye");
            using var platform = await server.PlatformAsync();
            liveConversation = await platform.ConversationOfSessionAsync(await liveGuest.SessionIdAsync());
            endedConversation = await platform.ConversationOfSessionAsync(await endedGuest.SessionIdAsync());
            var (end, _) = await platform.PostAsync($"/api/v2/conversations/{endedConversation}/disconnect");
            Assert.Equal(HttpStatusCode.Accepted, end.StatusCode);
        }

        await server.RestartAsync();

        using var after = await server.PlatformAsync();
        await using var liveAgain = await server.GuestAsync(liveToken);
        var resumed = await liveAgain.ConfigureAsync();
        Assert.False(resumed["body"]!["newSession"]!.GetValue<bool>());
        Assert.False(resumed["body"]!["readOnly"]!.GetValue<bool>());
        var echo = await liveAgain.SendTextAsync("third");
        Assert.Equal("StructuredMessage", (string?)echo["class"]);
        var (_, live) = await after.GetAsync($"/api/v2/conversations/messages/{liveConversation}");
        var customer = live!["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Equal(3, customer["messages"]!.AsArray().Count);

        await using var endedAgain = await server.GuestAsync(endedToken);
        var readOnly = await endedAgain.ConfigureAsync();
        Assert.True(readOnly["body"]!["readOnly"]!.GetValue<bool>());
        Assert.Equal(409, (int)(await endedAgain.SendTextAsync("still there?"))["code"]!);
        var (_, ended) = await after.GetAsync($"/api/v2/conversations/{endedConversation}");
        Assert.NotNull((string?)ended!["endTime"]);
        Assert.All(ended["participants"]!.AsArray(), p => Assert.Equal("disconnected", (string?)p!["state"]));
    }

    [Fact]
    public async Task GuestRest_AnswersABrowserOnAnotherOrigin()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/v2/webmessaging/messages?pageSize=25&pageNumber=1");
        preflight.Headers.Add("Origin", "https://shop.example");
        preflight.Headers.Add("Access-Control-Request-Method", "GET");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization");

        var answer = await http.SendAsync(preflight);
        var config = new HttpRequestMessage(HttpMethod.Get, $"/webdeployments/v1/deployments/{ParleyServer.DeploymentId}/config.json");
        config.Headers.Add("Origin", "https://shop.example");
        var configAnswer = await http.SendAsync(config);

        Assert.True(answer.IsSuccessStatusCode, $"preflight answered {(int)answer.StatusCode}");
        Assert.Equal("*", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("authorization", answer.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, configAnswer.StatusCode);
        Assert.Equal("*", configAnswer.Headers.GetValues("Access-Control-Allow-Origin").Single());

        // A page must not read a token off a local Parley with the well-known demo credentials.
        var token = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "client_credentials"), new("client_id", "parley-demo-client"),
                new("client_secret", "parley-demo-secret")]),
        };
        token.Headers.Add("Origin", "https://evil.example");
        var tokenAnswer = await http.SendAsync(token);
        Assert.Equal(HttpStatusCode.OK, tokenAnswer.StatusCode);
        Assert.False(tokenAnswer.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task GuestRateLimit_WhenADeploymentSetsIt_AnswersTooManyRequests_AndStoresNothingMore()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "limited", guestMessagesPerSecond = 1 });
        Assert.Equal(1, (int)deployment!["guestMessagesPerSecond"]!);
        await using var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, deployment["id"]!.GetValue<string>());
        await guest.ConfigureAsync();

        var first = await guest.SendTextAsync("one");
        var third = await guest.SendTextAsync("two, within the same second");

        Assert.Equal("StructuredMessage", (string?)first["class"]);
        Assert.Equal("TooManyRequestsErrorMessage", (string?)third["class"]);
        Assert.Equal(429, (int)third["code"]!);
        Assert.Equal(4029, (int)third["body"]!["errorCode"]!);
        Assert.True((int)third["body"]!["retryAfter"]! >= 1);
        var conversation = await platform.ConversationAsync(await platform.ConversationOfSessionAsync(await guest.SessionIdAsync()));
        var customer = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Single(customer["messages"]![0]!["messages"]!.AsArray());
    }
}
