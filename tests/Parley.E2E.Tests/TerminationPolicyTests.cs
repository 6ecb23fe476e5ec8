using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Parley.Server;
using Parley.Server.Terminations;

namespace Parley.E2E.Tests;

/// <summary>
/// Termination policies (docs/ending-sessions.md "Policies") over real sockets, on the server's injected clock: each type
/// ends the right conversations and only those, as any other termination (guests told, audit row with lever Policy and
/// client parley:policy:{id}, disconnectType system); the dry-run preview is what then happens.
/// </summary>
public sealed class TerminationPolicyTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    const string Root = "/api/v2/parley/terminationpolicies";

    sealed record Fixture(ParleyServer Server, FakeTimeProvider Clock, PlatformClient Platform, PolicySweeper Sweeper) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Platform.Dispose();
            await Server.DisposeAsync();
        }

        /// <summary>
        /// Moves the clock to <paramref name="to"/> and waits for a policy sweep at that instant to have finished. The move must be
        /// at least the sweep period (1 s): the sweeper's periodic timer then surely has a tick due.
        /// </summary>
        public async Task SweepAtAsync(DateTimeOffset to)
        {
            Clock.SetUtcNow(to);
            await Sweeper.SweptAsync(to).WaitAsync(Wait);
        }

        public async Task<string> DeploymentAsync(string name)
        {
            var (created, body) = await Platform.PostAsync("/api/v2/parley/deployments", new { name });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            return (string)body!["id"]!;
        }

        /// <summary>A guest on <paramref name="deploymentId"/> with a live conversation (started now, on the server's clock).</summary>
        public async Task<(TestGuest Guest, string ConversationId)> GuestAsync(string deploymentId)
        {
            var guest = await Server.GuestAsync(deploymentId: deploymentId);
            await guest.ConfigureAsync();
            await guest.SendTextAsync("hello");
            return (guest, await Platform.ConversationOfSessionAsync(await guest.SessionIdAsync()));
        }

        public async Task<JsonNode> CreatePolicyAsync(object body)
        {
            var (response, policy) = await Platform.PostAsync(Root, body);
            Assert.True(response.StatusCode == HttpStatusCode.Created, policy?.ToJsonString());
            return policy!;
        }
    }

    static async Task<Fixture> StartAsync(DateTimeOffset? at = null, Func<ParleyOptions, ParleyOptions>? configure = null)
    {
        var clock = new FakeTimeProvider(at ?? DateTimeOffset.UtcNow);
        var server = await ParleyServer.StartAsync(configure, clock: clock);
        return new Fixture(server, clock, await server.PlatformAsync(), server.Services.GetRequiredService<PolicySweeper>());
    }

    /// <summary>The guest is still live: an echo comes back with no Disconnect before it.</summary>
    static async Task AssertLiveAsync(TestGuest guest)
    {
        var t = guest.NextTracingId();
        await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = t, message = new { type = "Text", text = "ping" } });
        for (var frame = await guest.NextFrameAsync(); (string?)frame["tracingId"] != t; frame = await guest.NextFrameAsync())
            Assert.False(Frames.IsDisconnect(frame), "ended by a policy that should not have ended it");
    }

    /// <summary>Ended by the policy, as any other termination: Disconnect told, one audit row naming the policy, system on every participant.</summary>
    static async Task<string> AssertEndedByAsync(Fixture f, TestGuest? guest, string conversationId, JsonNode policy, string reason)
    {
        if (guest is not null)
        {
            var disconnect = await guest.NextAsync(Frames.IsDisconnect, Wait);
            Assert.Equal(conversationId, (string?)disconnect["body"]!["metadata"]!["conversationId"]);
        }
        var conversation = await f.Platform.ConversationAsync(conversationId);
        Assert.Equal("disconnected", (string?)conversation["state"]);
        Assert.All(conversation["participants"]!.AsArray(), p => Assert.Equal("system", (string?)p!["messages"]![0]!["disconnectType"]));
        var (_, analytics) = await f.Platform.GetAsync($"/api/v2/analytics/conversations/{conversationId}/details");
        Assert.All(analytics!["participants"]!.AsArray(), p => Assert.Equal("system", (string?)p!["sessions"]![0]!["segments"]![0]!["disconnectType"]));
        var (_, audit) = await f.Platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        var record = Assert.Single(audit!["entities"]!.AsArray())!;
        Assert.Equal("Policy", (string?)record["lever"]);
        Assert.Equal($"parley:policy:{policy["id"]}", (string?)record["client"]!["id"]);
        Assert.Equal(reason, (string?)record["reason"]);
        if (guest is not null) Assert.Equal(1, (int)record["socketsNotified"]!);
        return (string)conversation["endTime"]!;
    }

    static List<(string ConversationId, string EndsAt)> Entries(JsonNode preview) =>
        [.. preview["entities"]!.AsArray().Select(e => ((string)e!["conversationId"]!, (string)e["endsAt"]!))];

    [Fact]
    public async Task MaxDuration_EndsEachConversationOfItsDeployment_WhenItReachesTheLimit_AsThePreviewSaid_OthersKeepWorking()
    {
        await using var f = await StartAsync();
        var deployment = await f.DeploymentAsync("capped");
        var (first, firstId) = await f.GuestAsync(deployment);
        f.Clock.Advance(TimeSpan.FromSeconds(30));
        var (second, secondId) = await f.GuestAsync(deployment);
        var (elsewhere, _) = await f.GuestAsync(ParleyServer.DeploymentId);   // another deployment: never touched

        var policy = await f.CreatePolicyAsync(new { name = "two minutes", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 120,
            reason = "compliance: 2 minute cap" });
        Assert.Equal((true, 120, deployment), ((bool)policy["enabled"]!, (int)policy["maxDurationSeconds"]!, (string?)policy["deploymentId"]));

        // The dry run, before the clock moves: both, soonest first, each at its start + 120 s.
        var (previewed, preview) = await f.Platform.GetAsync($"{Root}/{policy["id"]}/preview");
        Assert.Equal(HttpStatusCode.OK, previewed.StatusCode);
        var entries = Entries(preview!);
        Assert.Equal([firstId, secondId], entries.Select(e => e.ConversationId));
        Assert.Equal(2, (int)preview!["total"]!);
        foreach (var (id, endsAt) in entries)
        {
            var start = DateTimeOffset.Parse((string)(await f.Platform.ConversationAsync(id))["startTime"]!);
            Assert.Equal(start.AddSeconds(120), DateTimeOffset.Parse(endsAt));
        }

        // A second short of the first's limit: nothing ends. (Each move is at least the sweep period, so a sweep surely runs.)
        await f.SweepAtAsync(DateTimeOffset.Parse(entries[0].EndsAt).AddSeconds(-1));
        await AssertLiveAsync(first);
        // At it: the first ends, at that instant; the second and the other deployment's guest go on.
        await f.SweepAtAsync(DateTimeOffset.Parse(entries[0].EndsAt));
        Assert.Equal(entries[0].EndsAt, await AssertEndedByAsync(f, first, firstId, policy, "compliance: 2 minute cap"));
        await AssertLiveAsync(second);
        await f.SweepAtAsync(DateTimeOffset.Parse(entries[1].EndsAt));
        Assert.Equal(entries[1].EndsAt, await AssertEndedByAsync(f, second, secondId, policy, "compliance: 2 minute cap"));
        await AssertLiveAsync(elsewhere);
        Assert.NotEqual(409, (int?)(await elsewhere.SendTextAsync("still here"))["code"]);

        // Nothing left to preview; further sweeps write no second audit row (AssertEndedBy checked there is one).
        var (_, after) = await f.Platform.GetAsync($"{Root}/{policy["id"]}/preview");
        Assert.Empty(after!["entities"]!.AsArray());
        await f.SweepAtAsync(f.Clock.GetUtcNow().AddSeconds(5));
        await AssertEndedByAsync(f, null, firstId, policy, "compliance: 2 minute cap");
    }

    /// <summary>A guest on <paramref name="deploymentId"/> whose conversation a bot starts (agentless), with a campaign tag or none.</summary>
    static async Task<(TestGuest Guest, string ConversationId)> BotStartedAsync(Fixture f, string deploymentId, string? campaign)
    {
        var guest = await f.Server.GuestAsync(deploymentId: deploymentId);
        await guest.ConfigureAsync();
        var (response, body) = await f.Platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = deploymentId, toAddress = await guest.SessionIdAsync(), toAddressMessengerType = "webmessaging", textBody = "Our offer", campaign,
        });
        Assert.True(response.StatusCode == HttpStatusCode.OK, body?.ToJsonString());
        await guest.NextAsync(Frames.IsOutboundText, Wait);
        return (guest, (string)body!["conversationId"]!);
    }

    [Fact]
    public async Task Campaign_EndsAtEndAt_WhatThatCampaignStartedBefore_NotOtherCampaigns_NorWhatItStartsLater()
    {
        await using var f = await StartAsync();
        var deployment = await f.DeploymentAsync("outbound");
        var (spring, springId) = await BotStartedAsync(f, deployment, "spring-2027");
        var (autumn, autumnId) = await BotStartedAsync(f, deployment, "autumn-2027");
        var (guestStarted, guestStartedId) = await f.GuestAsync(deployment);
        var (elsewhere, _) = await BotStartedAsync(f, ParleyServer.DeploymentId, "spring-2027");   // same tag, another deployment
        var endAt = f.Clock.GetUtcNow().AddMinutes(10);

        // Unsaved dry runs: by tag, one conversation; by the bot that started them (startedBy), both of the bot's, not the guest's.
        var (_, byTag) = await f.Platform.PostAsync($"{Root}/preview", new { name = "p", type = "campaign", deploymentId = deployment,
            campaign = "spring-2027", endAt = endAt.ToString("O") });
        Assert.Equal([(springId, endAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"))], Entries(byTag!));
        Assert.Equal("spring-2027", (string?)byTag!["entities"]![0]!["campaign"]);
        var (_, byBot) = await f.Platform.PostAsync($"{Root}/preview", new { name = "p", type = "campaign", deploymentId = deployment,
            startedBy = ParleyOptions.DefaultClientId, endAt = endAt.ToString("O") });
        Assert.Equal(new[] { springId, autumnId }.Order(), Entries(byBot!).Select(e => e.ConversationId).Order());
        Assert.DoesNotContain(guestStartedId, Entries(byBot!).Select(e => e.ConversationId));

        var policy = await f.CreatePolicyAsync(new { name = "spring campaign over", type = "campaign", deploymentId = deployment,
            campaign = "spring-2027", endAt = endAt.ToString("O") });
        await f.SweepAtAsync(endAt.AddSeconds(-1));
        await AssertLiveAsync(spring);
        await f.SweepAtAsync(endAt);
        await AssertEndedByAsync(f, spring, springId, policy, "policy 'spring campaign over'");
        await AssertLiveAsync(autumn);
        await AssertLiveAsync(guestStarted);
        await AssertLiveAsync(elsewhere);

        // The campaign goes on after endAt: what it starts from then is not touched.
        var (late, _) = await BotStartedAsync(f, deployment, "spring-2027");
        await f.SweepAtAsync(f.Clock.GetUtcNow().AddMinutes(1));
        await AssertLiveAsync(late);
    }

    [Fact]
    public async Task DisabledPolicy_EndsNothing_UntilEnabled_AndApply_EndsWhatIsDueNow_WithTheDefaultReason()
    {
        await using var f = await StartAsync();
        var deployment = await f.DeploymentAsync("paused");
        var (guest, conversationId) = await f.GuestAsync(deployment);
        var policy = await f.CreatePolicyAsync(new { name = "one minute", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 60,
            enabled = false });

        // Disabled: well past the limit, sweeps end nothing; its preview still says what enabling it would do.
        await f.SweepAtAsync(f.Clock.GetUtcNow().AddMinutes(5));
        await AssertLiveAsync(guest);
        var (_, preview) = await f.Platform.GetAsync($"{Root}/{policy["id"]}/preview");
        Assert.Equal([conversationId], Entries(preview!).Select(e => e.ConversationId));
        Assert.Equal((string?)preview!["evaluatedAt"], Entries(preview).Single().EndsAt);   // overdue: it would end at the next sweep

        // Apply ends now what the rule says is due, even while disabled: one ended, its socket told.
        var (applied, result) = await f.Platform.PostAsync($"{Root}/{policy["id"]}/apply");
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        Assert.Equal(("FULFILLED", 1, 0), ((string?)result!["state"], (int)result["ended"]!, (int)result["alreadyEnded"]!));
        Assert.Equal(1, (int)result["socketsNotified"]!);
        await AssertEndedByAsync(f, guest, conversationId, policy, "policy 'one minute'");

        // Enabled by PUT: a new conversation on the deployment ends at its limit.
        var (put, updated) = await f.Platform.SendAsync(HttpMethod.Put, $"{Root}/{policy["id"]}", new { name = "one minute", type = "maxDuration",
            deploymentId = deployment, maxDurationSeconds = 60, enabled = true });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(((string?)policy["dateCreated"], true), ((string?)updated!["dateCreated"], (bool)updated["enabled"]!));
        var (next, nextId) = await f.GuestAsync(deployment);
        await f.SweepAtAsync(f.Clock.GetUtcNow().AddSeconds(60));
        await AssertEndedByAsync(f, next, nextId, policy, "policy 'one minute'");
    }

    [Fact]
    public async Task Apply_ByAUser_RecordsThePolicyAndTheUser_AndTheJobIsTheUsersAndNamesTheBot()
    {
        const string password = "admin-password-for-tests";
        await using var f = await StartAsync(configure: o => o with { DemoAdminPassword = password, PasswordIterations = 10_000 });
        var deployment = await f.DeploymentAsync("outbound");
        var (bot, botId) = await BotStartedAsync(f, deployment, null);
        var (guest, _) = await f.GuestAsync(deployment);
        var endAt = f.Clock.GetUtcNow().AddMinutes(1);
        var policy = await f.CreatePolicyAsync(new { name = "bot's campaign over", type = "campaign", deploymentId = deployment,
            startedBy = ParleyOptions.DefaultClientId, endAt = endAt.ToString("O"), enabled = false });
        f.Clock.SetUtcNow(endAt);

        // The admin user, logged in through the console, presses apply.
        using var browser = new LoginBrowser(f.Server);
        var (verifier, challenge) = LoginBrowser.Pkce();
        var redirect = browser.Own("/console/");
        var (login, html) = await browser.LoginAsync(LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId),
            ("redirect_uri", redirect), ("code_challenge", challenge), ("code_challenge_method", "S256")), ParleyOptions.DefaultAdminUser, password);
        Assert.True(login.StatusCode == HttpStatusCode.Found, html);
        var (redeemed, token) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, LoginBrowser.Parameters(login, false)["code"], redirect, verifier);
        Assert.Equal(HttpStatusCode.OK, redeemed);
        using var admin = OAuthHelpers.Bearer(f.Server, (string)token!["access_token"]!);
        var (_, me) = await admin.GetAsync("/api/v2/users/me");
        var (userId, userName) = ((string)me!["id"]!, (string)me["name"]!);

        var (applied, job) = await admin.PostAsync($"{Root}/{policy["id"]}/apply");
        Assert.True(applied.StatusCode == HttpStatusCode.OK, job?.ToJsonString());
        Assert.Equal(1, (int)job!["ended"]!);
        // The job is the user's, and its filter is what it ended: the channel, the bot, the instant.
        Assert.Equal((userId, userName), ((string?)job["createdBy"]!["id"], (string?)job["createdBy"]!["name"]));
        Assert.Equal((deployment, ParleyOptions.DefaultClientId), ((string?)job["filter"]!["deploymentId"], (string?)job["filter"]!["startedBy"]));
        Assert.NotNull((string?)job["filter"]!["startedBefore"]);
        // Each end names both: the policy as the client, the user who applied it.
        await AssertEndedByAsync(f, bot, botId, policy, "policy 'bot's campaign over'");
        var (_, audit) = await f.Platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={botId}");
        var record = audit!["entities"]![0]!;
        Assert.Equal((userId, userName), ((string?)record["user"]!["id"], (string?)record["user"]!["name"]));
        await AssertLiveAsync(guest);
    }

    [Fact]
    public async Task OnlyThePolicyPermissions_DoNotEndOrListConversations_403NamingWhatIsMissing()
    {
        await using var f = await StartAsync();
        var deployment = await f.DeploymentAsync("guarded");
        var (guest, _) = await f.GuestAsync(deployment);
        var policy = await f.CreatePolicyAsync(new { name = "one minute", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 60,
            enabled = false });
        var body = new { name = "one minute", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 60 };
        var (id, secret) = await OAuthHelpers.CreateClientAsync(f.Platform, "policies only", "parley:terminationpolicy:edit", "parley:terminationpolicy:view");
        using var policiesOnly = await OAuthHelpers.AsClientAsync(f.Server, id, secret);

        foreach (var (method, path, payload, missing) in new (HttpMethod, string, object?, string)[]
        {
            (HttpMethod.Post, Root, body, "conversation:communication:disconnect"),
            (HttpMethod.Put, $"{Root}/{policy["id"]}", body, "conversation:communication:disconnect"),
            (HttpMethod.Post, $"{Root}/{policy["id"]}/apply", null, "conversation:communication:disconnect"),
            (HttpMethod.Get, $"{Root}/{policy["id"]}/preview", null, "conversation:message:view"),
            (HttpMethod.Post, $"{Root}/preview", body, "conversation:message:view"),
        })
        {
            var (response, error) = await policiesOnly.SendAsync(method, path, payload);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} {path}: {(int)response.StatusCode} {error?.ToJsonString()}");
            Assert.Equal("missing.permissions", (string?)error!["code"]);
            Assert.EndsWith(missing, (string?)error["message"]);
        }
        // What the policy permissions alone still do: read, and delete (which ends nothing).
        Assert.Equal(HttpStatusCode.OK, (await policiesOnly.GetAsync($"{Root}/{policy["id"]}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await policiesOnly.SendAsync(HttpMethod.Delete, $"{Root}/{policy["id"]}")).Response.StatusCode);
        Assert.Equal(0, (int)(await f.Platform.GetAsync(Root)).Body!["total"]!);
        await AssertLiveAsync(guest);
    }

    [Fact]
    public async Task BusinessHours_AcrossTheSpringDaylightSavingJump_ClosesAtTheFirstInstantAfterTheGap()
    {
        // Paris, 28 March 2027: 02:00 local jumps to 03:00 (01:00 UTC). A 02:30 closing does not exist that night.
        var gapEnd = DateTimeOffset.Parse("2027-03-28T01:00:00Z");
        await using var f = await StartAsync(DateTimeOffset.Parse("2027-03-27T23:00:00Z"));
        var deployment = await f.DeploymentAsync("shop");
        var (before, beforeId) = await f.GuestAsync(deployment);
        var (other, _) = await f.GuestAsync(ParleyServer.DeploymentId);
        var policy = await f.CreatePolicyAsync(new { name = "closing", type = "businessHours", deploymentId = deployment, closeAt = "02:30",
            timeZone = "Europe/Paris", days = new[] { "sunday", "Mon" }, reason = "the shop is closed" });
        Assert.Equal(["Sunday", "Monday"], policy["days"]!.AsArray().Select(d => (string)d!));

        var (_, preview) = await f.Platform.GetAsync($"{Root}/{policy["id"]}/preview");
        Assert.Equal([(beforeId, "2027-03-28T01:00:00.000Z")], Entries(preview!));

        await f.SweepAtAsync(gapEnd.AddSeconds(-1));
        await AssertLiveAsync(before);
        await f.SweepAtAsync(gapEnd);
        Assert.Equal("2027-03-28T01:00:00.000Z", await AssertEndedByAsync(f, before, beforeId, policy, "the shop is closed"));
        await AssertLiveAsync(other);

        // A conversation started after that closing waits for Monday's 02:30, now at +2 (00:30 UTC); an hour on, it is still live.
        // (A day's jump of the fake clock would fire every periodic timer once per second of it: the preview says when instead.)
        f.Clock.Advance(TimeSpan.FromMinutes(1));
        var (later, laterId) = await f.GuestAsync(deployment);
        var (_, next) = await f.Platform.GetAsync($"{Root}/{policy["id"]}/preview");
        Assert.Equal([(laterId, "2027-03-29T00:30:00.000Z")], Entries(next!));
        await f.SweepAtAsync(f.Clock.GetUtcNow().AddHours(1));
        await AssertLiveAsync(later);
    }

    [Fact]
    public async Task OpenMessagingIntegration_MaxDuration_EndsItsConversations_NotTheDeployments()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var server = await ParleyServer.StartAsync(o => o with { WebhooksAllowPrivateNetworks = true }, clock: clock);
        await using var f = new Fixture(server, clock, await server.PlatformAsync(), server.Services.GetRequiredService<PolicySweeper>());
        var (created, integration) = await f.Platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Partner", outboundNotificationWebhookUrl = receiver.Url, outboundNotificationWebhookSignatureSecretToken = "0123456789abcdef0123",
            disconnectNotification = true,
        });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var integrationId = (string)integration!["id"]!;
        var (inbound, message) = await f.Platform.PostAsync($"/api/v2/conversations/messages/{integrationId}/inbound/open/message?prefetchConversationId=true", new
        {
            channel = new { messageId = Guid.NewGuid().ToString(), time = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"), from = new { id = "guest-7", idType = "Phone" } },
            text = "hello",
        });
        Assert.Equal(HttpStatusCode.OK, inbound.StatusCode);
        var conversationId = (string)message!["conversationId"]!;
        var (web, _) = await f.GuestAsync(ParleyServer.DeploymentId);
        var policy = await f.CreatePolicyAsync(new { name = "partner cap", type = "maxDuration", integrationId, maxDurationSeconds = 300 });
        Assert.Null(policy["deploymentId"]);

        var (_, listed) = await f.Platform.GetAsync($"{Root}?integrationId={integrationId}");
        Assert.Equal([(string)policy["id"]!], listed!["entities"]!.AsArray().Select(p => (string)p!["id"]!));
        var (_, preview) = await f.Platform.GetAsync($"{Root}/{policy["id"]}/preview");
        var endsAt = DateTimeOffset.Parse(Entries(preview!).Single(e => e.ConversationId == conversationId).EndsAt);

        await f.SweepAtAsync(endsAt);
        await AssertEndedByAsync(f, null, conversationId, policy, "policy 'partner cap'");
        await AssertLiveAsync(web);
        // The channel is told the end, as any other end of an open messaging conversation.
        var notice = await receiver.NextAsync();
        while ((string?)notice.Json["type"] != "Event") notice = await receiver.NextAsync();
        Assert.Equal("guest-7", (string?)notice.Json["channel"]!["to"]!["id"]);

        // Deleting the integration deletes its policies.
        var (deleted, _) = await f.Platform.SendAsync(HttpMethod.Delete, $"/api/v2/conversations/messaging/integrations/open/{integrationId}");
        Assert.True(deleted.IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await f.Platform.GetAsync($"{Root}/{policy["id"]}")).Response.StatusCode);
    }

    [Fact]
    public async Task Requests_AreValidated_InThePlatformsErrorForm_NamingTheField()
    {
        await using var f = await StartAsync();
        var deployment = await f.DeploymentAsync("validated");
        var cases = new (object Body, string Field)[]
        {
            (new { name = "x", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 600, maxDurationSecond = 5 }, "maxDurationSecond"),
            (new { type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 600 }, "name"),
            (new { name = "x", type = "forever", deploymentId = deployment }, "type"),
            (new { name = "x", type = "maxDuration", maxDurationSeconds = 600 }, "deploymentId"),
            (new { name = "x", type = "maxDuration", deploymentId = deployment, integrationId = deployment, maxDurationSeconds = 600 }, "integrationId"),
            (new { name = "x", type = "maxDuration", deploymentId = "no-such-deployment", maxDurationSeconds = 600 }, "deploymentId"),
            (new { name = "x", type = "maxDuration", integrationId = deployment, maxDurationSeconds = 600 }, "integrationId"),   // a deployment, not an integration
            (new { name = "x", type = "maxDuration", deploymentId = deployment }, "maxDurationSeconds"),
            (new { name = "x", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 59 }, "maxDurationSeconds"),
            (new { name = "x", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 600, closeAt = "18:00" }, "closeAt"),
            (new { name = "x", type = "campaign", deploymentId = deployment }, "campaign"),
            (new { name = "x", type = "campaign", deploymentId = deployment, campaign = "c", endAt = "tomorrow" }, "endAt"),
            (new { name = "x", type = "businessHours", deploymentId = deployment, timeZone = "Europe/Paris" }, "closeAt"),
            (new { name = "x", type = "businessHours", deploymentId = deployment, closeAt = "25:00", timeZone = "Europe/Paris" }, "closeAt"),
            (new { name = "x", type = "businessHours", deploymentId = deployment, closeAt = "6pm", timeZone = "Europe/Paris" }, "closeAt"),
            (new { name = "x", type = "businessHours", deploymentId = deployment, closeAt = "18:00" }, "timeZone"),
            (new { name = "x", type = "businessHours", deploymentId = deployment, closeAt = "18:00", timeZone = "Europe/Atlantis" }, "timeZone"),
            (new { name = "x", type = "businessHours", deploymentId = deployment, closeAt = "18:00", timeZone = "Europe/Paris", days = new[] { "Funday" } }, "days"),
        };
        foreach (var (body, field) in cases)
        {
            foreach (var path in new[] { Root, $"{Root}/preview" })
            {
                var (response, error) = await f.Platform.PostAsync(path, body);
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {field}: {(int)response.StatusCode} {error?.ToJsonString()}");
                Assert.Equal(field, (string?)error!["details"]![0]!["fieldName"]);
                Assert.Contains(field, (string)error["message"]!);
                Assert.NotNull((string?)error["contextId"]);
            }
        }
        Assert.Empty((await f.Platform.GetAsync($"{Root}?deploymentId={deployment}")).Body!["entities"]!.AsArray());
        Assert.Equal(HttpStatusCode.NotFound, (await f.Platform.GetAsync($"{Root}/nope")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await f.Platform.GetAsync($"{Root}/nope/preview")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await f.Platform.PostAsync($"{Root}/nope/apply")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await f.Platform.SendAsync(HttpMethod.Delete, $"{Root}/nope")).Response.StatusCode);

        // A stored policy goes with its deployment.
        var policy = await f.CreatePolicyAsync(new { name = "x", type = "maxDuration", deploymentId = deployment, maxDurationSeconds = 600 });
        Assert.Equal(HttpStatusCode.OK, (await f.Platform.GetAsync($"{Root}/{policy["id"]}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await f.Platform.SendAsync(HttpMethod.Delete, $"/api/v2/parley/deployments/{deployment}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await f.Platform.GetAsync($"{Root}/{policy["id"]}")).Response.StatusCode);
    }

    [Fact]
    public async Task UnsavedPreview_SaysWhatAPolicyWouldEnd_WithoutStoringOrEndingAnything()
    {
        await using var f = await StartAsync();
        var deployment = await f.DeploymentAsync("what if");
        var (guest, conversationId) = await f.GuestAsync(deployment);
        f.Clock.Advance(TimeSpan.FromMinutes(10));

        var (response, preview) = await f.Platform.PostAsync($"{Root}/preview", new { name = "five minutes", type = "maxDuration",
            deploymentId = deployment, maxDurationSeconds = 300 });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(preview!["policyId"]);
        Assert.Equal([(conversationId, (string)preview["evaluatedAt"]!)], Entries(preview));   // overdue: at the next sweep
        Assert.Empty((await f.Platform.GetAsync(Root)).Body!["entities"]!.AsArray());
        await f.SweepAtAsync(f.Clock.GetUtcNow().AddSeconds(1));
        await AssertLiveAsync(guest);
    }
}
