using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Attacks on webhooks, performed: header injection (CR/LF, framing and signature headers), server-side request forgery
/// (internal addresses, also behind a DNS name), replayed deliveries and inbound posts, and secret rotation.
/// </summary>
public sealed class WebhookSecurityTests
{
    const string Secret = "a-signature-secret-of-some-length";
    const string NewSecret = "the-rotated-secret-0123456789";
    const string IntegrationsPath = "/api/v2/conversations/messaging/integrations/open";

    static Func<ParleyOptions, ParleyOptions> AllowLoopback => o => o with
    {
        WebhooksAllowPrivateNetworks = true,
        WebhookRetryBase = TimeSpan.FromMilliseconds(100), WebhookRetryCap = TimeSpan.FromMilliseconds(400), WebhookTimeout = TimeSpan.FromSeconds(3),
    };

    static Task<(HttpResponseMessage Response, JsonNode? Body)> CreateAsync(PlatformClient platform, string url,
        Dictionary<string, string>? headers = null, string secret = Secret) =>
        platform.PostAsync(IntegrationsPath, new
        {
            name = "Partner channel", outboundNotificationWebhookUrl = url, outboundNotificationWebhookSignatureSecretToken = secret,
            webhookHeaders = headers ?? new Dictionary<string, string> { ["X-Partner-Key"] = "partner-123" },
        });

    static async Task<string> CreatedAsync(PlatformClient platform, string url, Dictionary<string, string>? headers = null)
    {
        var (response, body) = await CreateAsync(platform, url, headers);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (string)body!["id"]!;
    }

    /// <summary>Changes a stored integration behind the API's back: a row saved by an older version, or edited in the database.</summary>
    static async Task StoreAsync(ParleyServer server, string integrationId, string column, string value)
    {
        await using var db = new SqliteConnection($"Data Source={Path.Combine(server.DataDir, "parley.db")};Pooling=False;Default Timeout=10");
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = $"UPDATE open_integrations SET {column} = $v WHERE id = $id";
        cmd.Parameters.AddWithValue("$v", value);
        cmd.Parameters.AddWithValue("$id", integrationId);
        Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
    }

    /// <summary>The integration's first delivery once it is settled (Dead or Delivered), so a regression fails with what happened.</summary>
    static async Task<JsonNode> SettledDeliveryAsync(PlatformClient platform, string integrationId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            foreach (var state in new[] { "Dead", "Delivered" })
            {
                var (_, list) = await platform.GetAsync($"/api/v2/parley/openmessaging/deliveries?state={state}&integrationId={integrationId}");
                if (list!["entities"]!.AsArray().FirstOrDefault() is { } found) return found;
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No settled delivery for {integrationId}.");
            await Task.Delay(50);   // polling the API: the outbox has no push notification to wait on
        }
    }

    static void AssertRefused((HttpResponseMessage Response, JsonNode? Body) answer, string field, string mentions)
    {
        Assert.Equal(HttpStatusCode.BadRequest, answer.Response.StatusCode);
        Assert.Equal("bad.request", (string?)answer.Body!["code"]);
        Assert.Equal(400, (int)answer.Body["status"]!);
        Assert.Equal(field, (string?)answer.Body["details"]![0]!["fieldName"]);
        Assert.Contains(mentions, (string)answer.Body["message"]!);
    }

    // ---------------------------------------------------------------- header injection

    [Fact]
    public async Task WebhookHeaders_WithControlCharactersOrReservedNames_AreRefusedAtCreateAndUpdate_NamingTheHeader()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var attacks = new (string Name, string Value, string Mentions)[]
        {
            ("X-Note", "a\r\nContent-Length: 0\r\n\r\nGET /admin HTTP/1.1\r\nHost: internal.example", "'X-Note'"),
            ("X-Note", "a\nb", "LF"),
            ("X-Note", "a\rb", "CR"),
            ("X-Note", "a\0b", "NUL"),
            ("X-Bad\r\nHost", "evil.example", "X-Bad\\u000D\\u000AHost"),
            ("X Space", "v", "X Space"),
            ("Host", "internal.example", "'Host'"),
            ("content-length", "0", "'content-length'"),
            ("Transfer-Encoding", "chunked", "'Transfer-Encoding'"),
            ("Connection", "keep-alive, Upgrade", "'Connection'"),
            ("Upgrade", "websocket", "'Upgrade'"),
            ("X-Hub-Signature-256", "sha256=forged", "'X-Hub-Signature-256'"),
            ("Parley-Webhook-Signature", "t=1,v1=forged", "'Parley-Webhook-Signature'"),
            ("X-Parley-Delivery-Id", "forged", "'X-Parley-Delivery-Id'"),
        };

