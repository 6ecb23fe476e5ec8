using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Parley.Core;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// The storage ports with an off switch: while <see cref="Down"/> every call throws <see cref="StoreUnavailableException"/>,
/// as an adapter does when its engine cannot be reached. The real SQLite store stays underneath, so switching back on
/// proves recovery on the same data.
/// </summary>
public sealed class StoreSwitch
{
    volatile bool _down;
    readonly ConcurrentDictionary<string, TaskCompletionSource> _refused = new();

    public bool Down { get => _down; set => _down = value; }

    /// <summary>Completes once a call to <paramref name="method"/> has been refused while the store was down.</summary>
    public Task RefusedAsync(string method) => _refused.GetOrAdd(method, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    internal void Refuse(string method)
    {
        _refused.GetOrAdd(method, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        throw new StoreUnavailableException("the test switched the store off");
    }

    /// <summary>Registers every storage port (after the server's own registrations, so these win) behind the switch.</summary>
    public void Install(IServiceCollection services)
    {
        services.AddSingleton(sp => Port.Wrap(sp.GetRequiredService<StoragePorts>().Conversations, this));
        services.AddSingleton(sp => Port.Wrap(sp.GetRequiredService<StoragePorts>().Sessions, this));
        services.AddSingleton(sp => Port.Wrap(sp.GetRequiredService<StoragePorts>().Audit, this));
        services.AddSingleton(sp => Port.Wrap(sp.GetRequiredService<StoragePorts>().Credentials, this));
        services.AddSingleton(sp => Port.Wrap(sp.GetRequiredService<StoragePorts>().Outbox, this));
        services.AddSingleton<IDirectoryStore>(sp =>
            new CachedDirectory(Port.Wrap(sp.GetRequiredService<StoragePorts>().Directory, this), sp.GetRequiredService<TimeProvider>()));
    }

    /// <summary>One port, every method forwarded to the real one unless the switch is off.</summary>
    public class Port : DispatchProxy
    {
        object _inner = null!;
        StoreSwitch _switch = null!;

        public static T Wrap<T>(T inner, StoreSwitch @switch) where T : class
        {
            var proxy = Create<T, Port>();
            var port = (Port)(object)proxy;
            (port._inner, port._switch) = (inner, @switch);
            return proxy;
        }

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            if (_switch.Down) _switch.Refuse(method!.Name);
            try { return method!.Invoke(_inner, args); }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
        }
    }
}

/// <summary>
/// /healthz, /readyz and /health (docs/health.md); the store down answers 503 in each protocol's own form, stores and
/// acknowledges nothing, and the node recovers when the store returns; draining takes the node out of rotation first.
/// </summary>
public sealed class HealthTests
{
    static async Task<(HttpStatusCode Status, JsonObject Body, HttpResponseMessage Response)> ProbeAsync(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject(), response);
    }

    [Fact]
    public async Task Healthz_And_Readyz_AnswerWithoutAToken_InTheHealthCheckForm_AndHealthStaysAnAlias()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        var (liveStatus, live, liveResponse) = await ProbeAsync(http, "/healthz");
        Assert.Equal(HttpStatusCode.OK, liveStatus);
        Assert.Equal("application/json", liveResponse.Content.Headers.ContentType!.MediaType);
        Assert.Contains("no-store", liveResponse.Headers.CacheControl!.ToString());
        Assert.Equal("Healthy", (string?)live["status"]);
        Assert.Equal("Healthy", (string?)live["checks"]!["process"]!["status"]);
        Assert.Null(live["checks"]!["store"]);   // liveness does not depend on the store

        var (readyStatus, ready, _) = await ProbeAsync(http, "/readyz");
        Assert.Equal(HttpStatusCode.OK, readyStatus);
        Assert.Equal("Healthy", (string?)ready["status"]);
        Assert.Equal("Healthy", (string?)ready["checks"]!["store"]!["status"]);
        Assert.Equal("Healthy", (string?)ready["checks"]!["draining"]!["status"]);
        Assert.True(ready["checks"]!["store"]!["durationMs"]!.GetValue<double>() >= 0);
        Assert.False(string.IsNullOrEmpty((string?)ready["checks"]!["store"]!["description"]));
        Assert.DoesNotContain(server.DataDir, ready.ToJsonString());

