using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>A real Parley server on a loopback port with its own SQLite file; restartable on the same data.</summary>
public sealed class ParleyServer : IAsyncDisposable
{
    public const string DeploymentId = ParleyOptions.DefaultDeploymentId;
    readonly Func<ParleyOptions, ParleyOptions>? _configure;
    readonly string[] _args;
    readonly Action<WebApplication>? _beforeStart;
    readonly TimeProvider? _clock;
    readonly Action<IServiceCollection>? _services;
    WebApplication? _app;

    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "parley-e2e-" + Guid.NewGuid().ToString("N"));
    public Uri BaseAddress { get; private set; } = null!;
    public Uri SocketAddress => new($"ws://{BaseAddress.Authority}/v1?deploymentId={DeploymentId}");
    /// <summary>The running app's services (endpoint data source, stores), for tests that inspect the server itself.</summary>
    public IServiceProvider Services => _app!.Services;

    ParleyServer(Func<ParleyOptions, ParleyOptions>? configure, string[]? args, Action<WebApplication>? beforeStart, TimeProvider? clock,
        Action<IServiceCollection>? services) =>
        (_configure, _args, _beforeStart, _clock, _services) = (configure, args ?? [], beforeStart, clock, services);

    /// <param name="args">Command-line configuration after the defaults (a later <c>--urls</c> wins).</param>
    /// <param name="beforeStart">Sees the built app before it starts, e.g. to add a middleware that observes requests.</param>
    /// <param name="clock">The server's clock, registered as its TimeProvider (a test can move it forward: session expiry, inactivity).</param>
    /// <param name="services">Registrations after the server's own, e.g. a backplane that stands for other nodes.</param>
    public static async Task<ParleyServer> StartAsync(Func<ParleyOptions, ParleyOptions>? configure = null, string[]? args = null,
        Action<WebApplication>? beforeStart = null, TimeProvider? clock = null, Action<IServiceCollection>? services = null)
    {
        var server = new ParleyServer(configure, args, beforeStart, clock, services);
        await server.StartAppAsync();
        return server;
    }

    async Task StartAppAsync()
    {
        _app = await ParleyApp.BuildAsync(["--urls", "http://127.0.0.1:0", .. _args], o =>
        {
            var configured = o with
            {
                DataDir = DataDir, DemoDeploymentId = ParleyOptions.DefaultDeploymentId,
                DemoClientId = ParleyOptions.DefaultClientId, DemoClientSecret = ParleyOptions.DefaultClientSecret,
                // The tests' own demo deployment: they drive guests faster than people type, all from 127.0.0.1. The
                // guest limit tests put the shipped limits back (ShippedGuestLimits) and attack those.
                DemoGuestMessagesPerSecond = 10_000, GuestMessagesPerAddressPerSecond = 0,
            };
            return _configure is null ? configured : _configure(configured);
        }, _clock, _services);
        _beforeStart?.Invoke(_app);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
    }

    /// <summary>The guest limits a default start has (the harness raises them for the other tests).</summary>
    public static ParleyOptions ShippedGuestLimits(ParleyOptions o)
    {
        var shipped = new ParleyOptions();
        return o with
        {
            DemoGuestMessagesPerSecond = shipped.DemoGuestMessagesPerSecond, GuestMessagesPerAddressPerSecond = shipped.GuestMessagesPerAddressPerSecond,
        };
    }

    /// <summary>Stops the process's server and starts a new one on the same data directory (a new port).</summary>
    /// <param name="whileStopped">Runs between the stop and the start, e.g. to change the data directory's files.</param>
    public async Task RestartAsync(Func<Task>? whileStopped = null)
    {
        await StopAsync();
        if (whileStopped is not null) await whileStopped();
        await StartAppAsync();
    }

    async Task StopAsync()
    {
        if (_app is null) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }

    public Task<PlatformClient> PlatformAsync(string clientId = ParleyOptions.DefaultClientId,
        string secret = ParleyOptions.DefaultClientSecret) => PlatformClient.ConnectAsync(BaseAddress, clientId, secret);

    public Task<TestGuest> GuestAsync(string? token = null, string? origin = null, string? deploymentId = null) =>
        TestGuest.ConnectAsync(this, token ?? Guid.NewGuid().ToString(), origin, deploymentId ?? DeploymentId);
}

