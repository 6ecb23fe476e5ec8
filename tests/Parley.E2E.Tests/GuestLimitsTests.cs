using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Limits on guests (issue 10 item 6, docs/guest-limits.md), each tested by the attack itself against a server with
/// the shipped limits: a burst from one session, a burst spread over many tokens from one address, listings asked for
/// everything at once, a session resumed after its lifetime, a history read racing the guest's Clear.
/// </summary>
public sealed class GuestLimitsTests
{
    static Task<ParleyServer> StartShippedAsync(Func<ParleyOptions, ParleyOptions>? more = null, TimeProvider? clock = null) =>
        ParleyServer.StartAsync(o => more is null ? ParleyServer.ShippedGuestLimits(o) : more(ParleyServer.ShippedGuestLimits(o)), clock: clock);

    /// <summary>Sends every request, then reads one reply per tracingId: the echo (accepted) or an error frame.</summary>
    static async Task<(List<JsonObject> Accepted, List<JsonObject> Refused, TimeSpan Elapsed)> BurstAsync(TestGuest guest, int count)
    {
        var watch = Stopwatch.StartNew();
        var ids = new List<string>();
        for (var i = 0; i < count; i++) ids.Add(await guest.SendTextNoWaitAsync($"burst {i}"));
        var replies = new Dictionary<string, JsonObject>();
        while (replies.Count < ids.Count)
        {
            var frame = await guest.NextAsync(f => f["tracingId"] is JsonValue v && ids.Contains((string)v!));
            replies[(string)frame["tracingId"]!] = frame;
        }
        watch.Stop();
        var accepted = replies.Values.Where(f => (string?)f["class"] == "StructuredMessage" && (string?)f["type"] == "message").ToList();
        var refused = replies.Values.Where(f => (string?)f["class"] != "StructuredMessage").ToList();
        return (accepted, refused, watch.Elapsed);
    }

    static async Task<int> StoredGuestMessagesAsync(PlatformClient platform, string conversationId)
    {
        var conversation = await platform.ConversationAsync(conversationId);
        var customer = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        return customer["messages"]![0]!["messages"]!.AsArray().Count;
    }

