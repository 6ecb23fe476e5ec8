using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Parley.Core;
using Parley.Server;
using Parley.Server.GuestApi;
using Parley.Testing;

namespace Parley.E2E.Tests;

/// <summary>
/// Termination receipts (docs/ending-sessions.md "Receipts") over real sockets and a real webhook receiver: a receipt lists
/// exactly the guest sockets that took the Disconnect and the channel deliveries of the end notice, says pending while
/// something is unaccounted for, failed when a delivery failed, and is pushed on its topic when it changes.
/// </summary>
public sealed class ReceiptTests
{
    const string Topic = "v2.parley.terminations.receipts";

    static Func<ParleyOptions, ParleyOptions> Webhooks(int maxAttempts = 8) => o => o with
    {
        WebhooksAllowPrivateNetworks = true, WebhookMaxAttempts = maxAttempts,
        WebhookRetryBase = TimeSpan.FromMilliseconds(50), WebhookRetryCap = TimeSpan.FromMilliseconds(100), WebhookTimeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>The next receipt pushed for the conversation that satisfies <paramref name="match"/>.</summary>
    static async Task<JsonObject> NextReceiptAsync(NotificationSocket socket, string conversationId, Func<JsonObject, bool>? match = null)
    {
        var frame = await socket.NextAsync(f => (string?)f["topicName"] == Topic && (string?)f["eventBody"]?["conversationId"] == conversationId
            && (match is null || match(f["eventBody"]!.AsObject())));
        return frame["eventBody"]!.AsObject();
    }

    static bool Settled(JsonObject receipt) => (string?)receipt["state"] != "pending";

    static async Task<string> EndAsync(PlatformClient platform, string conversationId, string reason = "compliance")
    {
        var customer = await platform.ParticipantIdAsync(conversationId, "customer");
        using var end = new HttpRequestMessage(HttpMethod.Patch, $"/api/v2/conversations/messages/{conversationId}/participants/{customer}")
            { Content = JsonContent.Create(new { state = "disconnected" }) };
        end.Headers.Add("Parley-Termination-Reason", reason);
        var response = await platform.Http.SendAsync(end);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return response.Headers.GetValues("Parley-Termination-Id").Single();
    }

    [Fact]
    public async Task AGuestWithTwoSockets_Terminated_ReceiptListsExactlyThoseSockets_Delivered_WithThisNodesId()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var receipts = await NotificationSocket.OpenAsync(platform, Topic);
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        await using var tab = await server.GuestAsync(guest.Token);
        await tab.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var conversationId = (string)(await platform.StartConversationAsync(sessionId))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);
        await tab.NextAsync(Frames.IsOutboundText);
        // The sockets the server holds for the session: the receipt must name exactly these.
        var socketIds = server.Services.GetRequiredService<SessionRegistry>().Of(sessionId).Select(c => c.Id).Order().ToList();
        Assert.Equal(2, socketIds.Count);

        var terminationId = await EndAsync(platform, conversationId);

        await guest.NextAsync(Frames.IsDisconnect);
        await tab.NextAsync(Frames.IsDisconnect);
        var pushed = await NextReceiptAsync(receipts, conversationId, Settled);
        var (response, receipt) = await platform.GetAsync($"/api/v2/parley/receipts/{terminationId}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        foreach (var r in new[] { pushed, receipt!.AsObject() })
        {
            Assert.Equal(terminationId, (string?)r["id"]);
            Assert.Equal("delivered", (string?)r["state"]);
            Assert.Equal("ParticipantPatch", (string?)r["lever"]);
            Assert.Equal(2, (int)r["socketsTargeted"]!);
            var sockets = r["sockets"]!.AsArray();
            Assert.Equal(socketIds, sockets.Select(s => (string)s!["socketId"]!).Order().ToList());
            Assert.All(sockets, s =>
            {
                Assert.Equal(server.Services.GetRequiredService<ParleyOptions>().NodeId, (string?)s!["node"]);
                Assert.Equal("delivered", (string?)s["state"]);
                Assert.Null(s["error"]);
            });
            Assert.Empty(r["channels"]!.AsArray());
            Assert.Equal($"/api/v2/parley/receipts/{terminationId}", (string?)r["selfUri"]);
        }

        // The audit row points at it; the conversation's listing holds it.
        var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        Assert.Equal($"/api/v2/parley/receipts/{terminationId}", (string?)audit!["entities"]![0]!["receiptUri"]);
        var (_, listed) = await platform.GetAsync($"/api/v2/parley/receipts?conversationId={conversationId}");
        Assert.Equal(1, (int)listed!["total"]!);
        Assert.Equal(terminationId, (string?)listed["entities"]![0]!["id"]);
    }