public sealed class PlatformClient(HttpClient http) : IDisposable
{
    public HttpClient Http => http;

    /// <summary>A client with a token for the given credentials (the demo client's by default); <paramref name="handler"/> picks how it connects.</summary>
    public static async Task<PlatformClient> ConnectAsync(Uri baseAddress, string clientId = ParleyOptions.DefaultClientId,
        string secret = ParleyOptions.DefaultClientSecret, HttpMessageHandler? handler = null)
    {
        var http = new HttpClient(handler ?? new SocketsHttpHandler()) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var form = new FormUrlEncodedContent([new("grant_type", "client_credentials")]);
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = form };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}")));
        var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var token = (await response.Content.ReadFromJsonAsync<JsonObject>())!["access_token"]!.GetValue<string>();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new PlatformClient(http);
    }

    public async Task<(HttpResponseMessage Response, JsonNode? Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body);
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public Task<(HttpResponseMessage Response, JsonNode? Body)> GetAsync(string path) => SendAsync(HttpMethod.Get, path);
    public Task<(HttpResponseMessage Response, JsonNode? Body)> PostAsync(string path, object? body = null) => SendAsync(HttpMethod.Post, path, body);
    public Task<(HttpResponseMessage Response, JsonNode? Body)> PatchAsync(string path, object body) => SendAsync(HttpMethod.Patch, path, body);

    /// <summary>The bot starts a conversation with a connected guest session.</summary>
    public async Task<JsonNode> StartConversationAsync(string guestSessionId, string text = "Hello from the bot",
        string deploymentId = ParleyServer.DeploymentId)
    {
        var (response, body) = await PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = deploymentId, toAddress = guestSessionId, toAddressMessengerType = "webmessaging", textBody = text,
        });
        Assert.Equal(200, (int)response.StatusCode);
        return body!;
    }

    public async Task<JsonNode> ConversationAsync(string conversationId)
    {
        var (response, body) = await GetAsync($"/api/v2/conversations/{conversationId}");
        Assert.Equal(200, (int)response.StatusCode);
        return body!;
    }

    public async Task<string> ParticipantIdAsync(string conversationId, string purpose) =>
        (await ConversationAsync(conversationId))["participants"]!.AsArray().First(p => p!["purpose"]!.GetValue<string>() == purpose)!["id"]!
            .GetValue<string>();

    /// <summary>The live conversation of a guest session, from Parley's session listing.</summary>
    public async Task<string> ConversationOfSessionAsync(string sessionId)
    {
        var (_, body) = await GetAsync("/api/v2/parley/webmessaging/sessions");
        return body!["entities"]!.AsArray().Single(s => (string?)s!["id"] == sessionId)!["conversationId"]!.GetValue<string>();
    }

    public void Dispose() => http.Dispose();
}

/// <summary>A guest over a real ClientWebSocket. Frames are read by a background loop into a queue.</summary>
public sealed class TestGuest : IAsyncDisposable
{
    readonly ClientWebSocket _socket = new();
    readonly Channel<JsonObject> _frames = Channel.CreateUnbounded<JsonObject>();
    readonly CancellationTokenSource _stop = new();
    readonly ConditionalWeakTable<JsonObject, StrongBox<long>> _arrivals = new();
    Task _reader = Task.CompletedTask;
    int _tracing;

    public string Token { get; private set; } = "";
    public string DeploymentId { get; private set; } = "";
    public WebSocketState State => _socket.State;
    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;
    public TaskCompletionSource ClosedByServer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public Exception? ReadError { get; private set; }

