using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Parley.Core;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Bulk terminations (docs/ending-sessions.md "Bulk terminations") and the campaign tag ("Campaign tag"), over real guest
/// sockets: a filter ends exactly its set, the rest keep working; small sets answer at once, large ones run as jobs.
/// </summary>
public sealed class BulkTerminationTests
{
    const string Terminations = "/api/v2/parley/terminations";

    /// <summary>A guest connected (and configured) on <paramref name="deploymentId"/>, with a journey customer id when given.</summary>
    static async Task<TestGuest> GuestAsync(ParleyServer server, string deploymentId, string? customerId = null, string? token = null)
    {
        var guest = await TestGuest.ConnectAsync(server, token ?? Guid.NewGuid().ToString(), null, deploymentId);
        var t = guest.NextTracingId();
        await guest.RequestAsync(customerId is null
            ? new { action = "configureSession", token = guest.Token, deploymentId, tracingId = t }
            : new
            {
                action = "configureSession", token = guest.Token, deploymentId, tracingId = t,
                journeyContext = new { customer = new { id = customerId, idType = "externalId" }, customerSession = new { id = "", type = "web" } },
            }, t);
        return guest;
    }

    /// <summary>The bot starts a conversation with the guest (tagged with <paramref name="campaign"/>); every socket given sees its message.</summary>
    static async Task<string> StartAsync(PlatformClient platform, string deploymentId, string campaign, params TestGuest[] sockets)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = deploymentId, toAddress = await sockets[0].SessionIdAsync(), toAddressMessengerType = "webmessaging",
            textBody = "Hello from the campaign", campaign,
        });
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"agentless: {(int)response.StatusCode} {body?.ToJsonString()}");
        foreach (var s in sockets) await s.NextAsync(Frames.IsOutboundText);
        return body!["conversationId"]!.GetValue<string>();
    }

    static Task<string> StartAsync(PlatformClient platform, string deploymentId, params TestGuest[] sockets) =>
        StartAsync(platform, deploymentId, null!, sockets);

    static async Task<string> DeploymentAsync(PlatformClient platform, string name)
    {
        var (response, body) = await platform.PostAsync("/api/v2/parley/deployments", new { name });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return body!["id"]!.GetValue<string>();
    }

    /// <summary>The conversation is still fully alive: its guest's message is taken, and the bot's reply reaches the guest.</summary>
    static async Task AssertStillWorksAsync(PlatformClient platform, TestGuest guest, string deploymentId, string conversationId)
    {
        var echo = await guest.SendTextAsync("still here?");
        Assert.True(Frames.IsInboundEcho(echo), echo.ToJsonString());
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = deploymentId, toAddress = await guest.SessionIdAsync(), toAddressMessengerType = "webmessaging",
            textBody = "yes, the bot is here", useExistingActiveConversation = true,
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(conversationId, (string?)body!["conversationId"]);
        Assert.Equal("yes, the bot is here", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
    }

    static async Task<JsonNode> AuditAsync(PlatformClient platform, string conversationId)
    {
        var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        return audit!["entities"]!.AsArray().Single()!;
    }

    [Fact]
    public async Task AFilteredSet_EndsExactlyThatSet_TellsItsSockets_AndTheRestKeepWorking()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        var other = await DeploymentAsync(platform, "other shop");
        await using var inSet = await GuestAsync(server, demo);
        await using var inSetTab = await GuestAsync(server, demo, token: inSet.Token);
        await using var inSetToo = await GuestAsync(server, demo);
        await using var otherCampaign = await GuestAsync(server, demo);
        await using var otherDeployment = await GuestAsync(server, other);
        var ended1 = await StartAsync(platform, demo, "spring", inSet, inSetTab);
        var ended2 = await StartAsync(platform, demo, "spring", inSetToo);
        var kept1 = await StartAsync(platform, demo, "autumn", otherCampaign);
        var kept2 = await StartAsync(platform, other, "spring", otherDeployment);

        var (response, body) = await platform.PostAsync(Terminations, new { filter = new { deploymentId = demo, campaign = "spring" }, reason = "recall" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("FULFILLED", (string?)body!["state"]);
        Assert.Equal((2, 2, 0, 0, 3, 0), ((int)body["matched"]!, (int)body["ended"]!, (int)body["alreadyEnded"]!, (int)body["failed"]!,
            (int)body["socketsNotified"]!, (int)body["channelsNotified"]!));
        Assert.Equal("recall", (string?)body["reason"]);
        Assert.Equal(demo, (string?)body["filter"]!["deploymentId"]);
        Assert.Equal("spring", (string?)body["filter"]!["campaign"]);
        Assert.Equal(ParleyOptions.DefaultClientId, (string?)body["createdBy"]!["id"]);
        Assert.Equal($"{Terminations}/{body["id"]}", (string?)body["selfUri"]);
        Assert.NotNull((string?)body["dateCompleted"]);
        // Answered after every socket of the set took its Disconnect.
        foreach (var socket in new[] { inSet, inSetTab, inSetToo })
            Assert.Equal("true", (string?)(await socket.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5)))["body"]!["metadata"]!["readOnly"]);
        Assert.Equal(409, (int)(await inSet.SendTextAsync("hello?"))["code"]!);

        foreach (var (id, sockets) in new[] { (ended1, 2), (ended2, 1) })
        {
            var record = await AuditAsync(platform, id);
            Assert.Equal(("Bulk", "recall", ParleyOptions.DefaultClientId, sockets),
                ((string?)record["lever"], (string?)record["reason"], (string?)record["client"]!["id"], (int)record["socketsNotified"]!));
            var conversation = await platform.ConversationAsync(id);
            Assert.Equal("disconnected", (string?)conversation["state"]);
            Assert.All(conversation["participants"]!.AsArray(), p => Assert.Equal("client", (string?)p!["messages"]![0]!["disconnectType"]));
        }
        await AssertStillWorksAsync(platform, otherCampaign, demo, kept1);
        await AssertStillWorksAsync(platform, otherDeployment, other, kept2);
        Assert.Equal("connected", (string?)(await platform.ConversationAsync(kept1))["state"]);

        // Run again: the set has ended, nothing is ended twice.
        var (again, second) = await platform.PostAsync(Terminations, new { filter = new { deploymentId = demo, campaign = "spring" }, reason = "recall" });
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal((0, 0, 0), ((int)second!["matched"]!, (int)second["ended"]!, (int)second["socketsNotified"]!));
        Assert.Single((await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={ended1}")).Body!["entities"]!.AsArray());

        var (listed, list) = await platform.GetAsync($"{Terminations}?pageSize=10");
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        Assert.Equal([(string)second["id"]!, (string)body["id"]!], list!["entities"]!.AsArray().Select(j => (string)j!["id"]!));
        var (got, job) = await platform.GetAsync($"{Terminations}/{body["id"]}");
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        Assert.Equal(3, (int)job!["socketsNotified"]!);
    }

    [Fact]
    public async Task ACustomerOrAStartWindow_SelectsOnlyThoseConversations()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(clock: clock);
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        await using var early = await GuestAsync(server, demo, customerId: "crm-1");
        await using var late = await GuestAsync(server, demo, customerId: "crm-2");
        await using var lateToo = await GuestAsync(server, demo, customerId: "crm-1");
        var earlyId = await StartAsync(platform, demo, early);
        clock.Advance(TimeSpan.FromMinutes(10));
        var lateId = await StartAsync(platform, demo, late);
        var lateTooId = await StartAsync(platform, demo, lateToo);
        var between = Wire(clock.GetUtcNow().AddMinutes(-5));

        // The window: started after the middle, and customer crm-1: only lateToo.
        var (response, body) = await platform.PostAsync(Terminations, new { filter = new { startedAfter = between, customerId = "crm-1" } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((1, 1), ((int)body!["ended"]!, (int)body["socketsNotified"]!));
        await lateToo.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
        Assert.Null((string?)(await AuditAsync(platform, lateTooId))["reason"]);
        await AssertStillWorksAsync(platform, early, demo, earlyId);
        await AssertStillWorksAsync(platform, late, demo, lateId);

        // Started before the middle: the early one only.
        var (_, before) = await platform.PostAsync(Terminations, new { filter = new { startedBefore = between }, reason = "old" });
        Assert.Equal(1, (int)before!["ended"]!);
        await early.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
        await AssertStillWorksAsync(platform, late, demo, lateId);
    }

    [Fact]
    public async Task StartedBy_SelectsOnlyWhatThatClientsAgentlessRequestsStarted()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        await using var byBot = await GuestAsync(server, demo);
        await using var byGuest = await GuestAsync(server, demo);
        var botId = await StartAsync(platform, demo, byBot);
        Assert.True(Frames.IsInboundEcho(await byGuest.SendTextAsync("I start this one")));
        var guestId = await platform.ConversationOfSessionAsync(await byGuest.SessionIdAsync());

        // Another bot started none: nothing matched.
        var (none, nothing) = await platform.PostAsync(Terminations, new { filter = new { deploymentId = demo, startedBy = Guid.NewGuid().ToString() } });
        Assert.Equal(HttpStatusCode.OK, none.StatusCode);
        Assert.Equal(0, (int)nothing!["matched"]!);

        var (response, body) = await platform.PostAsync(Terminations, new { filter = new { deploymentId = demo, startedBy = ParleyOptions.DefaultClientId } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((1, 1), ((int)body!["ended"]!, (int)body["socketsNotified"]!));
        Assert.Equal(ParleyOptions.DefaultClientId, (string?)body["filter"]!["startedBy"]);
        await byBot.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
        Assert.Equal("disconnected", (string?)(await platform.ConversationAsync(botId))["state"]);
        await AssertStillWorksAsync(platform, byGuest, demo, guestId);
    }

    static string Wire(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ");

    [Fact]
    public async Task ALargeSet_Answers202_AndItsJobIsReadUntilFulfilled_WithExactCounts()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { TerminationAnswerAtOnceMax = 3 });
        using var platform = await server.PlatformAsync();
        var deployment = await DeploymentAsync(platform, "flash sale");
        var guests = new List<TestGuest>();
        for (var i = 0; i < 6; i++)
        {
            var g = await GuestAsync(server, deployment);
            guests.Add(g);
            await StartAsync(platform, deployment, g);
        }
        try
        {
            var (response, body) = await platform.PostAsync(Terminations, new { filter = new { deploymentId = deployment }, reason = "sale over" });

            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.Equal("PENDING", (string?)body!["state"]);
            var self = (string)body["selfUri"]!;
            Assert.Equal($"{Terminations}/{body["id"]}", self);
            foreach (var g in guests) await g.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));

            JsonNode job;
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (true)   // the job's own protocol: read it until it says it is done
            {
                var (got, read) = await platform.GetAsync(self);
                Assert.Equal(HttpStatusCode.OK, got.StatusCode);
                job = read!;
                if ((string?)job["state"] != "PENDING" || DateTime.UtcNow > deadline) break;
                await Task.Delay(50);
            }
            Assert.Equal("FULFILLED", (string?)job["state"]);
            Assert.Equal((6, 6, 0, 0, 6, 0), ((int)job["matched"]!, (int)job["ended"]!, (int)job["alreadyEnded"]!, (int)job["failed"]!,
                (int)job["socketsNotified"]!, (int)job["channelsNotified"]!));
            Assert.Equal("sale over", (string?)job["reason"]);
            Assert.NotNull((string?)job["dateCompleted"]);

            var (missing, error) = await platform.GetAsync($"{Terminations}/{Guid.NewGuid()}");
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Equal("not.found", (string?)error!["code"]);
        }
        finally
        {
            foreach (var g in guests) await g.DisposeAsync();
        }
    }

    [Fact]
    public async Task EveryBadRequest_Is400InThePlatformForm_NamingTheField_AndEndsNothing()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        await using var guest = await GuestAsync(server, demo);
        var conversationId = await StartAsync(platform, demo, "spring", guest);

        (object Body, string Field)[] cases =
        [
            (new { }, "filter"),
            (new { filter = new { } }, "filter"),
            (new { filter = new { deployment = demo } }, "filter.deployment"),                 // misspelt: never dropped
            (new { filter = new { campaign = "spring" }, force = true }, "force"),
            (new { filter = new { campaign = "" } }, "campaign"),
            (new { filter = new { customerId = "   " } }, "customerId"),
            (new { filter = new { startedBy = "" } }, "startedBy"),
            (new { filter = new { startedBy = new string('b', 257) } }, "startedBy"),
            (new { filter = new { campaign = new string('c', 101) } }, "campaign"),
            (new { filter = new { startedBefore = "yesterday" } }, "startedBefore"),
            (new { filter = new { startedAfter = "2026-13-45T00:00:00Z" } }, "startedAfter"),
            (new { filter = new { startedAfter = "2026-12-01T10:00:00Z", startedBefore = "2026-12-01T09:00:00Z" } }, "startedAfter"),
            (new { filter = new { deploymentId = Guid.NewGuid().ToString() } }, "deploymentId"),
            (new { filter = new { integrationId = Guid.NewGuid().ToString() } }, "integrationId"),
            (new { filter = new { queueId = Guid.NewGuid().ToString() } }, "queueId"),
            (new { filter = new { deploymentId = demo, integrationId = Guid.NewGuid().ToString() } }, "integrationId"),
            (new { filter = new { campaign = "spring" }, reason = new string('r', 501) }, "reason"),
        ];
        foreach (var (request, field) in cases)
        {
            var (response, body) = await platform.PostAsync(Terminations, request);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{field}: {(int)response.StatusCode} {body?.ToJsonString()}");
            Assert.Equal("bad.request", (string?)body!["code"]);
            Assert.Contains(field, (string?)body["message"]);
            Assert.Equal(400, (int)body["status"]!);
        }
        var text = new HttpRequestMessage(HttpMethod.Post, Terminations) { Content = new StringContent("{\"filter\":", System.Text.Encoding.UTF8, "application/json") };
        Assert.Equal(HttpStatusCode.BadRequest, (await platform.Http.SendAsync(text)).StatusCode);

        await AssertStillWorksAsync(platform, guest, demo, conversationId);
        Assert.Equal(0, (int)(await platform.GetAsync($"{Terminations}")).Body!["total"]!);
    }

    [Fact]
    public async Task WithoutAToken401_WithoutTheDisconnectPermission403()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        var request = new { filter = new { campaign = "spring" } };

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync(Terminations, JsonContent.Create(request))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(Terminations)).StatusCode);
        var (id, secret) = await OAuthHelpers.CreateClientAsync(platform, "viewer", "conversation:message:view");
        using var viewer = await OAuthHelpers.AsClientAsync(server, id, secret);
        var (refused, body) = await viewer.PostAsync(Terminations, request);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("conversation:communication:disconnect", (string?)body!["message"]);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync($"{Terminations}/{Guid.NewGuid()}")).Response.StatusCode);
    }

    [Fact]
    public async Task TheCampaignTag_IsTheCustomersAttribute_IsValidated_AndABulkByCampaignEndsWhatItStarted()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        await using var tagged = await GuestAsync(server, demo);
        await using var untagged = await GuestAsync(server, demo);
        var taggedId = await StartAsync(platform, demo, "winter-2026", tagged);
        var untaggedId = await StartAsync(platform, demo, untagged);

        var conversation = await platform.ConversationAsync(taggedId);
        var customer = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Equal("winter-2026", (string?)customer["attributes"]!["campaign"]);
        Assert.All(conversation["participants"]!.AsArray().Where(p => (string?)p!["purpose"] != "customer"),
            p => Assert.Empty(p!["attributes"]!.AsObject()));
        var (_, messaging) = await platform.GetAsync($"/api/v2/conversations/messages/{taggedId}");
        Assert.Equal("winter-2026", (string?)messaging!["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!["attributes"]!["campaign"]);
        Assert.Empty((await platform.ConversationAsync(untaggedId))["participants"]!.AsArray()
            .Single(p => (string?)p!["purpose"] == "customer")!["attributes"]!.AsObject());
        foreach (var bad in new[] { "", new string('x', 101), "line\nbreak" })
        {
            var (refused, error) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
            {
                fromAddress = demo, toAddress = await untagged.SessionIdAsync(), toAddressMessengerType = "webmessaging", textBody = "hi",
                campaign = bad, useExistingActiveConversation = true,
            });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("campaign", (string?)error!["message"]);
        }

        var (response, body) = await platform.PostAsync(Terminations, new { filter = new { campaign = "winter-2026" } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (int)body!["ended"]!);
        await tagged.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
        await AssertStillWorksAsync(platform, untagged, demo, untaggedId);
        var stored = await server.Services.GetRequiredService<IConversationStore>().LoadAsync(taggedId, default);
        Assert.Equal(("winter-2026", ParleyOptions.DefaultClientId), (stored!.Campaign, stored.StartedBy));
    }

    [Fact]
    public async Task OpenMessaging_EndNoticesAreCountedAsChannelsNotified_OnlyWhereTheIntegrationSendsThem()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(o => o with { WebhooksAllowPrivateNetworks = true });
        using var platform = await server.PlatformAsync();
        async Task<string> IntegrationAsync(bool notify)
        {
            var (response, body) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
            {
                name = "Partner", outboundNotificationWebhookUrl = receiver.Url, outboundNotificationWebhookSignatureSecretToken = "a-signature-secret-of-some-length",
                disconnectNotification = notify,
            });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return body!["id"]!.GetValue<string>();
        }
        var notifying = await IntegrationAsync(true);
        var silent = await IntegrationAsync(false);
        foreach (var (integration, to) in new[] { (notifying, "+491"), (notifying, "+492"), (silent, "+493") })
        {
            var (sent, _) = await OpenMessagingTests.AgentlessAsync(platform, integration, to, "Your parcel is late");
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
            await receiver.NextAsync();
        }

        var (r1, b1) = await platform.PostAsync(Terminations, new { filter = new { integrationId = notifying }, reason = "outage" });
        var (r2, b2) = await platform.PostAsync(Terminations, new { filter = new { integrationId = silent } });

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (r1.StatusCode, r2.StatusCode));
        Assert.Equal((2, 2, 0), ((int)b1!["ended"]!, (int)b1["channelsNotified"]!, (int)b1["socketsNotified"]!));
        Assert.Equal((1, 0), ((int)b2!["ended"]!, (int)b2["channelsNotified"]!));
        var notices = new[] { await receiver.NextAsync(), await receiver.NextAsync() };
        Assert.All(notices, n => Assert.Equal("Disconnect", (string?)n.Json["events"]![0]!["presence"]!["type"]));
        Assert.Equal(["+491", "+492"], notices.Select(n => (string)n.Json["channel"]!["to"]!["id"]!).Order());
    }

    /// <summary>
    /// A conversation ended by another lever between the listing and its end counts as already ended, once: the listing
    /// is a hint and each end is decided again under its own commit.
    /// </summary>
    [Fact]
    public async Task AConversationEndedMeanwhile_CountsAsAlreadyEnded_AndIsNotEndedTwice()
    {
        var gate = new ListingGate();
        await using var server = await ParleyServer.StartAsync(services: s =>
            s.AddSingleton<IConversationStore>(sp => new GatedListing(sp.GetRequiredService<StoragePorts>().Conversations, gate)));
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        await using var first = await GuestAsync(server, demo);
        await using var second = await GuestAsync(server, demo);
        var firstId = await StartAsync(platform, demo, "gated", first);
        await StartAsync(platform, demo, "gated", second);

        gate.HoldSecondListing();
        var bulk = platform.PostAsync(Terminations, new { filter = new { campaign = "gated" }, reason = "bulk" });
        await gate.Held.WaitAsync(TimeSpan.FromSeconds(10));   // the set was counted and listed; no end has been tried yet
        var single = await platform.PostAsync($"/api/v2/conversations/{firstId}/disconnect");
        Assert.Equal(HttpStatusCode.Accepted, single.Response.StatusCode);
        gate.Release();
        var (response, body) = await bulk.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((2, 1, 1, 0, 1), ((int)body!["matched"]!, (int)body["ended"]!, (int)body["alreadyEnded"]!, (int)body["failed"]!,
            (int)body["socketsNotified"]!));
        Assert.Equal("ConversationDisconnect", (string?)(await AuditAsync(platform, firstId))["lever"]);
        await second.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task AJobLeftPendingByAStoppedNode_IsMarkedFailedWhenThatNodeStartsAgain()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { NodeId = "node-a", NodeIdConfigured = true });
        var jobs = server.Services.GetRequiredService<ITerminationJobStore>();
        var mine = new TerminationJob(Guid.NewGuid().ToString(), "PENDING", """{"campaign":"x"}""", null, new BulkCounts(900, 400, 0, 0, 400, 0), null,
            new Actor(ParleyOptions.DefaultClientId), "node-a", DateTimeOffset.UtcNow);
        var othersNode = mine with { Id = Guid.NewGuid().ToString(), NodeId = "another-node" };
        await jobs.CreateAsync(mine, default);
        await jobs.CreateAsync(othersNode, default);

        await server.RestartAsync();
        using var platform = await server.PlatformAsync();

        var (_, failed) = await platform.GetAsync($"{Terminations}/{mine.Id}");
        Assert.Equal("FAILED", (string?)failed!["state"]);
        Assert.Contains("stopped", (string?)failed["errorMessage"]);
        Assert.Equal(400, (int)failed["ended"]!);
        Assert.NotNull((string?)failed["dateCompleted"]);
        Assert.Equal("PENDING", (string?)(await platform.GetAsync($"{Terminations}/{othersNode.Id}")).Body!["state"]);
    }

    /// <summary>
    /// Without Parley:Node:Id a node's id is its machine name and process id, so the process that left a job PENDING is
    /// never the one that starts next: a single node (the local backplane) marks every PENDING job FAILED at start.
    /// </summary>
    [Fact]
    public async Task WithoutANodeId_ASingleNodeMarksEveryPendingJobFailedAtStart()
    {
        await using var server = await ParleyServer.StartAsync();
        Assert.False(server.Services.GetRequiredService<ParleyOptions>().NodeIdConfigured);
        var jobs = server.Services.GetRequiredService<ITerminationJobStore>();
        var leftByLastProcess = new TerminationJob(Guid.NewGuid().ToString(), "PENDING", """{"campaign":"x"}""", null, new BulkCounts(900, 400, 0, 0, 400, 0),
            null, new Actor(ParleyOptions.DefaultClientId), "host-4242", DateTimeOffset.UtcNow);
        await jobs.CreateAsync(leftByLastProcess, default);

        await server.RestartAsync();
        using var platform = await server.PlatformAsync();

        var (_, failed) = await platform.GetAsync($"{Terminations}/{leftByLastProcess.Id}");
        Assert.Equal("FAILED", (string?)failed!["state"]);
        Assert.Contains("stopped", (string?)failed["errorMessage"]);
        Assert.Equal(400, (int)failed["ended"]!);
    }

    /// <summary>
    /// The set is what was live at the time of the request: a conversation of the same deployment started while the job
    /// is PENDING (its listing held) is not ended, though its id sorts after every id of the set.
    /// </summary>
    [Fact]
    public async Task AConversationStartedWhileAJobRuns_IsNotEndedByIt()
    {
        var gate = new ListingGate();
        await using var server = await ParleyServer.StartAsync(o => o with { TerminationAnswerAtOnceMax = 1 }, services: s =>
            s.AddSingleton<IConversationStore>(sp => new GatedListing(sp.GetRequiredService<StoragePorts>().Conversations, gate, holdBeforeReading: true)));
        using var platform = await server.PlatformAsync();
        var deployment = await DeploymentAsync(platform, "snapshot");
        await using var first = await GuestAsync(server, deployment);
        await using var second = await GuestAsync(server, deployment);
        await StartAsync(platform, deployment, first);
        await StartAsync(platform, deployment, second);

        gate.HoldSecondListing();   // the count's listing passes; the job's first page is held before it is read
        var (response, body) = await platform.PostAsync(Terminations, new { filter = new { deploymentId = deployment }, reason = "snapshot" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("PENDING", (string?)body!["state"]);
        await gate.Held.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("PENDING", (string?)(await platform.GetAsync((string)body["selfUri"]!)).Body!["state"]);

        await using var late = await GuestAsync(server, deployment);
        var lateId = await StartAsync(platform, deployment, late);
        gate.Release();

        await first.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        await second.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        JsonNode job;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)   // the job's own protocol: read it until it says it is done
        {
            job = (await platform.GetAsync((string)body["selfUri"]!)).Body!;
            if ((string?)job["state"] != "PENDING" || DateTime.UtcNow > deadline) break;
            await Task.Delay(50);
        }
        Assert.Equal("FULFILLED", (string?)job["state"]);
        Assert.Equal((2, 2, 0, 0), ((int)job["matched"]!, (int)job["ended"]!, (int)job["alreadyEnded"]!, (int)job["failed"]!));
        await AssertStillWorksAsync(platform, late, deployment, lateId);
    }

    /// <summary>Holds the second live listing (the run's, after the count's) until released.</summary>
    sealed class ListingGate
    {
        int _calls = -1;
        readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Held => _held.Task;
        public void HoldSecondListing() => Interlocked.Exchange(ref _calls, 0);
        public void Release() => _release.TrySetResult();

        public async Task PassAsync()
        {
            if (Volatile.Read(ref _calls) < 0 || Interlocked.Increment(ref _calls) != 2) return;
            _held.TrySetResult();
            await _release.Task;
        }
    }

    /// <summary>The real store, with its live listing passing through a <see cref="ListingGate"/> (by default the results are read before it: as a slow node).</summary>
    /// <param name="holdBeforeReading">Hold before the listing reads (the rows are those of the time of the release).</param>
    sealed class GatedListing(IConversationStore inner, ListingGate gate, bool holdBeforeReading = false) : DelegatingConversationStore(inner)
    {
        public override async Task<IReadOnlyList<LiveConversation>> ListLiveAsync(LiveFilter filter, int max, string? afterId, CancellationToken ct)
        {
            if (holdBeforeReading) await gate.PassAsync();
            var rows = await Inner.ListLiveAsync(filter, max, afterId, ct);
            if (!holdBeforeReading) await gate.PassAsync();
            return rows;
        }
    }
}
