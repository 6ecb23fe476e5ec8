using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Parley.E2E.Tests;
using Parley.Server;
using Xunit.Abstractions;

namespace Parley.Browser.Tests;

/// <summary>
/// The messenger page (/messenger/) and the guest library in headless Chromium against a real Parley on loopback: both
/// sides' messages and typing, the end of the conversation, a reload, a dropped socket, the guest rate and a full server.
/// Screenshots of each step go to artifacts/screenshots/.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class MessengerTests(BrowserFixture browser, ITestOutputHelper output)
{
    static readonly string TokenKey = $"parley.guest.{ParleyServer.DeploymentId}";

    [Fact]
    public async Task BotAndGuestMessagesAndTyping_AreShown_AndTheGuestsMessageIsStored()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;

        var conversationId = await OpenAndStartAsync(server, platform, page, "Hello from the bot");
        await Screenshots.SaveAsync(page, "1-bot-message");

        // The bot types: the page says so.
        var bot = (await platform.ConversationAsync(conversationId))["participants"]!.AsArray()
            .Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!.GetValue<string>();
        var (typing, _) = await platform.PostAsync($"/api/v2/conversations/messages/{conversationId}/communications/{bot}/typing",
            new { typing = new { type = "On" } });
        Assert.Equal(HttpStatusCode.Accepted, typing.StatusCode);
        await Assertions.Expect(page.Locator("#typing")).ToBeVisibleAsync();
        await Screenshots.SaveAsync(page, "2-bot-typing");

        // The guest answers: shown once stored, and stored under the id the page shows.
        await page.Locator("#input").FillAsync("I would like to know more");
        await page.Locator("#send").ClickAsync();
        var mine = page.Locator(".message.inbound:not(.pending)").Filter(new() { HasText = "I would like to know more" });
        await Assertions.Expect(mine).ToHaveCountAsync(1);
        var id = await mine.GetAttributeAsync("data-id");
        Assert.False(string.IsNullOrEmpty(id));
        var (stored, message) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}/messages/{id}");
        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        Assert.Equal("I would like to know more", (string?)message!["textBody"]);
        Assert.Equal("inbound", (string?)message["direction"]);
        await Screenshots.SaveAsync(page, "3-guest-answer");
    }

    [Fact]
    public async Task Termination_ShowsTheEnd_AndDisablesInput_WithinASecond()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var conversationId = await OpenAndStartAsync(server, platform, page, "Your order has shipped");
        Assert.True(await page.Locator("#input").IsEnabledAsync());

        var clock = Stopwatch.StartNew();
        var (response, _) = await platform.PostAsync($"/api/v2/conversations/{conversationId}/disconnect");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        // Polled by the page's own animation frames: the moment the input is disabled and the end is on screen.
        await page.WaitForFunctionAsync("() => document.getElementById('input').disabled && !document.getElementById('ended').hidden",
            null, new() { PollingInterval = 10, Timeout = 5000 });
        var elapsed = clock.Elapsed;
        output.WriteLine($"termination to ended state with input disabled: {elapsed.TotalMilliseconds:0} ms");
        Console.WriteLine($"Messenger: termination (Platform API) to ended state with input disabled: {elapsed.TotalMilliseconds:0} ms");
        await Screenshots.SaveAsync(page, "ended");

        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"the ended state took {elapsed.TotalMilliseconds:0} ms");
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "ended");
        await Assertions.Expect(page.Locator("#ended-text")).ToHaveTextAsync("This conversation has ended.");
        await Assertions.Expect(page.Locator("#send")).ToBeDisabledAsync();
        // ReadOnly (the demo deployment's mode): no new conversation is offered.
        await Assertions.Expect(page.Locator("#new-conversation")).ToBeHiddenAsync();

        // A reload stays ended: the session answers readOnly.
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "ended");
        await Assertions.Expect(page.Locator("#input")).ToBeDisabledAsync();
        await Assertions.Expect(page.Locator(".message.outbound")).ToContainTextAsync("Your order has shipped");
    }

    [Fact]
    public async Task Reload_ResumesTheSameConversation_WithItsTranscript()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var conversationId = await OpenAndStartAsync(server, platform, page, "Shall we talk?");
        await SendAsync(page, "before the reload");
        var token = await TokenAsync(page);

        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected");
        Assert.Equal(token, await TokenAsync(page));
        // The transcript comes back from the guest history API, in order.
        await Assertions.Expect(page.Locator(".message .text")).ToHaveTextAsync(["Shall we talk?", "before the reload"]);
        await SendAsync(page, "after the reload");
        await Screenshots.SaveAsync(page, "resumed");

        // Both guest messages, in the one conversation.
        Assert.Equal(["before the reload", "after the reload"], await StoredGuestMessagesAsync(platform, conversationId, page));
    }

    [Fact]
    public async Task ServerRestart_ShowsReconnecting_AndRecovers()
    {
        var port = FreePort();
        await using var server = await ParleyServer.StartAsync(args: ["--urls", $"http://127.0.0.1:{port}"]);
        using var platform = await server.PlatformAsync();
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        await OpenAndStartAsync(server, platform, page, "Before the restart");

        await server.RestartAsync(async () =>
        {
            // Down: the page says it is reconnecting, and the input is closed.
            await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "reconnecting");
            await Assertions.Expect(page.Locator("#input")).ToBeDisabledAsync();
            await Screenshots.SaveAsync(page, "reconnecting", nameof(ServerRestart_ShowsReconnecting_AndRecovers));
        });
        Assert.Equal(port, server.BaseAddress.Port);

        // Up again on the same address: connected again by itself, same session, and a message goes through.
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = 20_000 });
        await SendAsync(page, "after the restart");
        await Screenshots.SaveAsync(page, "recovered");
    }

    [Fact]
    public async Task TooManyMessages_ShowTheLimit_AndAreSentAfterTheWait()
    {
        // The shipped limits: 2 guest messages a second per session (docs/compatibility.md §Guest limits).
        await using var server = await ParleyServer.StartAsync(ParleyServer.ShippedGuestLimits);
        using var platform = await server.PlatformAsync();
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var conversationId = await OpenAndStartAsync(server, platform, page, "Ask away");

        var texts = Enumerable.Range(1, 4).Select(i => $"question {i}").ToArray();
        foreach (var text in texts)
        {
            await page.Locator("#input").FillAsync(text);
            await page.Locator("#input").PressAsync("Enter");
        }
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Sending too fast");
        await Screenshots.SaveAsync(page, "rate-limited");

        // Each one is sent after the server's retryAfter, and stored: nothing pending, nothing failed.
        await Assertions.Expect(page.Locator(".message.inbound:not(.pending)")).ToHaveCountAsync(4, new() { Timeout = 15_000 });
        await Assertions.Expect(page.Locator(".message.failed")).ToHaveCountAsync(0);
        Assert.Equal(texts, await StoredGuestMessagesAsync(platform, conversationId, page));
    }

    [Fact]
    public async Task FullServer_ShowsBusy_AndConnectsWhenAPlaceFrees()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { MaxGuestSockets = 1 });
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var occupant = await server.GuestAsync();
        await occupant.ConfigureAsync();

        await page.GotoAsync("/messenger/");
        // The browser sees only a failed WebSocket; the library asks over HTTP and learns it is the capacity (503).
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "unavailable");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("busy");
        await Assertions.Expect(page.Locator("#input")).ToBeDisabledAsync();
        await Screenshots.SaveAsync(page, "busy");

        await occupant.DisposeAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = 15_000 });
    }

    [Fact]
    public async Task SendModeEnd_OffersANewConversation_WhichStartsAfresh()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var origin = server.BaseAddress.GetLeftPart(UriPartial.Authority);
        var (created, deployment) = await platform.PostAsync("/api/v2/parley/deployments",
            new { name = "send mode", allowedOrigins = new[] { origin }, conversationDisconnect = new { enabled = true, type = "Send" } });
        Assert.True(created.IsSuccessStatusCode, deployment?.ToJsonString());
        var deploymentId = (string)deployment!["id"]!;
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var first = await OpenAndStartAsync(server, platform, page, "Anything else?", deploymentId);

        var (response, _) = await platform.PostAsync($"/api/v2/conversations/{first}/disconnect");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await Assertions.Expect(page.Locator("#new-conversation")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "ended");
        await Assertions.Expect(page.Locator("#input")).ToBeEnabledAsync();   // Send: writing again is allowed
        await Screenshots.SaveAsync(page, "ended-send");

        await page.Locator("#new-conversation").ClickAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected");
        await Assertions.Expect(page.Locator(".message")).ToHaveCountAsync(0);   // the old transcript is not shown again
        await SendAsync(page, "a new question");
        await Screenshots.SaveAsync(page, "new-conversation");

        // The new message lives in another conversation than the ended one.
        var id = await page.Locator(".message.inbound").GetAttributeAsync("data-id");
        var (inOld, _) = await platform.GetAsync($"/api/v2/conversations/messages/{first}/messages/{id}");
        Assert.Equal(HttpStatusCode.NotFound, inOld.StatusCode);
        var (_, active) = await platform.GetAsync("/api/v2/conversations/messages");
        var holders = new List<string>();
        foreach (var c in active!["entities"]!.AsArray().Select(c => (string)c!["id"]!))
            if ((await platform.GetAsync($"/api/v2/conversations/messages/{c}/messages/{id}")).Response.StatusCode == HttpStatusCode.OK) holders.Add(c);
        var second = Assert.Single(holders);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task RefusedOrigin_IsShown_NotRetriedForever()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "elsewhere", allowedOrigins = new[] { "https://shop.example" } });
        var (context, page) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;

        await page.GotoAsync($"/messenger/?deploymentId={(string)deployment!["id"]!}");
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "failed");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("not allowed");
        await Assertions.Expect(page.Locator("#input")).ToBeDisabledAsync();
        await Screenshots.SaveAsync(page, "origin-refused");
    }

    /// <summary>Opens the messenger, waits for its session, and has the bot start the conversation (its first message shown).</summary>
    static async Task<string> OpenAndStartAsync(ParleyServer server, PlatformClient platform, IPage page, string botText,
        string deploymentId = ParleyServer.DeploymentId)
    {
        await page.GotoAsync(deploymentId == ParleyServer.DeploymentId ? "/messenger/" : $"/messenger/?deploymentId={deploymentId}");
        await Assertions.Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected");
        // The bot's backend learns the guest's session id from the guest (here: a second socket of the same session).
        var token = await page.EvaluateAsync<string>($"() => localStorage.getItem('parley.guest.{deploymentId}')");
        await using var tab = await server.GuestAsync(token, origin: server.BaseAddress.GetLeftPart(UriPartial.Authority), deploymentId: deploymentId);
        await tab.ConfigureAsync();
        var started = await platform.StartConversationAsync(await tab.SessionIdAsync(), botText, deploymentId);
        await Assertions.Expect(page.Locator(".message.outbound .text").Last).ToHaveTextAsync(botText);
        return started["conversationId"]!.GetValue<string>();
    }

    static async Task SendAsync(IPage page, string text)
    {
        await page.Locator("#input").FillAsync(text);
        await page.Locator("#send").ClickAsync();
        await Assertions.Expect(page.Locator(".message.inbound:not(.pending)").Filter(new() { HasText = text })).ToHaveCountAsync(1);
    }

    /// <summary>The text the Platform API holds for each guest message the page shows, by the id the page shows.</summary>
    static async Task<List<string>> StoredGuestMessagesAsync(PlatformClient platform, string conversationId, IPage page)
    {
        var texts = new List<string>();
        foreach (var id in await page.Locator(".message.inbound:not(.pending)").EvaluateAllAsync<string[]>("items => items.map(i => i.dataset.id)"))
        {
            var (response, message) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}/messages/{id}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            texts.Add((string)message!["textBody"]!);
        }
        return texts;
    }

    static Task<string> TokenAsync(IPage page) => page.EvaluateAsync<string>($"() => localStorage.getItem('{TokenKey}')");

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