        foreach (var (name, value, mentions) in attacks)
            AssertRefused(await CreateAsync(platform, "https://partner.example/webhook", new() { [name] = value }), "webhookHeaders", mentions);

        var (_, none) = await platform.GetAsync(IntegrationsPath);
        Assert.Equal(0, (int)none!["total"]!);   // nothing was stored
        var id = await CreatedAsync(platform, "https://partner.example/webhook");
        foreach (var (name, value, mentions) in attacks)
            AssertRefused(await platform.PatchAsync($"{IntegrationsPath}/{id}", new { webhookHeaders = new Dictionary<string, string> { [name] = value } }),
                "webhookHeaders", mentions);
        var (_, kept) = await platform.GetAsync($"{IntegrationsPath}/{id}");
        Assert.Equal(new[] { "X-Partner-Key" }, kept!["webhookHeaders"]!.AsObject().Select(h => h.Key));
        var long1 = await CreateAsync(platform, "https://partner.example/webhook", new() { [new string('X', 10_000)] = "v" });
        AssertRefused(long1, "webhookHeaders", "longer than 64");
        Assert.True(((string)long1.Body!["message"]!).Length < 400, "the answer does not echo an unbounded name");
    }

    [Fact]
    public async Task WebhookHeaders_AllowedOnes_ArriveAsExactlyOneRequest_ByteForByte()
    {
        await using var receiver = RawHttpReceiver.Start();
        await using var server = await ParleyServer.StartAsync(AllowLoopback);
        using var platform = await server.PlatformAsync();
        var id = await CreatedAsync(platform, receiver.Url, new() { ["X-Partner-Key"] = "partner-123", ["Authorization"] = "Bearer abc.def" });

        await OpenMessagingTests.AgentlessAsync(platform, id, "+1", "hello");
        var connection = await receiver.NextAsync();

        Assert.Equal("POST /webhook HTTP/1.1", connection.HeaderLines[0]);
        Assert.Single(connection.HeaderLines, "X-Partner-Key: partner-123");
        Assert.Single(connection.HeaderLines, "Authorization: Bearer abc.def");
        Assert.Single(connection.HeaderLines, $"Host: 127.0.0.1:{receiver.Port}");
        Assert.Equal(0, connection.Trailing);   // one request, nothing after its body
        Assert.Equal("hello", (string?)JsonNode.Parse(connection.Body)!["text"]);
    }

    [Fact]
    public async Task WebhookHeaders_AStoredCrLfRow_IsNotSent_NoSecondRequestReachesTheReceiver()
    {
        await using var receiver = RawHttpReceiver.Start();
        await using var server = await ParleyServer.StartAsync(AllowLoopback);
        using var platform = await server.PlatformAsync();
        var poisoned = await CreatedAsync(platform, receiver.Url);
        // Saved before validation existed: the value ends the delivery early and smuggles a request to another Host.
        await StoreAsync(server, poisoned, "webhook_headers",
            "{\"X-Smuggle\":\"a\\r\\nContent-Length: 0\\r\\n\\r\\nPOST /smuggled HTTP/1.1\\r\\nHost: internal.example\\r\\nContent-Length: 0\"}");

        await OpenMessagingTests.AgentlessAsync(platform, poisoned, "+1", "never sent");
        var dead = await SettledDeliveryAsync(platform, poisoned);

        Assert.Equal("Dead", (string?)dead["state"]);

        Assert.Contains("'X-Smuggle'", (string)dead["lastError"]!);
        Assert.Contains("CR", (string)dead["lastError"]!);
        Assert.Null(dead["lastStatus"]);
        // The sentinel: a clean integration on the same receiver. Its request is the first and only connection.
        var clean = await CreatedAsync(platform, receiver.Url);
        await OpenMessagingTests.AgentlessAsync(platform, clean, "+2", "sentinel");
        var connection = await receiver.NextAsync();
        Assert.Equal("sentinel", (string?)JsonNode.Parse(connection.Body)!["text"]);
        Assert.Equal(1, receiver.Count);
        Assert.DoesNotContain("smuggled", connection.Text);
        Assert.Equal(0, connection.Trailing);
    }

    // ---------------------------------------------------------------- server-side request forgery

    [Fact]
    public async Task InternalTargets_AreRefusedAtCreateAndUpdate_PublicOnesAccepted()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        string[] internalTargets =
        [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            $"http://127.0.0.1:{server.BaseAddress.Port}/api/v2/conversations",
            "http://localhost:22/",
            "http://LOCALHOST./",
            "http://admin.localhost/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://0.0.0.0:8080/",
            "http://10.1.2.3/",
            "http://172.20.0.1/",
            "http://192.168.1.1/",
            "http://100.100.100.200/latest/meta-data/",
            "http://168.63.129.16/metadata/",
            "http://224.0.0.1/",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://metadata.google.internal/computeMetadata/v1/",
        ];

        foreach (var url in internalTargets)
            AssertRefused(await CreateAsync(platform, url), "outboundNotificationWebhookUrl", "Parley__Webhooks__AllowPrivateNetworks=true");
        var id = await CreatedAsync(platform, "https://partner.example/webhook");
        foreach (var url in internalTargets)
            AssertRefused(await platform.PatchAsync($"{IntegrationsPath}/{id}", new { outboundNotificationWebhookUrl = url }),
                "outboundNotificationWebhookUrl", "refused");

        Assert.Equal(HttpStatusCode.OK, (await CreateAsync(platform, "https://93.184.215.14/hook")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await CreateAsync(platform, "https://[2606:4700::1111]/hook")).Response.StatusCode);
        var (_, got) = await platform.GetAsync($"{IntegrationsPath}/{id}");
        Assert.Equal("https://partner.example/webhook", (string?)got!["outboundNotificationWebhookUrl"]);
    }

    [Fact]
    public async Task AHostThatResolvesToLoopback_IsRefusedWhenConnecting_DeadLetteredWithoutWhatItAnswered()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(o => AllowLoopback(o) with { WebhooksAllowPrivateNetworks = false });
        using var platform = await server.PlatformAsync();
        var byName = await CreatedAsync(platform, "https://partner.example/webhook");
        var ownPort = await CreatedAsync(platform, "https://partner.example/webhook");
        var metadata = await CreatedAsync(platform, "https://partner.example/webhook");
        // The names resolved elsewhere when saved; now one resolves to loopback (DNS rebinding). Rows stored by an older
        // version, or edited in the database, point at Parley's own port and at the cloud metadata service.
        await StoreAsync(server, byName, "webhook_url", $"http://localhost:{receiver.Port}/webhook");
        await StoreAsync(server, ownPort, "webhook_url", $"http://0x7f.1:{server.BaseAddress.Port}/health");
        await StoreAsync(server, metadata, "webhook_url", "http://169.254.169.254/latest/meta-data/iam/security-credentials/");

        await OpenMessagingTests.AgentlessAsync(platform, byName, "+1", "to a name that resolves to loopback");
        await OpenMessagingTests.AgentlessAsync(platform, ownPort, "+2", "to Parley itself");
        await OpenMessagingTests.AgentlessAsync(platform, metadata, "+3", "to the metadata service");
        var refusedName = await SettledDeliveryAsync(platform, byName);
        var refusedOwn = await SettledDeliveryAsync(platform, ownPort);
        var refusedMetadata = await SettledDeliveryAsync(platform, metadata);

        foreach (var (dead, range) in new[] { (refusedName, "loopback"), (refusedOwn, "loopback"), (refusedMetadata, "link-local") })
        {
            Assert.Equal("Dead", (string?)dead["state"]);
            var error = (string)dead["lastError"]!;
            Assert.StartsWith("not sent: ", error);
            Assert.Contains($"resolves to a {range}", error);
            Assert.Null(dead["lastStatus"]);
            Assert.Equal(1, (int)dead["attempts"]!);   // not retried
        }
        Assert.Contains("localhost", (string)refusedName["lastError"]!);
        Assert.Equal(0, receiver.Count);   // nothing reached the loopback receiver
    }

    [Fact]
    public async Task AllowPrivateNetworks_LetsALoopbackReceiverThrough()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(AllowLoopback);
        using var platform = await server.PlatformAsync();
        var id = await CreatedAsync(platform, $"http://localhost:{receiver.Port}/webhook");

        await OpenMessagingTests.AgentlessAsync(platform, id, "+1", "local development");

        Assert.Equal("local development", (string?)(await receiver.NextAsync()).Json["text"]);
    }

    [Fact]
    public void AllowPrivateNetworks_IsReadFromConfiguration_OffByDefault()
    {
        static ParleyOptions Read(Dictionary<string, string?> values) =>
            ParleyOptions.FromEnvironment(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

        Assert.False(Read([]).WebhooksAllowPrivateNetworks);
        Assert.True(Read(new() { ["Parley:Webhooks:AllowPrivateNetworks"] = "true" }).WebhooksAllowPrivateNetworks);
        Assert.False(Read(new() { ["Parley:Webhooks:AllowPrivateNetworks"] = "false" }).WebhooksAllowPrivateNetworks);
        // A typo does not silently leave the guard on or off: the server refuses to start, saying what it expects.
        Assert.Contains("true or false", Assert.ThrowsAny<Exception>(() => Read(new() { ["Parley:Webhooks:AllowPrivateNetworks"] = "yes" })).Message);
        Assert.Equal(TimeSpan.FromMinutes(10),
            Read(new() { ["Parley:Webhooks:SecretRotationOverlapSeconds"] = "600" }).WebhookSecretRotationOverlap);
        Assert.ThrowsAny<Exception>(() => Read(new() { ["Parley:Webhooks:SecretRotationOverlapSeconds"] = "-1" }));
    }

    // ---------------------------------------------------------------- replay protection

    [Fact]
    public async Task Delivery_CarriesATimestampedSignature_AcceptedInTheWindow_AReplayOutsideItRejected()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(AllowLoopback);
        using var platform = await server.PlatformAsync();
        var id = await CreatedAsync(platform, receiver.Url);

        await OpenMessagingTests.AgentlessAsync(platform, id, "+1", "signed with a timestamp");
        var delivery = await receiver.NextAsync();

        var (t, v1) = TimestampedSignature.Parse(delivery.Header("Parley-Webhook-Signature"));
        Assert.Single(v1);
        Assert.Equal(t.ToString(), delivery.Header("Parley-Webhook-Timestamp"));
        Assert.InRange(t, delivery.At.ToUnixTimeSeconds() - 30, delivery.At.ToUnixTimeSeconds() + 1);
        Assert.True(delivery.IsSignedWith(Secret), "the platform's X-Hub-Signature-256 is still sent");
        Assert.True(delivery.HasTimestampedSignature(Secret, delivery.At));
        Assert.True(delivery.HasTimestampedSignature(Secret, DateTimeOffset.FromUnixTimeSeconds(t) + TimeSpan.FromSeconds(299)));
        // The same bytes replayed later than the window, or with the timestamp moved, or the body changed: refused.
        Assert.False(delivery.HasTimestampedSignature(Secret, DateTimeOffset.FromUnixTimeSeconds(t) + TimeSpan.FromSeconds(301)));
        Assert.False(TimestampedSignature.Verify($"t={t + 600},v1={v1[0]}", delivery.RawBody, Secret, DateTimeOffset.FromUnixTimeSeconds(t + 600),
            TimestampedSignature.Tolerance));
        Assert.False(TimestampedSignature.Verify(delivery.Header("Parley-Webhook-Signature"), [.. delivery.RawBody, (byte)' '], Secret, delivery.At,
            TimestampedSignature.Tolerance));
        Assert.False(delivery.HasTimestampedSignature("another-secret-entirely", delivery.At));
    }

    static async Task<HttpResponseMessage> InboundSignedAsync(PlatformClient platform, string integrationId, string text,
        string? hubSecret = null, (string Secret, long T)? timestamped = null)
    {
        var raw = Encoding.UTF8.GetBytes($"{{\"channel\":{{\"messageId\":\"{Guid.NewGuid()}\",\"from\":{{\"id\":\"+1\",\"idType\":\"Phone\"}},\"time\":\"2024-05-20T14:30:00.000Z\"}},\"text\":\"{text}\"}}");
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/messages/{integrationId}/inbound/open/message?prefetchConversationId=true")
            { Content = new ByteArrayContent(raw) { Headers = { ContentType = new("application/json") } } };
        if (hubSecret is not null)
            request.Headers.Add("X-Hub-Signature-256",
                "sha256=" + Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(hubSecret), raw)));
        if (timestamped is { } ts) request.Headers.Add("Parley-Webhook-Signature", TimestampedSignature.Sign(ts.Secret, ts.T, raw));
        return await platform.Http.SendAsync(request);
    }

    [Fact]
    public async Task InboundPost_WithATimestampedSignature_IsAcceptedFresh_AndRefusedAsAReplay()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var id = await CreatedAsync(platform, "https://partner.example/webhook");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        var fresh = await InboundSignedAsync(platform, id, "fresh", timestamped: (Secret, now));
        var replayed = await InboundSignedAsync(platform, id, "replayed", timestamped: (Secret, now - 600));
        var forged = await InboundSignedAsync(platform, id, "forged", timestamped: ("not-the-secret-at-all", now));

        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
        var replayError = (await replayed.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("signature.invalid", (string?)replayError["code"]);
        Assert.Contains("300 s", (string?)replayError["message"]);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        var stored = (await fresh.Content.ReadFromJsonAsync<JsonObject>())!;
        var customer = (await platform.ConversationAsync((string)stored["conversationId"]!))["participants"]!.AsArray()
            .Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Equal(new[] { (string?)stored["id"] }, customer["messages"]![0]!["messages"]!.AsArray().Select(m => (string?)m!["messageId"]));   // only the fresh one
    }

    // ---------------------------------------------------------------- secret rotation

    [Fact]
    public async Task SecretRotation_DuringTheOverlapBothSecretsVerify_AfterItOnlyTheNew()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(AllowLoopback);
        using var platform = await server.PlatformAsync();
        var id = await CreatedAsync(platform, receiver.Url);

        var (rotateResponse, rotated) = await platform.PatchAsync($"{IntegrationsPath}/{id}",
            new { outboundNotificationWebhookSignatureSecretToken = NewSecret, secretRotationOverlapSeconds = 3600 });
        Assert.Equal(HttpStatusCode.OK, rotateResponse.StatusCode);
        Assert.InRange(DateTimeOffset.Parse((string)rotated!["previousSecretExpiresAt"]!) - DateTimeOffset.UtcNow,
            TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61));
        await OpenMessagingTests.AgentlessAsync(platform, id, "+1", "during the overlap");
        var during = await receiver.NextAsync();

        Assert.Equal(2, TimestampedSignature.Parse(during.Header("Parley-Webhook-Signature")).V1.Count);
        Assert.True(during.HasTimestampedSignature(NewSecret, during.At));
        Assert.True(during.HasTimestampedSignature(Secret, during.At), "a receiver still on the old secret verifies");
        Assert.True(during.IsSignedWith(NewSecret), "X-Hub-Signature-256 (one value) carries the current secret");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.Equal(HttpStatusCode.OK, (await InboundSignedAsync(platform, id, "old hub", hubSecret: Secret)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await InboundSignedAsync(platform, id, "new hub", hubSecret: NewSecret)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await InboundSignedAsync(platform, id, "old t", timestamped: (Secret, now))).StatusCode);

        // Every receiver has the new secret: the overlap is ended now.
        var (endResponse, ended) = await platform.PatchAsync($"{IntegrationsPath}/{id}", new { secretRotationOverlapSeconds = 0 });
        Assert.Equal(HttpStatusCode.OK, endResponse.StatusCode);
        Assert.Null(ended!["previousSecretExpiresAt"]);
        await OpenMessagingTests.AgentlessAsync(platform, id, "+2", "after the overlap");
        var after = await receiver.NextAsync();

        Assert.Single(TimestampedSignature.Parse(after.Header("Parley-Webhook-Signature")).V1);
        Assert.True(after.HasTimestampedSignature(NewSecret, after.At));
        Assert.False(after.HasTimestampedSignature(Secret, after.At));
        Assert.True(after.IsSignedWith(NewSecret));
        Assert.Equal(HttpStatusCode.Unauthorized, (await InboundSignedAsync(platform, id, "old hub", hubSecret: Secret)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await InboundSignedAsync(platform, id, "old t", timestamped: (Secret, now))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await InboundSignedAsync(platform, id, "new t", timestamped: (NewSecret, now))).StatusCode);
    }

    [Fact]
    public async Task SecretRotation_TheOverlapEndsOnItsOwn()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var id = await CreatedAsync(platform, "https://partner.example/webhook");

        var (_, rotated) = await platform.PatchAsync($"{IntegrationsPath}/{id}",
            new { outboundNotificationWebhookSignatureSecretToken = NewSecret, secretRotationOverlapSeconds = 1 });
        var ends = DateTimeOffset.Parse((string)rotated!["previousSecretExpiresAt"]!);
        var wait = ends - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(50);
        if (wait > TimeSpan.Zero) await Task.Delay(wait);   // the behaviour under test is the passing of time itself

        var (_, got) = await platform.GetAsync($"{IntegrationsPath}/{id}");
        Assert.Null(got!["previousSecretExpiresAt"]);
        Assert.Equal(HttpStatusCode.Unauthorized, (await InboundSignedAsync(platform, id, "old, after", hubSecret: Secret)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await InboundSignedAsync(platform, id, "new, after", hubSecret: NewSecret)).StatusCode);
        var (badResponse, _) = await platform.PatchAsync($"{IntegrationsPath}/{id}", new { secretRotationOverlapSeconds = 8 * 24 * 3600 });
        Assert.Equal(HttpStatusCode.BadRequest, badResponse.StatusCode);
    }
}
