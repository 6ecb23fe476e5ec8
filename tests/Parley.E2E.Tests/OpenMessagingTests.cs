using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>The user's own flow over Open Messaging, against a real webhook receiver on loopback.</summary>
public sealed class OpenMessagingTests
{
    const string Secret = "a-signature-secret-of-some-length";

    // The receivers here listen on loopback, which the webhook network guard refuses by default.
    static Func<ParleyOptions, ParleyOptions> FastRetries => o => o with
    {
        WebhooksAllowPrivateNetworks = true,
        WebhookRetryBase = TimeSpan.FromMilliseconds(100), WebhookRetryCap = TimeSpan.FromMilliseconds(400), WebhookTimeout = TimeSpan.FromSeconds(3),
    };

    static async Task<string> CreateIntegrationAsync(PlatformClient platform, string webhookUrl, string afterEnd = "ReadOnly", bool notify = true)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Partner channel", outboundNotificationWebhookUrl = webhookUrl, outboundNotificationWebhookSignatureSecretToken = Secret,
            webhookHeaders = new Dictionary<string, string> { ["X-Partner-Key"] = "partner-123" },
            disconnectNotification = notify, conversationDisconnect = new { type = afterEnd },
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return body!["id"]!.GetValue<string>();
    }

    internal static Task<(HttpResponseMessage Response, JsonNode? Body)> AgentlessAsync(PlatformClient platform, string integrationId, string to, string text,
        bool useExisting = false) =>
        platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = integrationId, toAddress = to, toAddressMessengerType = "open", textBody = text, useExistingActiveConversation = useExisting,
        });

    static Task<(HttpResponseMessage Response, JsonNode? Body)> InboundAsync(PlatformClient platform, string integrationId, string from, string text,
        string? messageId = null) =>
        platform.PostAsync($"/api/v2/conversations/messages/{integrationId}/inbound/open/message?prefetchConversationId=true", new
        {
            channel = new
            {
                messageId = messageId ?? Guid.NewGuid().ToString(), time = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"),
                from = new { id = from, idType = "Phone", nickname = "Bobby" },
            },
            text,
        });

    [Fact]
    public async Task SeedFlow_AgentlessOutbound_SignedWebhook_Reply_BackendTermination_ReachesTheChannel()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var integrationId = await CreateIntegrationAsync(platform, receiver.Url);

        var (sentResponse, sent) = await AgentlessAsync(platform, integrationId, "+4930123456", "Your order shipped. Anything else?");

        Assert.Equal(HttpStatusCode.OK, sentResponse.StatusCode);
        var conversationId = sent!["conversationId"]!.GetValue<string>();
        Assert.Equal("open", (string?)sent["messengerType"]);
        var delivered = await receiver.NextAsync();
        Assert.True(delivered.IsSignedWith(Secret), "X-Hub-Signature-256 is base64 HMAC-SHA256 of the raw body");
        Assert.Equal("partner-123", delivered.Header("X-Partner-Key"));
        Assert.StartsWith("application/json", delivered.Header("Content-Type"));
        var body = delivered.Json;
        Assert.Equal(sent["id"]!.GetValue<string>(), (string?)body["id"]);
        Assert.Equal("Text", (string?)body["type"]);
        Assert.Equal("Outbound", (string?)body["direction"]);
        Assert.Equal("Your order shipped. Anything else?", (string?)body["text"]);
        Assert.Equal(conversationId, (string?)body["conversationId"]);
        Assert.Equal("Open", (string?)body["channel"]!["platform"]);
        Assert.Equal(integrationId, (string?)body["channel"]!["id"]);
        Assert.Equal("+4930123456", (string?)body["channel"]!["to"]!["id"]);

        var (replyResponse, reply) = await InboundAsync(platform, integrationId, "+4930123456", "No, thanks");
        Assert.Equal(HttpStatusCode.OK, replyResponse.StatusCode);
        Assert.Equal(conversationId, (string?)reply!["conversationId"]);
        Assert.Equal("Inbound", (string?)reply["direction"]);

        var customer = await platform.ParticipantIdAsync(conversationId, "customer");
        var end = new HttpRequestMessage(HttpMethod.Patch, $"/api/v2/conversations/messages/{conversationId}/participants/{customer}")
            { Content = JsonContent.Create(new { state = "disconnected" }) };
        end.Headers.Add("Parley-Termination-Reason", "compliance");
        Assert.Equal(HttpStatusCode.Accepted, (await platform.Http.SendAsync(end)).StatusCode);

        var disconnect = await receiver.NextAsync();
        Assert.True(disconnect.IsSignedWith(Secret));
        Assert.Equal("Event", (string?)disconnect.Json["type"]);
        Assert.Equal("Presence", (string?)disconnect.Json["events"]![0]!["eventType"]);
        Assert.Equal("Disconnect", (string?)disconnect.Json["events"]![0]!["presence"]!["type"]);
        Assert.Equal(conversationId, (string?)disconnect.Json["conversationId"]);

        var (lateResponse, late) = await InboundAsync(platform, integrationId, "+4930123456", "wait, one more thing");
        Assert.Equal(HttpStatusCode.Conflict, lateResponse.StatusCode);
        Assert.Equal("conversation.ended", (string?)late!["code"]);
        var conversation = await platform.ConversationAsync(conversationId);
        Assert.All(conversation["participants"]!.AsArray(), p => Assert.Equal("disconnected", (string?)p!["state"]));
        var customerMessages = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!["messages"]![0]!["messages"]!;
        Assert.Single(customerMessages.AsArray());

        var (_, analytics) = await platform.GetAsync($"/api/v2/analytics/conversations/{conversationId}/details");
        Assert.Equal((string?)conversation["endTime"], (string?)analytics!["conversationEnd"]);
        Assert.Equal("open", (string?)analytics["participants"]![0]!["sessions"]![0]!["messageType"]);
        var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        Assert.Equal("compliance", (string?)audit!["entities"]![0]!["reason"]);
    }

    [Fact]
    public async Task Inbound_FromUnknownSender_StartsConversation_KnownSenderContinues_RepostIsIdempotent()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var integrationId = await CreateIntegrationAsync(platform, receiver.Url);

        var (_, first) = await InboundAsync(platform, integrationId, "guest-42@partner.example", "Hello", messageId: "ext-1");
        var (_, second) = await InboundAsync(platform, integrationId, "guest-42@partner.example", "Are you there?", messageId: "ext-2");
        var (_, repost) = await InboundAsync(platform, integrationId, "guest-42@partner.example", "Hello", messageId: "ext-1");
        var (_, other) = await InboundAsync(platform, integrationId, "someone-else", "Hi");

        var conversationId = first!["conversationId"]!.GetValue<string>();
        Assert.Equal(conversationId, (string?)second!["conversationId"]);
        Assert.Equal((string?)first["id"], (string?)repost!["id"]);
        Assert.NotEqual(conversationId, (string?)other!["conversationId"]);
        var customer = (await platform.ConversationAsync(conversationId))["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Equal(2, customer["messages"]![0]!["messages"]!.AsArray().Count);
        Assert.Equal("Bobby", (string?)customer["name"]);

        var bot = (await platform.ConversationAsync(conversationId))["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!;
        var (sendResponse, sent) = await platform.PostAsync(
            $"/api/v2/conversations/messages/{conversationId}/communications/{bot["messages"]![0]!["id"]}/messages", new { textBody = "Yes, how can I help?" });
        Assert.Equal(HttpStatusCode.OK, sendResponse.StatusCode);
        var delivered = await receiver.NextAsync();
        Assert.Equal((string?)sent!["id"], (string?)delivered.Json["id"]);
        Assert.Equal("guest-42@partner.example", (string?)delivered.Json["channel"]!["to"]!["id"]);

        var (receiptResponse, _) = await platform.PostAsync($"/api/v2/conversations/messages/{integrationId}/inbound/open/receipt", new
        {
            id = sent["id"]!.GetValue<string>(), status = "Delivered", isFinalReceipt = true,
            channel = new { to = new { id = "guest-42@partner.example" }, time = DateTime.UtcNow.ToString("O") },
        });
        Assert.Equal(HttpStatusCode.OK, receiptResponse.StatusCode);
        var (_, data) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}/messages/{sent["id"]}");
        Assert.Equal("delivery-success", (string?)data!["status"]);
    }

    [Fact]
    public async Task SendMode_InboundAfterTheEnd_StartsANewConversation_AndNotificationCanBeOff()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var integrationId = await CreateIntegrationAsync(platform, receiver.Url, afterEnd: "Send", notify: false);
        var (_, started) = await AgentlessAsync(platform, integrationId, "+1555", "hello");
        await receiver.NextAsync();
        var first = started!["conversationId"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.Accepted, (await platform.PostAsync($"/api/v2/conversations/{first}/disconnect")).Response.StatusCode);
        var (afterResponse, after) = await InboundAsync(platform, integrationId, "+1555", "new question");
        var (_, again) = await AgentlessAsync(platform, integrationId, "+1555", "sentinel", useExisting: true);

        Assert.Equal(HttpStatusCode.OK, afterResponse.StatusCode);
        Assert.NotEqual(first, (string?)after!["conversationId"]);
        Assert.Equal((string?)after["conversationId"], (string?)again!["conversationId"]);
        // With the notification off, the next delivery is the sentinel: no Disconnect event was sent.
        Assert.Equal("sentinel", (string?)(await receiver.NextAsync()).Json["text"]);
    }

    [Fact]
    public async Task Receiver500Then200_GetsTheMessageExactlyOnceMoreAfterBackoff()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.RespondWith(500);
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var integrationId = await CreateIntegrationAsync(platform, receiver.Url);

        await AgentlessAsync(platform, integrationId, "+1666", "retry me");

        var failed = await receiver.NextAsync();
        var retried = await receiver.NextAsync();
        Assert.Equal(failed.Json["id"]!.ToString(), retried.Json["id"]!.ToString());
        Assert.Equal(failed.RawBody, retried.RawBody);
        Assert.Equal("1", failed.Header("X-Parley-Delivery-Attempt"));
        Assert.Equal("2", retried.Header("X-Parley-Delivery-Attempt"));
        Assert.True(retried.At - failed.At >= TimeSpan.FromMilliseconds(50), "the retry waited for its backoff");
        var delivery = await WaitForDeliveryAsync(platform, integrationId, "Delivered");
        Assert.Equal(2, (int)delivery["attempts"]!);
        Assert.Equal(2, receiver.Count);   // delivered is final: no third send
    }

    [Fact]
    public async Task ReceiverDownAcrossARestart_GetsTheMessageAfterwards()
    {
        int port;
        await using (var probe = await WebhookReceiver.StartAsync()) port = probe.Port;   // a port that is free, then nobody listens
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var integrationId = await CreateIntegrationAsync(platform, $"http://127.0.0.1:{port}/webhook");
        var (_, sent) = await AgentlessAsync(platform, integrationId, "+1777", "are you there?");
        var pending = await WaitForDeliveryAsync(platform, integrationId, "Pending", attemptsAtLeast: 1);
        Assert.Contains("network error", (string?)pending["lastError"]);

        await server.RestartAsync();
        await using var receiver = await WebhookReceiver.StartAsync(port);
        using var after = await server.PlatformAsync();

        var delivered = await receiver.NextAsync();
        Assert.Equal((string?)sent!["id"], (string?)delivered.Json["id"]);
        Assert.True(delivered.IsSignedWith(Secret));
        await WaitForDeliveryAsync(after, integrationId, "Delivered");
    }

    [Fact]
    public async Task Receiver4xx_DeadLetters_ThenRedeliveryThroughTheApi()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.RespondWith(400);
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var integrationId = await CreateIntegrationAsync(platform, receiver.Url);
        var (_, sent) = await AgentlessAsync(platform, integrationId, "+1888", "refused at first");
        await receiver.NextAsync();

        var dead = await WaitForDeliveryAsync(platform, integrationId, "Dead");
        Assert.Equal(400, (int)dead["lastStatus"]!);
        Assert.Equal(1, (int)dead["attempts"]!);
        Assert.Equal((string?)sent!["id"], (string?)dead["messageId"]);

        var (redeliver, _) = await platform.PostAsync($"/api/v2/parley/openmessaging/deliveries/{dead["id"]}/redeliver");
        Assert.Equal(HttpStatusCode.Accepted, redeliver.StatusCode);
        var again = await receiver.NextAsync();
        Assert.Equal((string?)sent["id"], (string?)again.Json["id"]);
        await WaitForDeliveryAsync(platform, integrationId, "Delivered");
        var (second, error) = await platform.PostAsync($"/api/v2/parley/openmessaging/deliveries/{dead["id"]}/redeliver");
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Equal("delivery.not.dead", (string?)error!["code"]);
    }

    [Fact]
    public async Task ASlowReceiver_DoesNotDelayAnother()
    {
        await using var slow = await WebhookReceiver.StartAsync();
        slow.Delay = TimeSpan.FromSeconds(2);
        await using var fast = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var slowId = await CreateIntegrationAsync(platform, slow.Url);
        var fastId = await CreateIntegrationAsync(platform, fast.Url);

        await AgentlessAsync(platform, slowId, "+1", "to the slow one");
        await slow.NextAsync();   // the slow receiver now holds its request open for 2 s
        var clock = Stopwatch.StartNew();
        await AgentlessAsync(platform, fastId, "+2", "to the fast one");
        await fast.NextAsync();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"the fast receiver waited {clock.Elapsed.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task AGracefulRestart_WhileAReceiverIsAnswering_RecordsTheDelivery_AndDoesNotSendItAgain()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Delay = TimeSpan.FromMilliseconds(700);   // it has the body, and answers 200 only after the stop has begun
        await using var server = await ParleyServer.StartAsync(FastRetries);
        using var platform = await server.PlatformAsync();
        var id = await CreateIntegrationAsync(platform, receiver.Url);
        await AgentlessAsync(platform, id, "+1", "before the restart");
        await receiver.NextAsync();

        await server.RestartAsync();   // the stop waits for the answer and records it, instead of cutting the send short

        using var again = await server.PlatformAsync();
        var (_, delivered) = await again.GetAsync($"/api/v2/parley/openmessaging/deliveries?integrationId={id}&state=Delivered");
        var first = Assert.Single(delivered!["entities"]!.AsArray());
        Assert.Equal(1, (int)first!["attempts"]!);
        Assert.Equal(200, (int)first["lastStatus"]!);

        receiver.Delay = TimeSpan.Zero;
        await AgentlessAsync(again, id, "+2", "after the restart");
        var next = await receiver.NextAsync();
        Assert.Equal("after the restart", (string?)next.Json["text"]);   // not the first one a second time
        Assert.Equal(2, receiver.Count);
    }

    [Fact]
    public async Task Integrations_Crud_NeverEchoTheSecret_AndRefuseBadInput()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var id = await CreateIntegrationAsync(platform, "https://partner.example/webhook");

        var (_, got) = await platform.GetAsync($"/api/v2/conversations/messaging/integrations/open/{id}");
        Assert.Equal("Partner channel", (string?)got!["name"]);
        Assert.DoesNotContain(Secret, got.ToJsonString());
        Assert.EndsWith(Secret[^4..], (string)got["outboundNotificationWebhookSignatureSecretToken"]!);
        Assert.Equal("********", (string?)got["webhookHeaders"]!["X-Partner-Key"]);
        Assert.Equal("Completed", (string?)got["createStatus"]);
        var (_, list) = await platform.GetAsync("/api/v2/conversations/messaging/integrations/open");
        Assert.Equal(1, (int)list!["total"]!);
        var (patchResponse, patched) = await platform.PatchAsync($"/api/v2/conversations/messaging/integrations/open/{id}", new { name = "Renamed" });
        Assert.Equal(HttpStatusCode.OK, patchResponse.StatusCode);
        Assert.Equal("Renamed", (string?)patched!["name"]);

        async Task ExpectAsync((HttpResponseMessage Response, JsonNode? Body) call, HttpStatusCode status, string code)
        {
            Assert.Equal(status, call.Response.StatusCode);
            Assert.Equal(code, (string?)call.Body!["code"]);
        }
        const string path = "/api/v2/conversations/messaging/integrations/open";
        await ExpectAsync(await platform.PostAsync(path, new { name = "x", outboundNotificationWebhookUrl = "ftp://partner.example/hook", outboundNotificationWebhookSignatureSecretToken = Secret }),
            HttpStatusCode.BadRequest, "invalid.value");
        await ExpectAsync(await platform.PostAsync(path, new { name = "x", outboundNotificationWebhookUrl = "https://partner.example/hook", outboundNotificationWebhookSignatureSecretToken = "short" }),
            HttpStatusCode.BadRequest, "bad.request");
        await ExpectAsync(await InboundAsync(platform, Guid.NewGuid().ToString(), "+1", "hi"), HttpStatusCode.NotFound, "not.found");
        await ExpectAsync(await platform.PostAsync($"/api/v2/conversations/messages/{id}/inbound/open/message", new { text = "no channel" }),
            HttpStatusCode.BadRequest, "bad.request");
        await ExpectAsync(await platform.PostAsync($"/api/v2/conversations/messages/{id}/inbound/open/message",
            new { channel = new { from = new { id = "+1", idType = "Pigeon" }, time = "2024-05-20T14:30:00.000Z" }, text = "hi" }),
            HttpStatusCode.BadRequest, "invalid.value");
        await ExpectAsync(await InboundAsync(platform, id, "+1", new string('x', 5000)), HttpStatusCode.BadRequest, "bad.request");
        var malformed = await platform.Http.PostAsync($"/api/v2/conversations/messages/{id}/inbound/open/message",
            new StringContent("{\"channel\":", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        await ExpectAsync(await platform.PostAsync($"/api/v2/conversations/messages/{id}/inbound/open/event", new
        {
            channel = new { from = new { id = "+1", idType = "Phone" }, time = "2024-05-20T14:30:00.000Z" },
            events = new[] { new { eventType = "hangup" } },
        }), HttpStatusCode.BadRequest, "invalid.value");
        var signed = new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/messages/{id}/inbound/open/message")
        {
            Content = new StringContent("{\"channel\":{\"from\":{\"id\":\"+1\",\"idType\":\"Phone\"},\"time\":\"2024-05-20T14:30:00.000Z\"},\"text\":\"forged\"}",
                Encoding.UTF8, "application/json"),
        };
        signed.Headers.Add("X-Hub-Signature-256", "sha256=" + Convert.ToBase64String(new byte[32]));
        var forged = await platform.Http.SendAsync(signed);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Equal("signature.invalid", (string?)(await forged.Content.ReadFromJsonAsync<JsonObject>())!["code"]);
        var (_, none) = await platform.GetAsync("/api/v2/conversations/messages");
        Assert.Equal(0, (int)none!["total"]!);   // nothing was stored half-way

        Assert.Equal(HttpStatusCode.NoContent, (await platform.Http.DeleteAsync($"{path}/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await platform.GetAsync($"{path}/{id}")).Response.StatusCode);
    }

    [Fact]
    public async Task SignedInbound_WithTheRightSignature_IsAccepted()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var id = await CreateIntegrationAsync(platform, "https://partner.example/webhook");
        var raw = Encoding.UTF8.GetBytes("{\"channel\":{\"from\":{\"id\":\"+1\",\"idType\":\"Phone\"},\"time\":\"2024-05-20T14:30:00.000Z\"},\"text\":\"signed\"}");
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/messages/{id}/inbound/open/message")
            { Content = new ByteArrayContent(raw) { Headers = { ContentType = new("application/json") } } };
        request.Headers.Add("X-Hub-Signature-256",
            "sha256=" + Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), raw)));

        var response = await platform.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("signed", (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["text"]);
    }

    internal static async Task<JsonNode> WaitForDeliveryAsync(PlatformClient platform, string integrationId, string state, int attemptsAtLeast = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var (_, list) = await platform.GetAsync($"/api/v2/parley/openmessaging/deliveries?state={state}&integrationId={integrationId}");
            var found = list!["entities"]!.AsArray().FirstOrDefault(d => (int)d!["attempts"]! >= attemptsAtLeast);
            if (found is not null) return found;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No {state} delivery for {integrationId}.");
            await Task.Delay(50);   // polling the API: the outbox has no push notification to wait on
        }
    }
}