    public static Task<TestGuest> ConnectAsync(ParleyServer server, string token, string? origin, string deploymentId) =>
        ConnectAsync(server.BaseAddress, token, origin, deploymentId);

    /// <param name="localAddress">Connect from this loopback address (127.0.0.2, …) instead of the default: another client address.</param>
    /// <param name="invoker">Or carry the upgrade through this invoker (e.g. one bound to a source address, shared by many guests).</param>
    public static async Task<TestGuest> ConnectAsync(Uri baseAddress, string token, string? origin, string deploymentId,
        System.Net.IPAddress? localAddress = null, HttpMessageInvoker? invoker = null)
    {
        var guest = new TestGuest { Token = token, DeploymentId = deploymentId };
        if (origin is not null) guest._socket.Options.SetRequestHeader("Origin", origin);
        var uri = new Uri($"ws://{baseAddress.Authority}/v1?deploymentId={deploymentId}");
        try
        {
            if (localAddress is null)
                await guest._socket.ConnectAsync(uri, invoker, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            else
            {
                using var handler = new SocketsHttpHandler
                {
                    ConnectCallback = async (context, ct) =>
                    {
                        var s = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                        s.Bind(new System.Net.IPEndPoint(localAddress, 0));
                        await s.ConnectAsync(context.DnsEndPoint, ct);
                        return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
                    },
                };
                await guest._socket.ConnectAsync(uri, new HttpMessageInvoker(handler, disposeHandler: false), CancellationToken.None)
                    .WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch
        {
            guest._socket.Dispose();
            throw;
        }
        guest._reader = guest.ReadLoopAsync();
        return guest;
    }

    /// <summary>A guest whose connection leaves from <paramref name="from"/> (127.0.0.2, 127.0.0.3… are loopback too).</summary>
    public static async Task<TestGuest> ConnectFromAsync(System.Net.IPAddress from, Uri baseAddress, string? token = null,
        string deploymentId = ParleyServer.DeploymentId)
    {
        var guest = new TestGuest { Token = token ?? Guid.NewGuid().ToString(), DeploymentId = deploymentId };
        var invoker = new HttpMessageInvoker(RawConnection.BoundHandler(from));   // owns the connection; not disposed under it
        await guest._socket.ConnectAsync(new Uri($"ws://{baseAddress.Authority}/v1?deploymentId={deploymentId}"), invoker, CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(10));
        guest._reader = guest.ReadLoopAsync();
        return guest;
    }

    async Task ReadLoopAsync()
    {
        var buffer = new byte[1 << 20];
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    r = await _socket.ReceiveAsync(buffer.AsMemory(count), _stop.Token);
                    count += r.Count;
                } while (!r.EndOfMessage);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    ClosedByServer.TrySetResult();
                    try { await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "ok", CancellationToken.None); } catch (Exception) { }
                    break;
                }
                var arrived = System.Diagnostics.Stopwatch.GetTimestamp();
                var frame = JsonNode.Parse(buffer.AsSpan(0, count))!.AsObject();
                _arrivals.Add(frame, new StrongBox<long>(arrived));
                _frames.Writer.TryWrite(frame);
            }
        }
        catch (Exception e) { ReadError = e; ClosedByServer.TrySetResult(); }
        finally { _frames.Writer.TryComplete(); }
    }

    /// <summary>When <paramref name="frame"/> came off the socket (a Stopwatch timestamp), to order it against another event.</summary>
    public long ArrivedAt(JsonObject frame) =>
        _arrivals.TryGetValue(frame, out var at) ? at.Value : throw new ArgumentException("Not a frame this guest received.", nameof(frame));

    public string NextTracingId() => $"t-{Interlocked.Increment(ref _tracing)}";

    public Task SendRawAsync(string text) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendAsync(object request) => SendRawAsync(JsonSerializer.Serialize(request));

    /// <summary>The next frame that matches, skipping others; fails after the timeout.</summary>
    public async Task<JsonObject> NextAsync(Func<JsonObject, bool>? match = null, TimeSpan? timeout = null,
        [CallerLineNumber] int line = 0)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var frame = await _frames.Reader.ReadAsync(cts.Token);
                if (match is null || match(frame)) return frame;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"No matching frame (awaited at line {line})."); }
        catch (ChannelClosedException) { throw new InvalidOperationException($"The socket closed (awaited at line {line}): {ReadError?.Message ?? "closed by the server"}", ReadError); }
    }

    /// <summary>The next frame, whatever it is (for asserting order).</summary>
    public Task<JsonObject> NextFrameAsync([CallerLineNumber] int line = 0) => NextAsync(null, null, line);

    public async Task<JsonObject> ConfigureAsync(bool startNew = false)
    {
        var t = NextTracingId();
        await SendAsync(new { action = "configureSession", token = Token, deploymentId = DeploymentId, startNew, tracingId = t });
        return await NextAsync(f => (string?)f["tracingId"] == t);
    }

    /// <summary>Sends a text; returns the reply for its tracingId: the echo (message/StructuredMessage) or an error.</summary>
    public async Task<JsonObject> SendTextAsync(string text)
    {
        var t = await SendTextNoWaitAsync(text);
        return await NextAsync(f => (string?)f["tracingId"] == t);
    }

    public async Task<string> SendTextNoWaitAsync(string text)
    {
        var t = NextTracingId();
        await SendAsync(new { action = "onMessage", token = Token, tracingId = t, message = new { type = "Text", text } });
        return t;
    }

    public async Task<JsonObject> RequestAsync(object request, string tracingId)
    {
        await SendAsync(request);
        return await NextAsync(f => (string?)f["tracingId"] == tracingId);
    }

    /// <summary>A sentinel: echo round trip. The frame order proves what arrived before it.</summary>
    public async Task<JsonObject> EchoAsync()
    {
        var t = NextTracingId();
        await SendAsync(new { action = "echo", token = Token, tracingId = t, message = new { type = "Text", text = "ping" } });
        return await NextAsync(f => (string?)f["tracingId"] == t);
    }

    /// <summary>The guest's session id: the subject of the JWT from getJwt (what a guest page would hand its backend).</summary>
    public async Task<string> SessionIdAsync()
    {
        var jwt = await JwtAsync();
        var payload = jwt.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
        return JsonNode.Parse(Convert.FromBase64String(payload))!["sub"]!.GetValue<string>();
    }

    public async Task<string> JwtAsync()
    {
        var t = NextTracingId();
        var reply = await RequestAsync(new { action = "getJwt", token = Token, tracingId = t }, t);
        Assert.Equal("JwtResponse", (string?)reply["class"]);
        return reply["body"]!["jwt"]!.GetValue<string>();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception) { }
        _stop.Cancel();
        try { await _reader.WaitAsync(TimeSpan.FromSeconds(2)); } catch (Exception) { }
        _socket.Dispose();
    }
}

public static class Frames
{
    public static bool IsPresence(JsonObject f, string type) =>
        (string?)f["class"] == "StructuredMessage" && f["body"] is JsonObject body && body["events"] is JsonArray events
        && events.Any(e => (string?)e!["eventType"] == "Presence" && (string?)e["presence"]?["type"] == type);

    public static bool IsDisconnect(JsonObject f) => IsPresence(f, "Disconnect");

    /// <summary>The echo of the guest's own stored message.</summary>
    public static bool IsInboundEcho(JsonObject f) =>
        (string?)f["class"] == "StructuredMessage" && (string?)f["type"] == "message" && f["body"] is JsonObject b && (string?)b["direction"] == "Inbound";

    public static bool IsOutboundText(JsonObject f) =>
        (string?)f["class"] == "StructuredMessage" && f["body"] is JsonObject b && (string?)b["direction"] == "Outbound" && (string?)b["type"] == "Text";
}
