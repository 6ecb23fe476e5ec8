using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Parley.E2E.Tests;
using Parley.Server;
using Xunit.Abstractions;

namespace Parley.Browser.Tests;

/// <summary>
/// The operations console (/console/, docs/console.md) in headless Chromium against a real Parley on loopback: sign-in
/// with the authorization code and PKCE, the live list fed by the Notifications API's queue topic, the transcript,
/// Terminate, the audit and the charts — issue 13's first scenario — and the console's errors and reconnection.
/// Screenshots of each step go to artifacts/screenshots/.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ConsoleTests(BrowserFixture browser, ITestOutputHelper output)
{
    const string AdminPassword = "console-test-password";
    const string Reason = "compliance: the bot has finished";

    static Task<ParleyServer> StartServerAsync(Func<ParleyOptions, ParleyOptions>? configure = null, Action<WebApplication>? beforeStart = null) =>
        // A known admin password; the fewest PBKDF2 iterations Parley accepts, for a quick sign-in on a loaded machine.
        ParleyServer.StartAsync(o => (configure ?? (x => x))(o with { DemoAdminPassword = AdminPassword, PasswordIterations = 100_000 }),
            beforeStart: beforeStart);

    [Fact]
    public async Task Scenario_BotConversation_TerminatedFromTheConsole_EndsTheMessengerAtOnce_AndLeavesTheList_AuditAndChartsShowIt()
    {
        await using var server = await StartServerAsync();
        var (consoleContext, console) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = consoleContext;
        var (guestContext, messenger) = await browser.NewPageAsync(server.BaseAddress);
        await using var __ = guestContext;
        var errors = new List<string>();
        console.PageError += (_, e) => errors.Add(e);
        messenger.PageError += (_, e) => errors.Add(e);
        await console.SetViewportSizeAsync(1280, 800);   // the README shows these screenshots

        // 1. A supervisor signs in to the console (the admin here); the live stream is up before any conversation exists.
        await SignInAsync(console, "admin", AdminPassword);
        await Assertions.Expect(console.Locator("#user-name")).ToHaveTextAsync("Administrator");
        await Assertions.Expect(console.Locator("#stream-status")).ToHaveAttributeAsync("data-state", "live");
        await Assertions.Expect(console.Locator("#live-empty")).ToBeVisibleAsync();
        await console.EvaluateAsync("() => { window.sameDocument = true; }");   // a reload would erase it
        await Screenshots.SaveAsync(console, "1-console-signed-in");

        // 2. A guest opens the messenger; 3. the bot starts the conversation through the Platform API (agentless outbound).
        await messenger.GotoAsync("/messenger/");
        await Assertions.Expect(messenger.Locator("#status")).ToHaveAttributeAsync("data-state", "connected");
        using var bot = await server.PlatformAsync();
        var (sessions, list) = await bot.GetAsync($"/api/v2/parley/webmessaging/sessions?deploymentId={ParleyServer.DeploymentId}");
        Assert.Equal(HttpStatusCode.OK, sessions.StatusCode);
        var sessionId = list!["entities"]!.AsArray().Single()!["id"]!.GetValue<string>();
        var conversationId = (await bot.StartConversationAsync(sessionId, "Hello, this is the bot"))["conversationId"]!.GetValue<string>();

        // Both pages show it: the console's row can only come from the stream (its snapshot was read before this began).
        var row = console.Locator($"#live-list li[data-conversation-id='{conversationId}']");
        await Assertions.Expect(row).ToBeVisibleAsync();
        await Assertions.Expect(messenger.Locator(".message.outbound .text").Last).ToHaveTextAsync("Hello, this is the bot");

        // 4. The guest answers; the console's transcript, open on the conversation, shows both sides as they come.
        await row.Locator("button").ClickAsync();
        await Assertions.Expect(console.Locator("#messages .msg.outbound", new() { HasText = "Hello, this is the bot" })).ToBeVisibleAsync();
        await messenger.Locator("#input").FillAsync("Hi bot, the guest here");
        await messenger.Locator("#send").ClickAsync();
        await Assertions.Expect(console.Locator("#messages .msg.inbound", new() { HasText = "Hi bot, the guest here" })).ToBeVisibleAsync();
        await Assertions.Expect(messenger.Locator(".message.inbound:not(.pending)", new() { HasText = "Hi bot, the guest here" })).ToBeVisibleAsync();
        await Screenshots.SaveAsync(console, "2-console-transcript");
        await Screenshots.SaveAsync(messenger, "2-messenger-conversation");

        // 5. Terminate with a reason. The click's time is taken in the console page and the end's in the messenger page
        // (one machine clock): the moment its input is disabled and the end is on screen, seen by a MutationObserver.
        await messenger.EvaluateAsync("""
            () => {
              const ended = () => document.getElementById('input').disabled && !document.getElementById('ended').hidden;
              new MutationObserver(() => { if (window.endedAt === undefined && ended()) window.endedAt = Date.now(); })
                .observe(document.body, { subtree: true, attributes: true, childList: true });
            }
            """);
        await console.EvaluateAsync("() => document.getElementById('terminate').addEventListener('click', () => { window.clickedAt = Date.now(); }, { capture: true })");
        await console.Locator("#terminate-reason").FillAsync(Reason);
        var roundTrip = Stopwatch.StartNew();
        await console.Locator("#terminate").ClickAsync();
        await messenger.WaitForFunctionAsync("() => window.endedAt !== undefined", null, new() { PollingInterval = 10, Timeout = 5_000 });
        roundTrip.Stop();
        var clickToEnded = await messenger.EvaluateAsync<double>("() => window.endedAt") - await console.EvaluateAsync<double>("() => window.clickedAt");
        output.WriteLine($"Terminate click (console) to ended state with input disabled (messenger): {clickToEnded:0} ms; {roundTrip.ElapsedMilliseconds} ms with Playwright's round trips");
        Console.WriteLine($"Console: Terminate click to the messenger's ended state with input disabled: {clickToEnded:0} ms");
        Assert.InRange(clickToEnded, 0, 1000);
        await Assertions.Expect(messenger.Locator("#status")).ToHaveAttributeAsync("data-state", "ended");
        await Assertions.Expect(messenger.Locator("#send")).ToBeDisabledAsync();

        // The console: the answer is shown, and the end event took the row off the list without a reload.
        await Assertions.Expect(console.Locator("#terminate-result")).ToHaveTextAsync("Ended. 1 guest socket was told before the answer.");
        await Assertions.Expect(row).ToHaveCountAsync(0);
        await Assertions.Expect(console.Locator("#live-count")).ToHaveTextAsync("0");
        await Assertions.Expect(console.Locator("#transcript-state")).ToHaveTextAsync("ended");
        Assert.True(await console.EvaluateAsync<bool>("() => window.sameDocument === true"), "the console reloaded");
        await Screenshots.SaveAsync(console, "3-console-terminated");
        await Screenshots.SaveAsync(messenger, "3-messenger-ended");

        // 6. The audit names the signed-in user, the lever and the reason.
        await console.Locator("a[data-view='audit']").ClickAsync();
        var audit = console.Locator($"#audit tbody tr[data-conversation-id='{conversationId}']");
        await Assertions.Expect(audit).ToContainTextAsync(Reason);
        await Assertions.Expect(audit).ToContainTextAsync("ConversationPatch");
        await Assertions.Expect(audit.Locator(".by")).ToHaveTextAsync("Administrator");
        await Screenshots.SaveAsync(console, "4-console-audit");

        // 7. The charts draw this test's data: this server has had exactly this one conversation.
        await console.Locator("a[data-view='analytics']").ClickAsync();
        await Assertions.Expect(console.Locator("#analytics-summary")).ToHaveAttributeAsync("data-total", "1");
        await Assertions.Expect(console.Locator("#chart-timeline")).ToHaveAttributeAsync("aria-label", new Regex("started .*=1; ended .*=1"));
        await Assertions.Expect(console.Locator("#chart-durations")).ToHaveAttributeAsync("data-total", "1");
        await Assertions.Expect(console.Locator("#chart-disconnects")).ToHaveAttributeAsync("data-total", "1");
        await Assertions.Expect(console.Locator("#chart-levers")).ToHaveAttributeAsync("aria-label", new Regex("ConversationPatch=1"));
        await Assertions.Expect(console.Locator("#chart-reasons")).ToHaveAttributeAsync("aria-label", new Regex(Regex.Escape(Reason) + "=1"));
        Assert.True(await console.EvaluateAsync<bool>(EveryChartHasPixels), "a chart's canvas is blank");
        await Screenshots.SaveAsync(console, "5-console-analytics");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task LiveList_CatchesUp_AfterTheNotificationSocketDrops()
    {
        await using var server = await StartServerAsync();
        var (context, console) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        IWebSocketRoute? socket = null;
        await console.RouteWebSocketAsync(new Regex("/channels/"), ws => { socket = ws; ws.ConnectToServer(); });
        await SignInAsync(console, "admin", AdminPassword);
        await Assertions.Expect(console.Locator("#stream-status")).ToHaveAttributeAsync("data-state", "live");

        // The socket drops, and the way back is barred for a while: the channel check fails.
        var barred = new TaskCompletionSource();
        await console.RouteAsync("**/api/v2/notifications/channels/**", async route =>
        {
            barred.TrySetResult();
            await route.FulfillAsync(new() { Status = 503, ContentType = "application/json", Body = """{"message":"unavailable","code":"service.unavailable","status":503}""" });
        });
        await socket!.CloseAsync();
        await Assertions.Expect(console.Locator("#stream-status")).ToHaveAttributeAsync("data-state", "reconnecting");
        await barred.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Assertions.Expect(console.Locator("#banner")).ToContainTextAsync("Live updates interrupted");

        // Meanwhile a conversation starts: no event can reach the console for it.
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        using var bot = await server.PlatformAsync();
        var conversationId = (await bot.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();

        // Open again: the console reconnects, reads the state again, and its new socket carries the next event.
        await console.UnrouteAsync("**/api/v2/notifications/channels/**");
        var row = console.Locator($"#live-list li[data-conversation-id='{conversationId}']");
        await Assertions.Expect(row).ToBeVisibleAsync(new() { Timeout = 20_000 });
        await Assertions.Expect(console.Locator("#stream-status")).ToHaveAttributeAsync("data-state", "live");
        await guest.SendTextAsync("still there?");
        await Assertions.Expect(row).ToContainTextAsync("2 messages");
        await Screenshots.SaveAsync(console, "reconnected");
    }

    [Fact]
    public async Task SignIn_AnswerWithAForeignState_IsRefused_BeforeAnyCodeExchange()
    {
        await using var server = await StartServerAsync();
        var (context, console) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var exchanges = 0;
        console.Request += (_, r) => { if (r.Url.Contains("/oauth/token")) exchanges++; };

        // A redirect this tab never asked for (a forged or replayed answer): the code must not be redeemed.
        await console.GotoAsync("/console/?code=stolen-code&state=not-ours");
        await Assertions.Expect(console.Locator("#signin-message")).ToContainTextAsync("state mismatch");
        await Assertions.Expect(console.Locator("#app")).ToBeHiddenAsync();
        Assert.Equal(0, exchanges);
        Assert.DoesNotContain("stolen-code", console.Url);   // taken out of the address bar

        // A refused authorization comes back as error=…: shown as such.
        await console.GotoAsync("/console/?error=access_denied&error_description=The+user+declined");
        await Assertions.Expect(console.Locator("#signin-message")).ToHaveTextAsync("Sign-in refused: The user declined");
    }

    [Fact]
    public async Task ATokenTheServerRefuses_SendsTheConsoleBackToSignIn_AndSignOutForgetsTheToken()
    {
        await using var server = await StartServerAsync();
        var (context, console) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        await SignInAsync(console, "admin", AdminPassword);
        await Assertions.Expect(console.Locator("#stream-status")).ToHaveAttributeAsync("data-state", "live");

        // The token is no longer honoured (here: damaged in place); the next call answers 401.
        await console.EvaluateAsync("""
            () => {
              const saved = JSON.parse(sessionStorage.getItem('parley.console.token'));
              sessionStorage.setItem('parley.console.token', JSON.stringify({ ...saved, token: saved.token.slice(0, -4) + 'AAAA' }));
            }
            """);
        await console.Locator("a[data-view='audit']").ClickAsync();
        await Assertions.Expect(console.Locator("#signin-message")).ToContainTextAsync("Your session has ended");
        await Assertions.Expect(console.Locator("#app")).ToBeHiddenAsync();
        Assert.Null(await console.EvaluateAsync<string?>("() => sessionStorage.getItem('parley.console.token')"));

        // Signing in again works; signing out forgets the token.
        await console.Locator("#signin-button").ClickAsync();
        await LogInAsync(console, "admin", AdminPassword);
        await Assertions.Expect(console.Locator("#user-name")).ToHaveTextAsync("Administrator");
        await console.Locator("#logout").ClickAsync();
        await Assertions.Expect(console.Locator("#signin-message")).ToHaveTextAsync("Signed out.");
        Assert.Null(await console.EvaluateAsync<string?>("() => sessionStorage.getItem('parley.console.token')"));
    }

    [Fact]
    public async Task AUserWhoseRoleMayNotWatchQueues_IsToldSo()
    {
        await using var server = await StartServerAsync();
        using var admin = await server.PlatformAsync();
        var (created, _) = await admin.PostAsync("/api/v2/users", new { name = "Nobody Special", username = "nobody", password = "nobody-password", roles = Array.Empty<string>() });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var (context, console) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;

        await SignInAsync(console, "nobody", "nobody-password");
        await Assertions.Expect(console.Locator("#user-name")).ToHaveTextAsync("Nobody Special");
        await Assertions.Expect(console.Locator("#banner")).ToContainTextAsync("Your role may not list the queues");
        await Assertions.Expect(console.Locator("#banner")).ToContainTextAsync("routing:queue:view");
        await Assertions.Expect(console.Locator("#stream-status")).ToHaveAttributeAsync("data-state", "stopped");   // no retrying a refusal
        await Screenshots.SaveAsync(console, "forbidden");
    }

    [Fact]
    public async Task DeadLetter_ASupervisorMayNotRedeliverIt_AnAdminDoes()
    {
        // A webhook to a path Parley itself answers 404 on: a 4xx is not retried, so the delivery is dead at once.
        var attempts = System.Threading.Channels.Channel.CreateUnbounded<int>();
        await using var server = await StartServerAsync(o => o with { WebhooksAllowPrivateNetworks = true }, app => app.Use((http, next) =>
        {
            if (http.Request.Path == "/no-such-webhook") attempts.Writer.TryWrite(1);
            return next(http);
        }));
        using var platform = await server.PlatformAsync();
        var (integration, created) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Partner channel", outboundNotificationWebhookUrl = new Uri(server.BaseAddress, "/no-such-webhook").ToString(),
            outboundNotificationWebhookSignatureSecretToken = "a-secret-of-twenty-chars",
        });
        Assert.Equal(HttpStatusCode.OK, integration.StatusCode);
        var integrationId = created!["id"]!.GetValue<string>();
        var (sent, _) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = integrationId, toAddress = "+15550100", toAddressMessengerType = "open", textBody = "to a partner that refuses",
        });
        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        await attempts.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        var deliveryId = (await DeliveryAsync(platform, integrationId, "Dead"))["id"]!.GetValue<string>();
        var (supervisor, _) = await platform.PostAsync("/api/v2/users", new { name = "Sam Supervisor", username = "sam", password = "sam-password", roles = new[] { "supervisor" } });
        Assert.Equal(HttpStatusCode.OK, supervisor.StatusCode);

        // The supervisor sees the dead letter, and is told its role may not send it again.
        var (samContext, sam) = await browser.NewPageAsync(server.BaseAddress);
        await using (samContext)
        {
            await SignInAsync(sam, "sam", "sam-password");
            await sam.Locator("a[data-view='deliveries']").ClickAsync();
            var row = sam.Locator($"#deliveries tbody tr[data-delivery-id='{deliveryId}']");
            await Assertions.Expect(row).ToContainTextAsync("404");
            await row.Locator("button").ClickAsync();
            await Assertions.Expect(sam.Locator("#banner")).ToContainTextAsync("Your role may not redeliver this webhook");
            await Assertions.Expect(sam.Locator("#banner")).ToContainTextAsync("messaging:integration:edit");
            await Screenshots.SaveAsync(sam, "supervisor-refused");
        }
        Assert.Equal(1, (int)(await DeliveryAsync(platform, integrationId, "Dead"))["attempts"]!);
        Assert.False(attempts.Reader.TryRead(out var __), "the refused redelivery was sent");

        // The admin redelivers it: one more attempt (refused again by the same receiver).
        var (context, console) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        await SignInAsync(console, "admin", AdminPassword);
        await console.Locator("a[data-view='deliveries']").ClickAsync();
        var mine = console.Locator($"#deliveries tbody tr[data-delivery-id='{deliveryId}']");
        await mine.Locator("button").ClickAsync();
        await Assertions.Expect(mine).ToContainTextAsync("queued again");
        await attempts.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));   // sent again
        await DeliveryAsync(platform, integrationId, "Dead");   // and refused again
        await Screenshots.SaveAsync(console, "admin-redelivered");
    }

    /// <summary>The integration's delivery in that state; polled, as the outbox has no push notification to wait on.</summary>
    static async Task<System.Text.Json.Nodes.JsonNode> DeliveryAsync(PlatformClient platform, string integrationId, string state, int attemptsAtLeast = 1)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var (_, list) = await platform.GetAsync($"/api/v2/parley/openmessaging/deliveries?state={state}&integrationId={integrationId}");
            if (list!["entities"]!.AsArray().FirstOrDefault(d => (int)d!["attempts"]! >= attemptsAtLeast) is { } found) return found;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No {state} delivery for {integrationId} after {attemptsAtLeast} attempts.");
            await Task.Delay(50);
        }
    }

    /// <summary>Opens the console, follows Sign in to Parley's login page, logs in and waits for the console to come back.</summary>
    static async Task SignInAsync(IPage console, string username, string password)
    {
        await console.GotoAsync("/console/");
        await console.Locator("#signin-button").ClickAsync();
        await LogInAsync(console, username, password);
    }

    static async Task LogInAsync(IPage page, string username, string password)
    {
        await page.Locator("#username").FillAsync(username);
        await page.Locator("#password").FillAsync(password);
        await page.Locator("button[type=submit]").ClickAsync();
        await Assertions.Expect(page.Locator("#user-name")).ToBeVisibleAsync();
        // Back on the console (on the view it left from), the code and state gone from the address.
        Assert.Matches(@"/console/(#\w+)?$", page.Url);
    }

    const string EveryChartHasPixels = """
        () => [...document.querySelectorAll('.charts canvas')].every(canvas => {
          const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
          return false;
        })
        """;
}