        // The older address keeps its plain answer.
        Assert.Equal("ok", await http.GetStringAsync("/health"));
        // HEAD is answered too (some load balancers probe with it).
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/readyz"))).StatusCode);
    }

    [Fact]
    public async Task StoreDown_EveryProtocolAnswers503InItsOwnForm_NothingIsStoredOrPushed_AndTheNodeRecovers()
    {
        var store = new StoreSwitch();
        await using var server = await ParleyServer.StartAsync(services: store.Install);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        Assert.Equal("message", (string?)(await guest.SendTextAsync("before the outage"))["type"]);
        var sessionId = await guest.SessionIdAsync();
        var conversationId = await platform.ConversationOfSessionAsync(sessionId);
        var conversation = await platform.ConversationAsync(conversationId);
        var bot = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!.GetValue<string>();
        var botMessages = $"/api/v2/conversations/messages/{conversationId}/communications/{bot}/messages";

        store.Down = true;

        // Readiness: out of rotation, saying which check failed and nothing of the engine's own error text.
        var (readyStatus, ready, _) = await ProbeAsync(http, "/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyStatus);
        Assert.Equal("Unhealthy", (string?)ready["status"]);
        Assert.Equal("Unhealthy", (string?)ready["checks"]!["store"]!["status"]);
        Assert.Equal("the store cannot be reached", (string?)ready["checks"]!["store"]!["description"]);
        Assert.Equal("Healthy", (string?)ready["checks"]!["draining"]!["status"]);
        Assert.DoesNotContain("switched", ready.ToJsonString());
        // Liveness: the process is fine; restarting it would not bring the store back.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);

        // Platform API, write and read: 503 with the platform's error body and a Retry-After.
        var (write, writeBody) = await platform.PostAsync(botMessages, new { textBody = "lost in the outage" });
        AssertServiceUnavailable(write, writeBody);
        var (read, readBody) = await platform.GetAsync($"/api/v2/conversations/{conversationId}");
        AssertServiceUnavailable(read, readBody);

        // Token endpoint: RFC 6749's form.
        var tokenRequest = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
            { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ParleyOptions.DefaultClientId}:{ParleyOptions.DefaultClientSecret}")));
        var token = await http.SendAsync(tokenRequest);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, token.StatusCode);
        var tokenBody = JsonNode.Parse(await token.Content.ReadAsStringAsync())!;
        Assert.Equal("temporarily_unavailable", (string?)tokenBody["error"]);
        Assert.Equal(StoreRetryAfter, token.Headers.RetryAfter?.Delta);
        Assert.Contains("no-store", token.Headers.CacheControl!.ToString());

        // Guest API: the error frame for a server-side failure, with the request's tracingId; the socket stays open.
        var refused = await guest.SendTextAsync("sent during the outage");
        Assert.Equal("response", (string?)refused["type"]);
        Assert.Equal(503, (int)refused["code"]!);
        Assert.Contains("not acknowledged", (string?)refused["body"]);
        Assert.Equal(WebSocketState.Open, guest.State);
        // Nothing was pushed for the refused writes: the next frame the guest gets is the echo it asks for now.
        var t = guest.NextTracingId();
        await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = t, message = new { type = "Text", text = "ping" } });
        Assert.Equal(t, (string?)(await guest.NextFrameAsync())["tracingId"]);

        store.Down = false;

        var (backStatus, back, _) = await ProbeAsync(http, "/readyz");
        Assert.Equal(HttpStatusCode.OK, backStatus);
        Assert.Equal("Healthy", (string?)back["checks"]!["store"]!["status"]);
        // The same send succeeds now, and is stored once.
        var echo = await guest.SendTextAsync("sent during the outage");
        Assert.Equal("message", (string?)echo["type"]);
        Assert.Equal("sent during the outage", (string?)echo["body"]!["text"]);
        var (again, _) = await platform.PostAsync(botMessages, new { textBody = "after the outage" });
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("after the outage", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
        var stored = await server.Services.GetRequiredService<StoragePorts>().Conversations.ListMessagesAsync(conversationId, 100, 1, default);
        var texts = stored.Entities.Where(m => m.Text is not null).Select(m => m.Text).ToList();
        Assert.Equal(1, texts.Count(x => x == "sent during the outage"));
        Assert.DoesNotContain("lost in the outage", texts);
        Assert.Contains("after the outage", texts);
        using var fresh = await server.PlatformAsync();   // the token endpoint answers again
    }

    [Fact]
    public async Task WriterStopped_WritesAnswer503_TheNodeIsNeitherReadyNorLive_AndWhatWasAcknowledgedStays()
    {
        var logs = new LogCapture();
        await using var server = await ParleyServer.StartAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        Assert.Equal("message", (string?)(await guest.SendTextAsync("before the defect"))["type"]);
        var conversationId = await platform.ConversationOfSessionAsync(await guest.SessionIdAsync());
        var (liveBefore, live, _) = await ProbeAsync(http, "/healthz");
        Assert.Equal(HttpStatusCode.OK, liveBefore);
        Assert.Equal("Healthy", (string?)live["checks"]!["writes"]!["status"]);

        // A defect in the embedded store's writer loop (outside any write's own error handling), after the next group.
        var ports = server.Services.GetRequiredService<StoragePorts>();
        var sqlite = ((Adapters.LockedStore)ports.Lifetime).Store;
        var armed = 1;
        sqlite.AfterWriterGroup = () =>
        {
            if (Interlocked.Exchange(ref armed, 0) == 1) throw new InvalidOperationException("a defect in the writer's loop");
        };

        // The write whose group committed is acknowledged; every write after it is refused in the protocol's own form.
        Assert.Equal("message", (string?)(await guest.SendTextAsync("the last one stored"))["type"]);
        var refused = await guest.SendTextAsync("after the defect");
        Assert.Equal(503, (int)refused["code"]!);
        Assert.Contains("not acknowledged", (string?)refused["body"]);
        var (end, endBody) = await platform.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", new { });
        AssertServiceUnavailable(end, endBody);

        // Out of rotation and, since only a new process brings the writer back, not live either; no engine detail leaks.
        var (readyStatus, ready, _) = await ProbeAsync(http, "/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyStatus);
        Assert.Equal("the store takes no writes: its writer stopped (InvalidOperationException)", (string?)ready["checks"]!["store"]!["description"]);
        var (liveStatus, liveAfter, _) = await ProbeAsync(http, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, liveStatus);
        Assert.Equal("Unhealthy", (string?)liveAfter["checks"]!["writes"]!["status"]);
        Assert.Contains("restart the node", (string?)liveAfter["checks"]!["writes"]!["description"]);
        Assert.DoesNotContain("a defect", liveAfter.ToJsonString());   // the cause's message is in the log (6003), not the answer
        var stopped = await logs.WaitForAsync(e => e.EventId == 6003, TimeSpan.FromSeconds(10));
        Assert.Equal(LogLevel.Critical, stopped.Level);
        Assert.Contains("a defect in the writer's loop", stopped.Error);
        Assert.Single(logs.All, e => e.EventId == 6003);   // once, however many writes and probes met it

        // Reads still answer, with everything acknowledged and nothing refused.
        var texts = (await ports.Conversations.ListMessagesAsync(conversationId, 100, 1, default)).Entities.Select(m => m.Text).ToList();
        Assert.Contains("before the defect", texts);
        Assert.Contains("the last one stored", texts);
        Assert.DoesNotContain("after the defect", texts);
        Assert.False((await ports.Conversations.LoadAsync(conversationId, default))!.IsEnded);
    }

    static void AssertServiceUnavailable(HttpResponseMessage response, JsonNode? body)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("service.unavailable", (string?)body!["code"]);
        Assert.Equal(503, (int)body["status"]!);
        Assert.False(string.IsNullOrEmpty((string?)body["contextId"]));
        Assert.Contains("not acknowledged", (string?)body["message"]);
        Assert.Equal(StoreRetryAfter, response.Headers.RetryAfter?.Delta);
    }

    /// <summary>What every surface asks a client to wait after a store outage (ErrorBodyExceptionHandler.StoreRetryAfter).</summary>
    static readonly TimeSpan StoreRetryAfter = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task StoreDown_OpenMessagingInbound_Answers503_AndTheWebhookRelayCarriesOnAfterwards()
    {
        var store = new StoreSwitch();
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(o => o with { WebhooksAllowPrivateNetworks = true }, services: store.Install);
        using var platform = await server.PlatformAsync();
        var (created, integration) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Partner channel", outboundNotificationWebhookUrl = receiver.Url, outboundNotificationWebhookSignatureSecretToken = "a-signature-secret-of-some-length",
        });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var integrationId = integration!["id"]!.GetValue<string>();
        object Inbound(string text) => new
        {
            channel = new
            {
                messageId = Guid.NewGuid().ToString(), time = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"),
                from = new { id = "+4930123456", idType = "Phone", nickname = "Bobby" },
            },
            text,
        };

        store.Down = true;
        var (inbound, inboundBody) = await platform.PostAsync($"/api/v2/conversations/messages/{integrationId}/inbound/open/message", Inbound("hello?"));
        AssertServiceUnavailable(inbound, inboundBody);
        // The relay met the outage too (it polls the outbox), and must live through it.
        await store.RefusedAsync(nameof(IOutbox.LeaseDueAsync)).WaitAsync(TimeSpan.FromSeconds(10));

        store.Down = false;
        var (accepted, message) = await platform.PostAsync($"/api/v2/conversations/messages/{integrationId}/inbound/open/message?prefetchConversationId=true",
            Inbound("hello?"));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        var conversationId = message!["conversationId"]!.GetValue<string>();
        var (reply, _) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = integrationId, toAddress = "+4930123456", toAddressMessengerType = "open", textBody = "we are back", useExistingActiveConversation = true,
        });
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var delivered = await receiver.NextAsync(TimeSpan.FromSeconds(15));
        Assert.Equal("we are back", (string?)delivered.Json["text"]);
        var stored = await server.Services.GetRequiredService<StoragePorts>().Conversations.ListMessagesAsync(conversationId, 100, 1, default);
        Assert.Equal(1, stored.Entities.Count(m => m.Text == "hello?"));
    }

    [Fact]
    public async Task StoreDown_TheInactivitySweepLivesThroughIt_AndEndsTheIdleConversationOnceTheStoreIsBack()
    {
        var store = new StoreSwitch();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(clock: clock, services: store.Install);
        var sweeper = server.Services.GetRequiredService<InactivitySweeper>();
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "idle", inactivityTimeoutSeconds = 60 });
        await using var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, deployment!["id"]!.GetValue<string>());
        await guest.ConfigureAsync();
        await guest.SendTextAsync("hello?");

        store.Down = true;
        clock.Advance(TimeSpan.FromSeconds(61));
        await store.RefusedAsync(nameof(IConversationStore.ListIdleAsync)).WaitAsync(TimeSpan.FromSeconds(10));
        using (var http = new HttpClient { BaseAddress = server.BaseAddress })
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/readyz")).StatusCode);

        store.Down = false;
        clock.Advance(TimeSpan.FromSeconds(2));
        await sweeper.SweptAsync(clock.GetUtcNow()).WaitAsync(TimeSpan.FromSeconds(10));
        var disconnect = await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        var conversationId = (string)disconnect["body"]!["metadata"]!["conversationId"]!;
        var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        Assert.Equal("Inactivity", (string?)audit!["entities"]!.AsArray().Single()!["lever"]);
    }

    [Fact]
    public async Task Draining_ReadyzAnswers503AtOnce_WhileGuestSocketsAreStillServed_ThenTheyAreTold1001()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { DrainDelay = TimeSpan.FromSeconds(5) });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);

        var lifetime = server.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStopping.Register(() => stopping.TrySetResult());
        // Stopping's callbacks run on the caller (the drain delay among them): off the test's thread.
        var stop = Task.Run(lifetime.StopApplication);
        await stopping.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var (status, ready, _) = await ProbeAsync(http, "/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("Unhealthy", (string?)ready["checks"]!["draining"]!["status"]);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        // Taken out of rotation first: the guest's socket is still served while the load balancer notices.
        Assert.Equal(WebSocketState.Open, guest.State);
        Assert.Equal("message", (string?)(await guest.SendTextAsync("still here"))["type"]);

        await guest.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, guest.CloseStatus);
        await stop.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