    [Fact]
    public async Task DefaultRate_ABurstOf30FromOneSession_GetsTwoPerSecond_TheRestTooManyRequests_AndNothingRefusedIsStored()
    {
        await using var server = await StartShippedAsync();
        using var platform = await server.PlatformAsync();
        var (_, demo) = await platform.GetAsync($"/api/v2/parley/deployments/{ParleyServer.DeploymentId}");
        Assert.Equal(2, (int)demo!["guestMessagesPerSecond"]!);   // the platform's value, with nothing configured
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();

        var (accepted, refused, elapsed) = await BurstAsync(guest, 30);

        // A burst of the rate (2), then 2 per second of the burst's duration.
        Assert.InRange(accepted.Count, 2, 2 + (int)Math.Ceiling(2 * elapsed.TotalSeconds));
        Assert.Equal(30 - accepted.Count, refused.Count);
        Assert.All(refused, f =>
        {
            Assert.Equal("TooManyRequestsErrorMessage", (string?)f["class"]);
            Assert.Equal(429, (int)f["code"]!);
            Assert.Equal(4029, (int)f["body"]!["errorCode"]!);
            Assert.Equal("Message rate too high for this session", (string?)f["body"]!["errorMessage"]);
            Assert.InRange((int)f["body"]!["retryAfter"]!, 1, 1);
        });
        var conversationId = await platform.ConversationOfSessionAsync(await guest.SessionIdAsync());
        Assert.Equal(accepted.Count, await StoredGuestMessagesAsync(platform, conversationId));

        // After retryAfter the session may send again: a limit, not a ban.
        await Task.Delay(TimeSpan.FromSeconds(1.1));
        Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("after the wait"))["class"]);
        Assert.Equal(accepted.Count + 1, await StoredGuestMessagesAsync(platform, conversationId));
    }

    [Fact]
    public async Task ADeployment_RaisesItsRateExplicitly_AndCannotTurnItOff()
    {
        await using var server = await StartShippedAsync();
        using var platform = await server.PlatformAsync();
        var (unset, plain) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "plain" });
        Assert.Equal(201, (int)unset.StatusCode);
        Assert.Equal(2, (int)plain!["guestMessagesPerSecond"]!);
        var (off, error) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "unlimited", guestMessagesPerSecond = 0 });
        Assert.Equal(400, (int)off.StatusCode);
        Assert.Equal("invalid.value", (string?)error!["code"]);
        var (_, raised) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "kiosk", guestMessagesPerSecond = 20 });
        await using var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, raised!["id"]!.GetValue<string>());
        await guest.ConfigureAsync();

        var (accepted, _, _) = await BurstAsync(guest, 10);

        Assert.Equal(10, accepted.Count);
    }

    [Fact]
    public async Task SwitchingTokens_FromOneAddress_DoesNotRaiseTheAggregateBeyondThePerAddressCap()
    {
        // The cap is lowered for the test so it is reached in a second; the default (50/s) works the same way.
        await using var server = await StartShippedAsync(o => o with { GuestMessagesPerAddressPerSecond = 5 });
        using var platform = await server.PlatformAsync();
        await using var socket = await server.GuestAsync();
        var watch = Stopwatch.StartNew();
        var accepted = 0;
        var refusedForAddress = 0;

        // One socket, a fresh token every two messages: each session stays within its own 2 per second.
        for (var n = 0; n < 20; n++)
        {
            var token = Guid.NewGuid().ToString();
            var t = socket.NextTracingId();
            var configured = await socket.RequestAsync(new
            {
                action = "configureSession", token, deploymentId = ParleyServer.DeploymentId, tracingId = t,
            }, t);
            Assert.Equal("SessionResponse", (string?)configured["class"]);
            for (var i = 0; i < 2; i++)
            {
                var m = socket.NextTracingId();
                var reply = await socket.RequestAsync(new
                {
                    action = "onMessage", token, tracingId = m, message = new { type = "Text", text = $"token {n} #{i}" },
                }, m);
                if ((string?)reply["class"] == "StructuredMessage") accepted++;
                else
                {
                    Assert.Equal(429, (int)reply["code"]!);
                    Assert.Equal("Message rate too high for this client address", (string?)reply["body"]!["errorMessage"]);
                    refusedForAddress++;
                }
            }
        }
        watch.Stop();

        // Burst 10 (two seconds' worth), then 5 per second: 40 attempts, nowhere near 40 accepted.
        Assert.InRange(accepted, 10, 10 + (int)Math.Ceiling(5 * watch.Elapsed.TotalSeconds));
        Assert.Equal(40 - accepted, refusedForAddress);
        var (_, listing) = await platform.GetAsync("/api/v2/conversations/messages?pageSize=100");
        var stored = listing!["entities"]!.AsArray().Sum(c => c!["participants"]!.AsArray()
            .Where(p => (string?)p!["purpose"] == "customer").Sum(p => p!["messages"]!.AsArray().Count));
        Assert.Equal(accepted, stored);

        // The cap is per address, not global: a guest on another address is served at once.
        await using var neighbour = await TestGuest.ConnectAsync(server.BaseAddress, Guid.NewGuid().ToString(), null, ParleyServer.DeploymentId,
            IPAddress.Parse("127.0.0.2"));
        await neighbour.ConfigureAsync();
        Assert.Equal("StructuredMessage", (string?)(await neighbour.SendTextAsync("from next door"))["class"]);
    }

    [Fact]
    public async Task Listings_AskedForEverything_AreRefused_AndEveryPageIsBounded()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var guests = new List<TestGuest>();
        for (var i = 0; i < 12; i++)
        {
            var g = await server.GuestAsync();
            await g.ConfigureAsync();
            guests.Add(g);
        }
        // One long conversation: the bot writes far more than a listing may carry.
        var sessionId = await guests[0].SessionIdAsync();
        var conversationId = (string)(await platform.StartConversationAsync(sessionId, "first"))["conversationId"]!;
        for (var i = 0; i < 60; i++)
        {
            var (sent, _) = await platform.PostAsync(
                $"/api/v2/conversations/messages/{conversationId}/communications/{await CommunicationAsync(platform, conversationId)}/messages",
                new { textBody = $"bot {i}" });
            Assert.Equal(200, (int)sent.StatusCode);
        }

        // Every listing refuses a page size above its maximum, in the platform's error form.
        foreach (var path in new[]
        {
            "/api/v2/parley/webmessaging/sessions?pageSize=1000000", "/api/v2/conversations/messages?pageSize=101",
            "/api/v2/parley/deployments?pageSize=101", "/api/v2/parley/audit/terminations?pageSize=101",
            "/api/v2/parley/openmessaging/deliveries?pageSize=101", "/api/v2/conversations/messaging/integrations/open?pageSize=501",
            "/api/v2/parley/webmessaging/sessions?pageNumber=0", "/api/v2/oauth/clients?pageSize=101",
        })
        {
            var (refused, error) = await platform.GetAsync(path);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{path} answered {(int)refused.StatusCode}");
            Assert.Equal("invalid.value", (string?)error!["code"]);
        }
        var (analytics, analyticsError) = await platform.PostAsync("/api/v2/analytics/conversations/details/query",
            new { interval = "2020-01-01T00:00:00.000Z/2100-01-01T00:00:00.000Z", paging = new { pageSize = 101, pageNumber = 1 } });
        Assert.Equal(HttpStatusCode.BadRequest, analytics.StatusCode);
        Assert.Equal("invalid.value", (string?)analyticsError!["code"]);

        // The session listing pages (it ignored pageSize before).
        var (_, page) = await platform.GetAsync("/api/v2/parley/webmessaging/sessions?pageSize=5&pageNumber=2");
        Assert.Equal(5, page!["entities"]!.AsArray().Count);
        Assert.Equal(12, (long)page["total"]!);
        Assert.Equal(3, (int)page["pageCount"]!);
        var (_, defaultPage) = await platform.GetAsync("/api/v2/parley/webmessaging/sessions");
        Assert.Equal(25, (int)defaultPage!["pageSize"]!);
        var (_, deployments) = await platform.GetAsync("/api/v2/parley/deployments?pageSize=1");
        Assert.Single(deployments!["entities"]!.AsArray());

        // A listed conversation carries its most recent messages only; the conversation itself carries all 61.
        var (_, active) = await platform.GetAsync("/api/v2/conversations/messages?pageSize=100");
        var listed = active!["entities"]!.AsArray().Single(c => (string?)c!["id"] == conversationId)!;
        var listedMessages = listed["participants"]!.AsArray().Sum(p => p!["messages"]!.AsArray().Count);
        Assert.Equal(25, listedMessages);
        var (_, one) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}");
        Assert.Equal(61, one!["participants"]!.AsArray().Sum(p => p!["messages"]!.AsArray().Count));

        foreach (var g in guests) await g.DisposeAsync();
    }

    static async Task<string> CommunicationAsync(PlatformClient platform, string conversationId)
    {
        var conversation = await platform.ConversationAsync(conversationId);
        var bot = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!;
        return (string)bot["messages"]![0]!["id"]!;
    }

    /// <summary>The system clock, moved forward on demand: a session's three days pass in a test.</summary>
    sealed class MovableClock : TimeProvider
    {
        long _offsetTicks;
        public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow().AddTicks(Interlocked.Read(ref _offsetTicks));
    }

    [Fact]
    public async Task ExpiredSession_IsNotResumable_ItsSocketIsToldSessionExpired_AndItsJwtDoesNotOutliveIt()
    {
        var clock = new MovableClock();
        await using var server = await StartShippedAsync(o => o with { SessionDurationSeconds = 600 }, clock);
        await using var idle = await server.GuestAsync();
        var configured = await idle.ConfigureAsync();
        Assert.Equal(600, (long)configured["body"]!["durationSeconds"]!);
        var expirationDate = (long)configured["body"]!["expirationDate"]!;
        Assert.InRange(expirationDate - clock.GetUtcNow().ToUnixTimeSeconds(), 598, 600);
        var t = idle.NextTracingId();
        var jwtReply = await idle.RequestAsync(new { action = "getJwt", token = idle.Token, tracingId = t }, t);
        var jwt = (string)jwtReply["body"]!["jwt"]!;
        Assert.True((long)jwtReply["body"]!["exp"]! <= expirationDate, "the history JWT must not outlive its session");
        using var history = new HttpClient { BaseAddress = server.BaseAddress };
        history.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", jwt);
        Assert.Equal(HttpStatusCode.OK, (await history.GetAsync("/api/v2/webmessaging/messages")).StatusCode);

        // An active session: its messages keep it alive (durationSeconds is a lifetime of inactivity).
        await using var active = await server.GuestAsync();
        await active.ConfigureAsync();
        clock.Advance(TimeSpan.FromSeconds(300));
        Assert.Equal("StructuredMessage", (string?)(await active.SendTextAsync("still here"))["class"]);
        clock.Advance(TimeSpan.FromSeconds(301));

        // The idle one is over: the held socket is told and closed, the JWT opens nothing, the token resumes nothing.
        var late = await idle.SendTextNoWaitAsync("three days later");
        var lateReply = await idle.NextFrameAsync();
        Assert.Equal(late, (string?)lateReply["tracingId"]);
        Assert.Equal(4006, (int)lateReply["code"]!);
        Assert.Equal("SessionExpiredEvent", (string?)(await idle.NextFrameAsync())["class"]);
        await idle.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(HttpStatusCode.Unauthorized, (await history.GetAsync("/api/v2/webmessaging/messages")).StatusCode);
        await using var resumed = await server.GuestAsync(idle.Token);
        var refused = await resumed.ConfigureAsync();
        Assert.Equal("string", (string?)refused["class"]);
        Assert.Equal(4006, (int)refused["code"]!);
        Assert.StartsWith("Session has expired", (string?)refused["body"]);
        var again = await resumed.ConfigureAsync(startNew: true);
        Assert.Equal(4006, (int)again["code"]!);

        await using var activeAgain = await server.GuestAsync(active.Token);
        var resumedActive = await activeAgain.ConfigureAsync();
        Assert.Equal("SessionResponse", (string?)resumedActive["class"]);
        Assert.False(resumedActive["body"]!["newSession"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("""{"action":"onMessage","token":12345,"tracingId":"t-numeric-token","message":{"type":"Text","text":"hi"}}""", "t-numeric-token")]
    [InlineData("""{"tracingId":"t-object-token","action":"configureSession","token":{"nested":true},"deploymentId":"x"}""", "t-object-token")]
    [InlineData("""{"action":"getJwt","token":["a"],"tracingId":"t-array-token"}""", "t-array-token")]
    public async Task MalformedToken_ErrorFrameCarriesTheTracingId(string frame, string tracingId)
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await server.GuestAsync();

        await guest.SendRawAsync(frame);

        var error = await guest.NextFrameAsync();
        Assert.Equal("string", (string?)error["class"]);
        Assert.Equal(400, (int)error["code"]!);
        Assert.Equal(tracingId, (string?)error["tracingId"]);
        Assert.Equal("SessionResponse", (string?)(await guest.ConfigureAsync())["class"]);   // and the socket keeps serving
    }

    [Fact]
    public async Task History_IsRefusedImmediatelyAfterClear_NotWhenTheSessionRowIsGone()
    {
        await using var server = await ParleyServer.StartAsync();
        using var history = new HttpClient { BaseAddress = server.BaseAddress };
        // Several guests at once: each reads its history the moment it hears anything after its Clear.
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            await using var guest = await server.GuestAsync();
            await guest.ConfigureAsync();
            await guest.SendTextAsync("a message, so there is a conversation to end");
            var jwt = await guest.JwtAsync();
            var request = () => new HttpRequestMessage(HttpMethod.Get, "/api/v2/webmessaging/messages")
            {
                Headers = { Authorization = new AuthenticationHeaderValue("Bearer", jwt) },
            };
            var before = (await history.SendAsync(request())).StatusCode;
            var t = guest.NextTracingId();
            await guest.SendAsync(new
            {
                action = "onMessage", token = guest.Token, tracingId = t,
                message = new { type = "Event", events = new[] { new { eventType = "Presence", presence = new { type = "Clear" } } } },
            });
            // The first thing the guest hears of its Clear is SessionClearedEvent: from then on its JWT opens nothing.
            Assert.Equal("SessionClearedEvent", (string?)(await guest.NextFrameAsync())["class"]);
            var after = (await history.SendAsync(request())).StatusCode;
            await guest.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(5));
            var afterClosed = (await history.SendAsync(request())).StatusCode;
            return (before, after, afterClosed);
        }));

        Assert.All(outcomes, o =>
        {
            Assert.Equal(HttpStatusCode.OK, o.before);
            Assert.Equal(HttpStatusCode.Unauthorized, o.after);
            Assert.Equal(HttpStatusCode.Unauthorized, o.afterClosed);
        });
    }
}