    /// <summary>
    /// An end's Disconnect reaches every socket of the session or is cut off at the notify deadline: a socket whose guest
    /// stopped reading (a 4 MiB frame stuck in front of it) is cut off and its receipt row says so; the socket that reads
    /// is counted and recorded as delivered; the call does not wait past the deadline.
    /// </summary>
    [Fact]
    public async Task ASocketThatDoesNotTakeTheDisconnect_IsCutOffAtTheDeadline_AndItsReceiptRowSaysSo()
    {
        var deadline = TimeSpan.FromSeconds(1);
        await using var server = await ParleyServer.StartAsync(o => o with { NotifyTimeout = deadline });
        var registry = server.Services.GetRequiredService<SessionRegistry>();
        var hub = server.Services.GetRequiredService<LocalSessionHub>();
        var receipts = server.Services.GetRequiredService<IReceiptStore>();
        using var stalledPair = await SocketPair.ConnectAsync(smallBuffers: true);
        using var readingPair = await SocketPair.ConnectAsync();
        var stalled = new GuestConnection(stalledPair.Server, 16, TimeSpan.FromSeconds(30));
        var reading = new GuestConnection(readingPair.Server, 16, TimeSpan.FromSeconds(30));
        const string session = "receipt-deadline-session";
        registry.Attach(session, stalled);
        registry.Attach(session, reading);
        Assert.True(stalled.Deliver(new byte[4 << 20]));   // never read: the Disconnect queues behind it
        var n = 0;
        var conversation = ConversationMachine.Start(Guid.NewGuid().ToString(), ChannelKind.WebMessaging, ParleyServer.DeploymentId, session,
            DisconnectMode.Send, MessageDirection.Outbound, "Guest", "Bot", () => $"p-{++n}", DateTimeOffset.UtcNow);
        var terminationId = Guid.NewGuid().ToString();

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var told = await hub.DeliverAsync(session, new SessionDelivery.Ended(conversation, DateTimeOffset.UtcNow, terminationId), deadline)
            .WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, told);
        Assert.InRange(watch.Elapsed, deadline - TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));
        var frame = new byte[64 * 1024];
        var got = await readingPair.Client.ReceiveAsync(frame, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        Assert.Contains("Disconnect", System.Text.Encoding.UTF8.GetString(frame, 0, got.Count));

        IReadOnlyList<SocketReceipt> rows = [];
        for (var until = DateTime.UtcNow.AddSeconds(10); rows.Count < 2 && DateTime.UtcNow < until; await Task.Delay(20))
            rows = await receipts.ListSocketsAsync(terminationId, CancellationToken.None);   // the recorder writes in batches
        Assert.Equal(2, rows.Count);
        var delivered = Assert.Single(rows, r => r.Delivered);
        Assert.Equal(reading.Id, delivered.SocketId);
        var cut = Assert.Single(rows, r => !r.Delivered);
        Assert.Equal(stalled.Id, cut.SocketId);
        Assert.Equal("cut off: the frame was not written within 1 s", cut.Error);
        Assert.Equal(WebSocketState.Aborted, stalledPair.Server.State);
        registry.Detach(session, stalled);
        registry.Detach(session, reading);
    }

    [Fact]
    public async Task OpenMessaging_WebhookAnswers200_ChannelDelivered_WithOneAttempt()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(Webhooks());
        using var platform = await server.PlatformAsync();
        await using var receipts = await NotificationSocket.OpenAsync(platform, Topic);
        var integrationId = await OpenConversations.CreateIntegrationAsync(platform, receiver.Url);
        var conversationId = await OpenConversations.StartAsync(platform, integrationId);
        await receiver.NextAsync();   // the agentless message

        var terminationId = await EndAsync(platform, conversationId);

        var notice = await receiver.NextAsync();
        Assert.Equal("Disconnect", (string?)notice.Json["events"]![0]!["presence"]!["type"]);
        var pushed = await NextReceiptAsync(receipts, conversationId, Settled);
        var (_, receipt) = await platform.GetAsync($"/api/v2/parley/receipts/{terminationId}");
        foreach (var r in new[] { pushed, receipt!.AsObject() })
        {
            Assert.Equal("delivered", (string?)r["state"]);
            Assert.Equal(0, (int)r["socketsTargeted"]!);
            Assert.Empty(r["sockets"]!.AsArray());
            var channel = Assert.Single(r["channels"]!.AsArray())!;
            Assert.Equal(integrationId, (string?)channel["integrationId"]);
            Assert.Equal("delivered", (string?)channel["state"]);
            Assert.Equal(1, (int)channel["attempts"]!);
            Assert.Equal(200, (int)channel["lastStatus"]!);
            Assert.NotNull((string?)channel["deliveredAt"]);
        }
    }

    [Fact]
    public async Task OpenMessaging_WebhookAnswers500UntilDead_ChannelFailed_WithAttemptsAndLastStatus_ReceiptFailed()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(Webhooks(maxAttempts: 3));
        using var platform = await server.PlatformAsync();
        await using var receipts = await NotificationSocket.OpenAsync(platform, Topic);
        var integrationId = await OpenConversations.CreateIntegrationAsync(platform, receiver.Url);
        receiver.RespondWith(200, 500, 500, 500);   // the message; then the end notice, until it is dead
        var conversationId = await OpenConversations.StartAsync(platform, integrationId);
        await receiver.NextAsync();   // the agentless message, answered 200

        var terminationId = await EndAsync(platform, conversationId);

        var pushed = await NextReceiptAsync(receipts, conversationId, Settled);
        var (_, receipt) = await platform.GetAsync($"/api/v2/parley/receipts/{terminationId}");
        foreach (var r in new[] { pushed, receipt!.AsObject() })
        {
            Assert.Equal("failed", (string?)r["state"]);
            var channel = Assert.Single(r["channels"]!.AsArray())!;
            Assert.Equal("failed", (string?)channel["state"]);
            Assert.Equal(3, (int)channel["attempts"]!);
            Assert.Equal(500, (int)channel["lastStatus"]!);
            Assert.Contains("gave up after 3 attempts", (string?)channel["lastError"]);
            Assert.Null(channel["deliveredAt"]);
        }
        Assert.Equal(4, receiver.Count);   // the message, then the notice three times: no more
    }

    [Fact]
    public async Task OpenMessaging_SlowReceiver_ReceiptPendingWhileItHoldsTheNotice_DeliveredOnceItAnswers_EachChangePushed()
    {
        await using var receiver = await HeldReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(Webhooks());
        using var platform = await server.PlatformAsync();
        await using var receipts = await NotificationSocket.OpenAsync(platform, Topic);
        var integrationId = await OpenConversations.CreateIntegrationAsync(platform, receiver.Url);
        var conversationId = await OpenConversations.StartAsync(platform, integrationId);
        receiver.HoldDisconnect = true;

        var terminationId = await EndAsync(platform, conversationId);

        // Created: pushed as pending at once.
        var created = await NextReceiptAsync(receipts, conversationId);
        Assert.Equal("pending", (string?)created["state"]);
        Assert.Equal(terminationId, (string?)created["id"]);
        await receiver.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var (_, held) = await platform.GetAsync($"/api/v2/parley/receipts/{terminationId}");
        Assert.Equal("pending", (string?)held!["state"]);
        var waiting = Assert.Single(held["channels"]!.AsArray())!;
        Assert.Equal("pending", (string?)waiting["state"]);
        Assert.Equal(0, (int)waiting["attempts"]!);
        Assert.Null(waiting["deliveredAt"]);

        receiver.Release();

        var delivered = await NextReceiptAsync(receipts, conversationId, Settled);
        Assert.Equal("delivered", (string?)delivered["state"]);
        Assert.Equal(1, (int)delivered["channels"]![0]!["attempts"]!);
        var (_, after) = await platform.GetAsync($"/api/v2/parley/receipts/{terminationId}");
        Assert.Equal("delivered", (string?)after!["state"]);
    }

    [Fact]
    public async Task UnknownId_Is404_InThePlatformsForm_NoToken401_WithoutAuditView403_TopicListed()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();

        var (missing, error) = await platform.GetAsync($"/api/v2/parley/receipts/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(404, (int)error!["status"]!);
        Assert.Equal("not.found", (string?)error["code"]);

        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v2/parley/receipts/x")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v2/parley/receipts")).StatusCode);

        var (id, secret) = await OAuthHelpers.CreateClientAsync(platform, "no audit", "conversation:message:view");
        using var limited = await OAuthHelpers.AsClientAsync(server, id, secret);
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.GetAsync("/api/v2/parley/receipts/x")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.GetAsync("/api/v2/parley/receipts")).Response.StatusCode);
        // Nor may it subscribe to the receipts.
        var (_, channel) = await limited.PostAsync("/api/v2/notifications/channels");
        var (refused, _) = await limited.PostAsync($"/api/v2/notifications/channels/{channel!["id"]}/subscriptions", new[] { new { id = Topic } });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);

        var (_, available) = await platform.GetAsync("/api/v2/notifications/availabletopics");
        var listed = available!["entities"]!.AsArray().Single(t => (string?)t!["id"] == Topic)!;
        Assert.Equal("audits:audit:view", (string?)listed["requiresPermissions"]![0]);
    }
}

