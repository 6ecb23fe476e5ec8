using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

/// <summary>Bad input gets a clear error in the protocol's own form; the socket and server keep serving; nothing stored changes.</summary>
public sealed class BadInputTests
{
    static async Task<(ParleyServer Server, PlatformClient Platform, TestGuest Guest, string ConversationId)> ConversationAsync()
    {
        var server = await ParleyServer.StartAsync();
        var platform = await server.PlatformAsync();
        var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        await guest.SendTextAsync("first");
        return (server, platform, guest, await platform.ConversationOfSessionAsync(await guest.SessionIdAsync()));
    }

    static async Task<int> StoredCustomerMessagesAsync(PlatformClient platform, string conversationId) =>
        (await platform.ConversationAsync(conversationId))["participants"]!.AsArray()
            .Single(p => (string?)p!["purpose"] == "customer")!["messages"]![0]!["messages"]!.AsArray().Count;

    static void AssertErrorFrame(JsonObject frame, int code, string containing)
    {
        Assert.Equal("response", (string?)frame["type"]);
        Assert.Equal("string", (string?)frame["class"]);
        Assert.Equal(code, (int)frame["code"]!);
        Assert.Contains(containing, (string)frame["body"]!);
    }

    [Fact]
    public async Task GuestSocket_AnswersEachBadFrame_AndKeepsServing()
    {
        var (server, platform, guest, conversationId) = await ConversationAsync();
        await using var _ = server;
        using var __ = platform;
        await using var ___ = guest;

        await guest.SendRawAsync("{\"action\":\"onMessage\",");
        AssertErrorFrame(await guest.NextFrameAsync(), 400, "Malformed JSON");

        var t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new { action = "hangup", token = guest.Token, tracingId = t }, t), 400, "Unknown action 'hangup'");

        t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new { action = "onMessage", tracingId = t, message = new { type = "Text", text = "x" } }, t),
            4020, "token");

        t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new { action = "onMessage", token = "someone-else", tracingId = t, message = new { type = "Text", text = "x" } }, t),
            403, "token does not match");

        AssertErrorFrame(await guest.SendTextAsync(new string('a', 5000)), 4011, "Message too long");

        // An oversized frame ends the socket (4011, then close 1009): ConnectionLimitTests.OversizedFrame_*.

        t = guest.NextTracingId();
        var attributes = Enumerable.Range(0, 100).ToDictionary(i => $"key{i}", i => new string('v', 40));
        AssertErrorFrame(await guest.RequestAsync(new
        {
            action = "onMessage", token = guest.Token, tracingId = t,
            message = new { type = "Text", text = "x", channel = new { metadata = new { customAttributes = attributes } } },
        }, t), 4013, "Custom Attributes");

        t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new
        {
            action = "onMessage", token = guest.Token, tracingId = t,
            message = new { type = "Event", events = new[] { new { eventType = "Presence", presence = new { type = "Disconnect" } } } },
        }, t), 400, "Unsupported Presence type 'Disconnect'");

        t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new
        {
            action = "onMessage", token = guest.Token, tracingId = t,
            message = new { type = "Event", events = new[] { new { eventType = "hangup" } } },
        }, t), 400, "Unsupported eventType 'hangup'");

        t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new
        {
            action = "onMessage", token = guest.Token, tracingId = t, message = new { type = "Event", events = new object?[] { null } },
        }, t), 400, "null");

        t = guest.NextTracingId();
        AssertErrorFrame(await guest.RequestAsync(new
        {
            action = "onMessage", token = guest.Token, tracingId = t, message = new { type = "Structured", content = Array.Empty<object>() },
        }, t), 4000, "Structured");

        await guest.SendRawAsync("[1,2,3]");
        AssertErrorFrame(await guest.NextFrameAsync(), 400, "Malformed JSON");

        Assert.Equal("ping", (string?)(await guest.EchoAsync())["body"]!["text"]);
        Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("second"))["class"]);
        Assert.Equal(2, await StoredCustomerMessagesAsync(platform, conversationId));
    }

    [Fact]
    public async Task WrongDeployment_AndUnconfiguredSocket_GetErrorFrames()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var stranger = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, "no-such-deployment");

        AssertErrorFrame(await stranger.ConfigureAsync(), 403, "Deployment no-such-deployment not found");
        AssertErrorFrame(await stranger.SendTextAsync("hello?"), 4007, "configureSession first");
        Assert.Equal("ping", (string?)(await stranger.EchoAsync())["body"]!["text"]);
    }

    [Fact]
    public async Task DisallowedOrigin_IsRefusedBeforeTheUpgrade()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments",
            new { name = "shop", allowedOrigins = new[] { "https://shop.example" } });
        var deploymentId = deployment!["id"]!.GetValue<string>();

        var refused = await Assert.ThrowsAsync<WebSocketException>(() =>
            TestGuest.ConnectAsync(server, "t", "https://evil.example", deploymentId));
        Assert.Contains("403", refused.Message);

        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1?deploymentId={deploymentId}");
        request.Headers.Add("Origin", "https://evil.example");
        request.Headers.Add("Connection", "Upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("origin.not.allowed", (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["code"]);

        await using var allowed = await TestGuest.ConnectAsync(server, "t", "https://shop.example", deploymentId);
        Assert.True((await allowed.ConfigureAsync())["body"]!["connected"]!.GetValue<bool>());
    }

    [Fact]
    public async Task PlatformApi_RefusesMissingWrongAndUnderprivilegedTokens()
    {
        var (server, platform, guest, conversationId) = await ConversationAsync();
        await using var _ = server;
        using var __ = platform;
        await using var ___ = guest;
        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        var disconnectPath = $"/api/v2/conversations/{conversationId}/disconnect";

        async Task<JsonObject> ExpectAsync(HttpResponseMessage response, HttpStatusCode status, string code)
        {
            Assert.Equal(status, response.StatusCode);
            var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
            Assert.Equal(code, (string?)body["code"]);
            Assert.Equal((int)status, (int)body["status"]!);
            return body;
        }

        await ExpectAsync(await anonymous.PostAsync(disconnectPath, null), HttpStatusCode.Unauthorized, "authentication.required");
        anonymous.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-token");
        await ExpectAsync(await anonymous.PostAsync(disconnectPath, null), HttpStatusCode.Unauthorized, "bad.credentials");
        anonymous.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await guest.JwtAsync());
        await ExpectAsync(await anonymous.PostAsync(disconnectPath, null), HttpStatusCode.Unauthorized, "bad.credentials");   // a guest JWT opens no Platform endpoint

        var (created, client) = await platform.PostAsync("/api/v2/oauth/clients",
            new { name = "read-only reporting", authorizedGrantType = "CLIENT-CREDENTIALS", permissions = new[] { "conversation:message:view" } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        using var reader = await server.PlatformAsync(client!["id"]!.GetValue<string>(), client["secret"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await reader.Http.GetAsync($"/api/v2/conversations/messages/{conversationId}")).StatusCode);
        var forbidden = await ExpectAsync(await reader.Http.PostAsync(disconnectPath, null), HttpStatusCode.Forbidden, "missing.permissions");
        Assert.Contains("conversation:communication:disconnect", (string)forbidden["message"]!);

        using var tokenClient = new HttpClient { BaseAddress = server.BaseAddress };
        var wrongSecret = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
            { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        wrongSecret.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("parley-demo-client:wrong")));
        var tokenResponse = await tokenClient.SendAsync(wrongSecret);
        Assert.Equal(HttpStatusCode.Unauthorized, tokenResponse.StatusCode);
        Assert.Equal("invalid_client", (string?)(await tokenResponse.Content.ReadFromJsonAsync<JsonObject>())!["error"]);

        var platformTokenOnHistory = new HttpRequestMessage(HttpMethod.Get, "/api/v2/webmessaging/messages");
        platformTokenOnHistory.Headers.Authorization = platform.Http.DefaultRequestHeaders.Authorization;
        await ExpectAsync(await tokenClient.SendAsync(platformTokenOnHistory), HttpStatusCode.Unauthorized, "bad.credentials");

        Assert.Equal("connected", (string?)(await platform.ConversationAsync(conversationId))["state"]);
    }

    [Fact]
    public async Task PlatformApi_NamesTheWayThatWorks_ForTheSeedsHangupAndOtherBadRequests()
    {
        var (server, platform, guest, conversationId) = await ConversationAsync();
        await using var _ = server;
        using var __ = platform;
        await using var ___ = guest;
        var bot = (await platform.ConversationAsync(conversationId))["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!;
        var botCommunication = bot["messages"]![0]!["id"]!.GetValue<string>();

        var seed = await platform.PostAsync("/api/v2/conversations/messaging/events",
            new { conversationId, participantId = "guest-67890", type = "hangup", timestamp = "2024-05-20T14:30:00.000Z" });
        Assert.Equal(HttpStatusCode.NotFound, seed.Response.StatusCode);
        Assert.Contains("PATCH /api/v2/conversations/messages/{conversationId}/participants/{participantId}", (string)seed.Body!["message"]!);

        var hangupAsTyping = await platform.PostAsync(
            $"/api/v2/conversations/messages/{conversationId}/communications/{botCommunication}/typing", new { type = "hangup" });
        Assert.Equal(HttpStatusCode.BadRequest, hangupAsTyping.Response.StatusCode);
        Assert.Contains("POST /api/v2/conversations/{conversationId}/disconnect", (string)hangupAsTyping.Body!["message"]!);

        var unknownPath = await platform.PostAsync($"/api/v2/conversations/{conversationId}/hangup", new { });
        Assert.Equal(HttpStatusCode.NotFound, unknownPath.Response.StatusCode);
        Assert.Equal("not.found", (string?)unknownPath.Body!["code"]);

        var malformed = await platform.Http.PatchAsync($"/api/v2/conversations/messages/{conversationId}",
            new StringContent("{\"state\":", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Equal("bad.request", (string?)(await malformed.Content.ReadFromJsonAsync<JsonObject>())!["code"]);

        var connect = await platform.PatchAsync($"/api/v2/conversations/messages/{conversationId}", new { state = "connected" });
        Assert.Equal(HttpStatusCode.BadRequest, connect.Response.StatusCode);
        Assert.Equal("invalid.value", (string?)connect.Body!["code"]);

        var customerSend = await platform.PostAsync(
            $"/api/v2/conversations/messages/{conversationId}/communications/{Guid.NewGuid()}/messages", new { textBody = "hi" });
        Assert.Equal(HttpStatusCode.NotFound, customerSend.Response.StatusCode);

        var tooLong = await platform.PostAsync(
            $"/api/v2/conversations/messages/{conversationId}/communications/{botCommunication}/messages", new { textBody = new string('x', 2001) });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.Response.StatusCode);

        var orQuery = await platform.PostAsync("/api/v2/analytics/conversations/details/query", new
        {
            interval = "2020-01-01T00:00:00.000Z/2030-01-01T00:00:00.000Z",
            conversationFilters = new[] { new { type = "or", predicates = new[] { new { dimension = "messageType", value = "open" } } } },
        });
        Assert.Equal(HttpStatusCode.BadRequest, orQuery.Response.StatusCode);
        var nullFilter = await platform.PostAsync("/api/v2/analytics/conversations/details/query", new
        {
            interval = "2020-01-01T00:00:00.000Z/2030-01-01T00:00:00.000Z", conversationFilters = new object?[] { null },
        });
        Assert.Equal(HttpStatusCode.BadRequest, nullFilter.Response.StatusCode);

        Assert.Equal("connected", (string?)(await platform.ConversationAsync(conversationId))["state"]);
        Assert.Equal(1, await StoredCustomerMessagesAsync(platform, conversationId));
        Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("still here"))["class"]);
    }
}
