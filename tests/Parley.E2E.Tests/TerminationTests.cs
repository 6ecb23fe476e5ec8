using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>The heart of the product: every lever of docs/compatibility.md §Termination levers ends the guest's session for good, truthfully.</summary>
public sealed class TerminationTests
{
    public enum Lever { ParticipantPatch, GenericParticipantPatch, ConversationPatch, ConversationDisconnect }

    sealed record Scene(ParleyServer Server, PlatformClient Platform, TestGuest Guest, TestGuest SecondTab, string ConversationId) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Guest.DisposeAsync();
            await SecondTab.DisposeAsync();
            Platform.Dispose();
            await Server.DisposeAsync();
        }
    }

    /// <summary>A bot-initiated conversation with a guest connected on two sockets, both of which saw the bot's message.</summary>
    static async Task<Scene> StartAsync(Func<Parley.Server.ParleyOptions, Parley.Server.ParleyOptions>? configure = null)
    {
        var server = await ParleyServer.StartAsync(configure);
        var platform = await server.PlatformAsync();
        var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var tab = await server.GuestAsync(guest.Token);
        await tab.ConfigureAsync();
        var started = await platform.StartConversationAsync(await guest.SessionIdAsync());
        await guest.NextAsync(Frames.IsOutboundText);
        await tab.NextAsync(Frames.IsOutboundText);
        await guest.SendTextAsync("thanks, that is all");
        return new Scene(server, platform, guest, tab, started["conversationId"]!.GetValue<string>());
    }

    static async Task<HttpResponseMessage> PullAsync(Scene s, Lever lever, string? reason = null)
    {
        var customer = await s.Platform.ParticipantIdAsync(s.ConversationId, "customer");
        var request = lever switch
        {
            Lever.ParticipantPatch => new HttpRequestMessage(HttpMethod.Patch, $"/api/v2/conversations/messages/{s.ConversationId}/participants/{customer}")
                { Content = JsonContent.Create(new { state = "disconnected", wrapupSkipped = true }) },
            Lever.GenericParticipantPatch => new HttpRequestMessage(HttpMethod.Patch, $"/api/v2/conversations/{s.ConversationId}/participants/{customer}")
                { Content = JsonContent.Create(new { state = "disconnected" }) },
            Lever.ConversationPatch => new HttpRequestMessage(HttpMethod.Patch, $"/api/v2/conversations/messages/{s.ConversationId}")
                { Content = JsonContent.Create(new { state = "disconnected", startTime = "", participants = Array.Empty<object>() }) },
            _ => new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/{s.ConversationId}/disconnect"),
        };
        if (reason is not null) request.Headers.Add("Parley-Termination-Reason", reason);
        return await s.Platform.Http.SendAsync(request);
    }

    [Theory]
    [InlineData(Lever.ParticipantPatch, 202)]
    [InlineData(Lever.GenericParticipantPatch, 202)]
    [InlineData(Lever.ConversationPatch, 200)]
    [InlineData(Lever.ConversationDisconnect, 202)]
    public async Task EachLever_EndsConversation_TellsEverySocket_RefusesGuest_AndAgreesEverywhere(Lever lever, int expectedStatus)
    {
        await using var s = await StartAsync();

        var response = await PullAsync(s, lever, reason: "compliance: interaction complete");

        Assert.Equal(expectedStatus, (int)response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        // Both sockets already hold the Disconnect frame: the answer came after each socket took it.
        foreach (var socket in new[] { s.Guest, s.SecondTab })
        {
            var disconnect = await socket.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
            Assert.Equal("true", (string?)disconnect["body"]!["metadata"]!["readOnly"]);
            Assert.Equal("Outbound", (string?)disconnect["body"]!["direction"]);
        }

        var refused = await s.Guest.SendTextAsync("wait, one more thing");
        Assert.Equal("string", (string?)refused["class"]);
        Assert.Equal(409, (int)refused["code"]!);
        Assert.Equal("Session is read-only, no new messages allowed", (string?)refused["body"]);

        var conversation = await s.Platform.ConversationAsync(s.ConversationId);
        Assert.Equal("disconnected", (string?)conversation["state"]);
        var endTime = (string)conversation["endTime"]!;
        Assert.All(conversation["participants"]!.AsArray(), p =>
        {
            Assert.Equal("disconnected", (string?)p!["state"]);
            Assert.Equal(endTime, (string?)p["endTime"]);
            Assert.Equal("disconnected", (string?)p["messages"]![0]!["state"]);
        });
        var customerMessages = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!["messages"]![0]!["messages"]!;
        Assert.Single(customerMessages.AsArray());   // the refused message was not added

        var (analyticsResponse, analytics) = await s.Platform.GetAsync($"/api/v2/analytics/conversations/{s.ConversationId}/details");
        Assert.Equal(HttpStatusCode.OK, analyticsResponse.StatusCode);
        Assert.Equal(endTime, (string?)analytics!["conversationEnd"]);
        Assert.All(analytics["participants"]!.AsArray(), p =>
        {
            var segment = p!["sessions"]![0]!["segments"]![0]!;
            Assert.Equal(endTime, (string?)segment["segmentEnd"]);
            Assert.NotNull((string?)segment["disconnectType"]);
        });

        var (_, audit) = await s.Platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={s.ConversationId}");
        var record = audit!["entities"]!.AsArray().Single()!;
        Assert.Equal(lever switch
        {
            Lever.ParticipantPatch or Lever.GenericParticipantPatch => "ParticipantPatch",
            Lever.ConversationPatch => "ConversationPatch",
            _ => "ConversationDisconnect",
        }, (string?)record["lever"]);
        Assert.Equal("parley-demo-client", (string?)record["client"]!["id"]);
        Assert.Equal("compliance: interaction complete", (string?)record["reason"]);
        Assert.Equal(2, (int)record["socketsNotified"]!);
        Assert.Equal(endTime, (string?)record["timestamp"]);

        var (activeResponse, active) = await s.Platform.GetAsync("/api/v2/conversations/messages");
        Assert.Equal(HttpStatusCode.OK, activeResponse.StatusCode);
        Assert.DoesNotContain(active!["entities"]!.AsArray(), c => (string?)c!["id"] == s.ConversationId);
    }

    [Fact]
    public async Task RepeatedTermination_IsSafe_AndSays409WithoutChangingAnything()
    {
        await using var s = await StartAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PullAsync(s, Lever.ConversationDisconnect)).StatusCode);
        var before = await s.Platform.ConversationAsync(s.ConversationId);

        foreach (var lever in Enum.GetValues<Lever>())
        {
            var again = await PullAsync(s, lever);
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
            var body = (await again.Content.ReadFromJsonAsync<JsonObject>())!;
            Assert.Equal("conversation.already.disconnected", (string?)body["code"]);
            Assert.Equal(409, (int)body["status"]!);
        }

        var after = await s.Platform.ConversationAsync(s.ConversationId);
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
        var (_, audit) = await s.Platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={s.ConversationId}");
        Assert.Equal(1, (int)audit!["total"]!);
    }

    [Fact]
    public async Task UnknownIds_Get404InThePlatformForm()
    {
        await using var s = await StartAsync();
        var unknown = Guid.NewGuid().ToString();

        var noConversation = await s.Platform.Http.PostAsync($"/api/v2/conversations/{unknown}/disconnect", null);
        var noParticipant = await s.Platform.Http.PatchAsync($"/api/v2/conversations/messages/{s.ConversationId}/participants/{unknown}",
            JsonContent.Create(new { state = "disconnected" }));
        var noAnalytics = await s.Platform.Http.GetAsync($"/api/v2/analytics/conversations/{unknown}/details");

        foreach (var response in new[] { noConversation, noParticipant, noAnalytics })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
            Assert.Equal("not.found", (string?)body["code"]);
            Assert.False(string.IsNullOrEmpty((string?)body["contextId"]));
        }
        Assert.Equal("connected", (string?)(await s.Platform.ConversationAsync(s.ConversationId))["state"]);
    }

    [Fact]
    public async Task ReadOnlyGuest_Reconnects_ReadOnly_ThenStartsNewChat()
    {
        await using var s = await StartAsync();
        await PullAsync(s, Lever.ParticipantPatch);

        await using var later = await s.Server.GuestAsync(s.Guest.Token);
        var resumed = await later.ConfigureAsync();
        Assert.True(resumed["body"]!["connected"]!.GetValue<bool>());
        Assert.True(resumed["body"]!["readOnly"]!.GetValue<bool>());
        var jwt = await later.JwtAsync();   // history stays readable in read-only mode
        using var history = new HttpClient { BaseAddress = s.Server.BaseAddress };
        history.DefaultRequestHeaders.Authorization = new("Bearer", jwt);
        Assert.Equal(2, (int)(await history.GetFromJsonAsync<JsonObject>("/api/v2/webmessaging/messages"))!["total"]!);

        var t = later.NextTracingId();
        var closed = await later.RequestAsync(new { action = "closeSession", token = later.Token, closeAllConnections = true, tracingId = t }, t);
        Assert.False(closed["body"]!["connected"]!.GetValue<bool>());
        Assert.True(closed["body"]!["readOnly"]!.GetValue<bool>());
        await s.Guest.NextAsync(f => (string?)f["class"] == "ConnectionClosedEvent");
        var fresh = await later.ConfigureAsync(startNew: true);
        Assert.True(fresh["body"]!["newSession"]!.GetValue<bool>());
        Assert.False(fresh["body"]!["readOnly"]!.GetValue<bool>());
        var echo = await later.SendTextAsync("new question");
        Assert.Equal("StructuredMessage", (string?)echo["class"]);

        var newConversation = await s.Platform.ConversationOfSessionAsync(await later.SessionIdAsync());
        Assert.NotEqual(s.ConversationId, newConversation);
        Assert.Equal(1, (int)(await history.GetFromJsonAsync<JsonObject>("/api/v2/webmessaging/messages"))!["total"]!);   // old transcript not carried over
    }

    [Fact]
    public async Task SendMode_NextGuestMessage_StartsNewConversation()
    {
        await using var s = await StartAsync();
        var (created, deployment) = await s.Platform.PostAsync("/api/v2/parley/deployments",
            new { name = "send mode", conversationDisconnect = new { enabled = true, type = "Send" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var deploymentId = deployment!["id"]!.GetValue<string>();
        await using var guest = await TestGuest.ConnectAsync(s.Server, Guid.NewGuid().ToString(), null, deploymentId);
        await guest.ConfigureAsync();
        var started = await s.Platform.StartConversationAsync(await guest.SessionIdAsync(), deploymentId: deploymentId);
        var first = started["conversationId"]!.GetValue<string>();

        var end = await s.Platform.Http.PostAsync($"/api/v2/conversations/{first}/disconnect", null);

        Assert.Equal(HttpStatusCode.Accepted, end.StatusCode);
        var disconnect = await guest.NextAsync(Frames.IsDisconnect);
        Assert.Equal("false", (string?)disconnect["body"]!["metadata"]!["readOnly"]);
        var echo = await guest.SendTextAsync("hello again");
        Assert.Equal("StructuredMessage", (string?)echo["class"]);
        var second = await s.Platform.ConversationOfSessionAsync(await guest.SessionIdAsync());
        Assert.NotEqual(first, second);
        Assert.Equal("disconnected", (string?)(await s.Platform.ConversationAsync(first))["state"]);
        Assert.Equal("connected", (string?)(await s.Platform.ConversationAsync(second))["state"]);
    }

    [Fact]
    public async Task GuestClear_EndsConversation_ClearsEverySocket_AndIsAudited()
    {
        await using var s = await StartAsync();
        var t = s.Guest.NextTracingId();

        await s.Guest.SendAsync(new
        {
            action = "onMessage", token = s.Guest.Token, tracingId = t,
            message = new { type = "Event", events = new[] { new { eventType = "Presence", presence = new { type = "Clear" } } } },
        });

        foreach (var socket in new[] { s.Guest, s.SecondTab })
        {
            await socket.NextAsync(f => (string?)f["class"] == "SessionClearedEvent");
            await socket.NextAsync(f => (string?)f["class"] == "ConnectionClosedEvent");
            await socket.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(5));
        }
        var conversation = await s.Platform.ConversationAsync(s.ConversationId);
        Assert.Equal("disconnected", (string?)conversation["state"]);
        var customer = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Equal("client", (string?)customer["messages"]![0]!["disconnectType"]);
        var (_, audit) = await s.Platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={s.ConversationId}");
        var record = audit!["entities"]!.AsArray().Single()!;
        Assert.Equal("GuestClear", (string?)record["lever"]);
        Assert.Equal("guest", (string?)record["client"]!["id"]);

        await using var again = await s.Server.GuestAsync(s.Guest.Token);
        var session = await again.ConfigureAsync();
        Assert.True(session["body"]!["newSession"]!.GetValue<bool>());   // the cleared token starts afresh
        Assert.False(session["body"]!["readOnly"]!.GetValue<bool>());
    }

    [Fact]
    public async Task AnalyticsQuery_SeesTheEndAtOnce()
    {
        await using var s = await StartAsync();
        var day = DateTime.UtcNow.Date;
        object Query(string op) => new
        {
            interval = $"{day.AddDays(-1):yyyy-MM-dd}T00:00:00.000Z/{day.AddDays(2):yyyy-MM-dd}T00:00:00.000Z",
            order = "desc", paging = new { pageSize = 25, pageNumber = 1 },
            conversationFilters = new[] { new { type = "and", predicates = new[] { new { dimension = "conversationEnd", @operator = op } } } },
        };
        var (_, liveBefore) = await s.Platform.PostAsync("/api/v2/analytics/conversations/details/query", Query("notExists"));
        Assert.Equal(1, (int)liveBefore!["totalHits"]!);

        await PullAsync(s, Lever.ConversationPatch);

        var (_, liveAfter) = await s.Platform.PostAsync("/api/v2/analytics/conversations/details/query", Query("notExists"));
        var (_, ended) = await s.Platform.PostAsync("/api/v2/analytics/conversations/details/query", Query("exists"));
        Assert.Equal(0, (int)liveAfter!["totalHits"]!);
        Assert.Equal(s.ConversationId, (string?)ended!["conversations"]![0]!["conversationId"]);
        Assert.NotNull((string?)ended["conversations"]![0]!["conversationEnd"]);
    }

    [Fact]
    public async Task InactivityLever_EndsAnIdleConversation_AfterItsTimeout_AsAnyOtherEnd()
    {
        // The server's clock is the test's: ten minutes of silence pass in no time, and each sweep is awaited, not slept on.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(clock: clock);
        var sweeper = server.Services.GetRequiredService<InactivitySweeper>();
        using var platform = await server.PlatformAsync();
        var (created, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "idle", inactivityTimeoutSeconds = 600 });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(600, (int)deployment!["inactivityTimeoutSeconds"]!);
        await using var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, deployment["id"]!.GetValue<string>());
        await guest.ConfigureAsync();
        await guest.SendTextAsync("hello?");

        // A second short of the timeout: a sweep runs and leaves the conversation alone (no Disconnect before the echo).
        clock.Advance(TimeSpan.FromSeconds(599));
        await sweeper.SweptAsync(clock.GetUtcNow()).WaitAsync(TimeSpan.FromSeconds(10));
        var t = guest.NextTracingId();
        await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = t, message = new { type = "Text", text = "ping" } });
        for (var frame = await guest.NextFrameAsync(); (string?)frame["tracingId"] != t; frame = await guest.NextFrameAsync())
            Assert.False(Frames.IsDisconnect(frame), "ended before its timeout");

        // Past the timeout: the next sweep ends it, and has told the guest and counted the socket by the time it is done.
        clock.Advance(TimeSpan.FromSeconds(2));
        await sweeper.SweptAsync(clock.GetUtcNow()).WaitAsync(TimeSpan.FromSeconds(10));
        var disconnect = await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        Assert.Equal("true", (string?)disconnect["body"]!["metadata"]!["readOnly"]);
        var conversationId = (string)disconnect["body"]!["metadata"]!["conversationId"]!;
        var conversation = await platform.ConversationAsync(conversationId);
        Assert.All(conversation["participants"]!.AsArray(), p => Assert.Equal("inactivity", (string?)p!["messages"]![0]!["disconnectType"]));
        var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        var record = audit!["entities"]!.AsArray().Single()!;
        Assert.Equal("Inactivity", (string?)record["lever"]);
        Assert.Equal("parley:inactivity", (string?)record["client"]!["id"]);
        Assert.Equal(1, (int)record["socketsNotified"]!);
        Assert.Equal(409, (int)(await guest.SendTextAsync("still there?"))["code"]!);
    }
}