/// <summary>Open messaging conversations for the receipt tests: an integration on a loopback receiver, a conversation started agentless.</summary>
static class OpenConversations
{
    public static async Task<string> CreateIntegrationAsync(PlatformClient platform, string webhookUrl)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Receipts channel", outboundNotificationWebhookUrl = webhookUrl,
            outboundNotificationWebhookSignatureSecretToken = "a-signature-secret-of-some-length",
            disconnectNotification = true, conversationDisconnect = new { type = "ReadOnly" },
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (string)body!["id"]!;
    }

    public static async Task<string> StartAsync(PlatformClient platform, string integrationId)
    {
        var (response, sent) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = integrationId, toAddress = "+4930" + Random.Shared.Next(100000, 999999), toAddressMessengerType = "open", textBody = "Your order shipped.",
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (string)sent!["conversationId"]!;
    }
}

/// <summary>A webhook receiver that answers 200 at once, except the end notice when told to hold it: held until released.</summary>
sealed class HeldReceiver : IAsyncDisposable
{
    Microsoft.AspNetCore.Builder.WebApplication _app = null!;
    readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public string Url { get; private set; } = "";
    public volatile bool HoldDisconnect;
    /// <summary>Completes when the receiver holds the end notice's request open.</summary>
    public TaskCompletionSource Holding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<HeldReceiver> StartAsync()
    {
        var receiver = new HeldReceiver();
        (receiver._app, receiver.Url) = await LoopbackWebhook.StartAsync(receiver.HandleAsync);
        return receiver;
    }

    async Task HandleAsync(HttpContext http)
    {
        var body = (await JsonNode.ParseAsync(http.Request.Body))!;
        if (HoldDisconnect && (string?)body["events"]?[0]?["presence"]?["type"] == "Disconnect")
        {
            Holding.TrySetResult();
            await _release.Task.WaitAsync(http.RequestAborted);
        }
        http.Response.StatusCode = 200;
    }

    public void Release() => _release.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        Release();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
