using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Parley.Server;
using Xunit.Abstractions;

namespace Parley.Budgets.Tests;

/// <summary>
/// Bytes the whole process allocates per guest message and per termination, through a real server (Kestrel on loopback,
/// SQLite on disk, fsync per commit) and real sockets (docs/performance.md "Allocation budgets"). Counted over a batch
/// with <see cref="GC.GetTotalAllocatedBytes"/>, so it includes the test's own lean client (pre-encoded frames, one
/// receive buffer) and whatever the server does in the background meanwhile: each budget has a margin of about 20 %
/// over the value measured when it was set, which the noise stays well inside and a real regression (+30 %) is not.
/// </summary>
public sealed class ServerPathBudgetTests(ITestOutputHelper output) : IAsyncLifetime
{
    const string Deployment = ParleyOptions.DefaultDeploymentId;
    readonly string _dataDir = Path.Combine(Path.GetTempPath(), "parley-budgets-" + Guid.NewGuid().ToString("N"));
    WebApplication _app = null!;
    Uri _base = null!;

    public async Task InitializeAsync()
    {
        _app = await ParleyApp.BuildAsync(["--urls", "http://127.0.0.1:0"], o => o with
        {
            DataDir = _dataDir, DemoDeploymentId = Deployment,
            DemoClientId = ParleyOptions.DefaultClientId, DemoClientSecret = ParleyOptions.DefaultClientSecret,
            // Guests send as fast as the server answers, all from 127.0.0.1: the shipped limits would refuse most of it.
            DemoGuestMessagesPerSecond = 100_000, GuestMessagesPerAddressPerSecond = 0, NewSessionsPerAddressPerMinute = 100_000,
        });
        await _app.StartAsync();
        _base = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
    }

    // Measured 2026-12-01 and 2026-12-03 (.NET 10.0, Release, 2 shared cores): the values in docs/performance.md's table.
    const long MessageBudget = 8_300;         // measured 6,870–6,871 B (2026-12-03 eleventh run; 8,560 before it, 12,550 before the tenth)
    const long TerminationBudget = 38_500;    // measured 32,053–32,087 B (eleventh run; 33,832 before it, 45,922–46,422 B when first set)
    const long BotMessageBudget = 18_400;     // measured 15,281–15,293 B (eleventh run; 17,133 before it, 28,347 B before the tenth)

    [Fact]
    public async Task A_guest_message_end_to_end_stays_within_its_budget()
    {
        const int Warmup = 300, Measured = 2_000;
        await using var guest = await LeanGuest.ConnectAsync(_base, Deployment);
        await guest.ConfigureAsync();
        // Socket in → parse → Decide → commit (fsync) → fan-out → the echo frame out, one message after the other.
        var frames = Enumerable.Range(0, Warmup + Measured).Select(i => guest.TextFrame($"m-{i}")).ToArray();
        for (var i = 0; i < Warmup; i++) await guest.SendAndAwaitAsync(frames[i]);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = Warmup; i < frames.Length; i++) await guest.SendAndAwaitAsync(frames[i]);
        var perMessage = (GC.GetTotalAllocatedBytes(precise: true) - before) / Measured;
        output.WriteLine($"per guest message: {perMessage} B");
        Budget.Within(MessageBudget, perMessage, "a guest message, socket in to echo out");
    }

    [Fact]
    public async Task A_termination_end_to_end_stays_within_its_budget()
    {
        const int Warmup = 50, Measured = 300;
        using var platform = await PlatformAsync();
        var guests = new List<(LeanGuest Guest, string Disconnect)>();
        try
        {
            for (var i = 0; i < Warmup + Measured; i++)
            {
                var guest = await LeanGuest.ConnectAsync(_base, Deployment);
                guests.Add((guest, ""));
                await guest.ConfigureAsync();
                var started = await platform.PostAsJsonAsync("/api/v2/conversations/messages/agentless", new
                {
                    fromAddress = Deployment, toAddress = await guest.SessionIdAsync(), toAddressMessengerType = "webmessaging", textBody = "Hello",
                });
                Assert.Equal(HttpStatusCode.OK, started.StatusCode);
                var conversationId = (await started.Content.ReadFromJsonAsync<JsonObject>())!["conversationId"]!.GetValue<string>();
                guests[i] = (guest, $"/api/v2/conversations/{conversationId}/disconnect");
            }
            // The Platform API call → Decide → commit → the Disconnect frame written to the socket (before the answer) → 202 → the guest reads it.
            for (var i = 0; i < Warmup; i++) await TerminateAsync(platform, guests[i].Guest, guests[i].Disconnect);
            var before = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = Warmup; i < guests.Count; i++) await TerminateAsync(platform, guests[i].Guest, guests[i].Disconnect);
            var perTermination = (GC.GetTotalAllocatedBytes(precise: true) - before) / Measured;
            output.WriteLine($"per termination: {perTermination} B");
            Budget.Within(TerminationBudget, perTermination, "a termination, API call to Disconnect frame");
        }
        finally
        {
            foreach (var (guest, _) in guests) await guest.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_bot_message_end_to_end_stays_within_its_budget()
    {
        const int Warmup = 300, Measured = 2_000;
        using var platform = await PlatformAsync();
        await using var guest = await LeanGuest.ConnectAsync(_base, Deployment);
        await guest.ConfigureAsync();
        var started = await platform.PostAsJsonAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = Deployment, toAddress = await guest.SessionIdAsync(), toAddressMessengerType = "webmessaging", textBody = "Hello",
        });
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        var conversationId = (await started.Content.ReadFromJsonAsync<JsonObject>())!["conversationId"]!.GetValue<string>();
        var conversation = (await platform.GetFromJsonAsync<JsonObject>($"/api/v2/conversations/{conversationId}"))!;
        var workflow = conversation["participants"]!.AsArray().First(p => p!["purpose"]!.GetValue<string>() == "workflow")!;
        var path = $"/api/v2/conversations/messages/{conversationId}/communications/{workflow["messages"]![0]!["id"]!.GetValue<string>()}/messages";

        // The bot's call, as the bench makes it: POST → Kestrel → auth → Decide → commit (fsync) → fan-out → 200 with the
        // message; the guest reads the pushed frame. The client is a bare socket with each request encoded beforehand.
        await using var bot = await LeanPlatformClient.ConnectAsync(_base, platform.DefaultRequestHeaders.Authorization!.Parameter!);
        var calls = Enumerable.Range(0, Warmup + Measured).Select(i => (Request: bot.Post(path, $$"""{"textBody":"bot-{{i}}"}"""),
            Frame: Encoding.UTF8.GetBytes($"\"text\":\"bot-{i}\""))).ToArray();
        for (var i = 0; i < Warmup; i++) await SendBotMessageAsync(bot, guest, calls[i]);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = Warmup; i < calls.Length; i++) await SendBotMessageAsync(bot, guest, calls[i]);
        var perMessage = (GC.GetTotalAllocatedBytes(precise: true) - before) / Measured;
        output.WriteLine($"per bot message: {perMessage} B");
        Budget.Within(BotMessageBudget, perMessage, "a bot message, Platform API call to the guest's frame");
    }

    static async Task SendBotMessageAsync(LeanPlatformClient bot, LeanGuest guest, (byte[] Request, byte[] Frame) call)
    {
        Assert.Equal(200, await bot.SendAsync(call.Request));
        await guest.AwaitFrameWithAsync(call.Frame);
    }

    static readonly byte[] DisconnectPresence = "\"type\":\"Disconnect\""u8.ToArray();

    static async Task TerminateAsync(HttpClient platform, LeanGuest guest, string path)
    {
        using var answer = await platform.PostAsync(path, null);
        Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
        await guest.AwaitFrameWithAsync(DisconnectPresence);
    }

    async Task<HttpClient> PlatformAsync()
    {
        var http = new HttpClient { BaseAddress = _base, Timeout = TimeSpan.FromSeconds(30) };
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ParleyOptions.DefaultClientId}:{ParleyOptions.DefaultClientSecret}")));
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var token = (await response.Content.ReadFromJsonAsync<JsonObject>())!["access_token"]!.GetValue<string>();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }
}

/// <summary>
/// A guest that allocates next to nothing per message, so the batch counts the server: frames encoded before the
/// measurement, one receive buffer, a frame matched by a byte search for what it must contain.
/// </summary>
sealed class LeanGuest : IAsyncDisposable
{
    readonly ClientWebSocket _socket = new();
    readonly byte[] _buffer = new byte[64 * 1024];
    readonly string _token = Guid.NewGuid().ToString();
    int _length;

    public static async Task<LeanGuest> ConnectAsync(Uri server, string deploymentId)
    {
        var guest = new LeanGuest();
        await guest._socket.ConnectAsync(new Uri($"ws://{server.Authority}/v1?deploymentId={deploymentId}"), CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(10));
        return guest;
    }

    public async Task ConfigureAsync()
    {
        await SendAsync(Encoding.UTF8.GetBytes(
            $$"""{"action":"configureSession","token":"{{_token}}","deploymentId":"{{ParleyOptions.DefaultDeploymentId}}","tracingId":"configure"}"""));
        await AwaitFrameWithAsync("\"SessionResponse\""u8.ToArray());
    }

    /// <summary>The guest session's id: the subject of the JWT getJwt answers with.</summary>
    public async Task<string> SessionIdAsync()
    {
        await SendAsync(Encoding.UTF8.GetBytes($$"""{"action":"getJwt","token":"{{_token}}","tracingId":"jwt"}"""));
        await AwaitFrameWithAsync("\"JwtResponse\""u8.ToArray());
        var jwt = JsonNode.Parse(_buffer.AsSpan(0, _length))!["body"]!["jwt"]!.GetValue<string>();
        var payload = jwt.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
        return JsonNode.Parse(Convert.FromBase64String(payload))!["sub"]!.GetValue<string>();
    }

    /// <summary>An onMessage frame and the bytes its echo carries (its tracing id).</summary>
    public (byte[] Frame, byte[] Echo) TextFrame(string tracingId) => (
        Encoding.UTF8.GetBytes($$$"""{"action":"onMessage","token":"{{{_token}}}","tracingId":"{{{tracingId}}}","message":{"type":"Text","text":"Hello, I would like to know where my parcel is."}}"""),
        Encoding.UTF8.GetBytes($"\"tracingId\":\"{tracingId}\"")
    );

    public async Task SendAndAwaitAsync((byte[] Frame, byte[] Echo) message)
    {
        await SendAsync(message.Frame);
        await AwaitFrameWithAsync(message.Echo);
    }

    Task SendAsync(byte[] frame) => _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);

    /// <summary>Reads frames until one contains <paramref name="needle"/>; fails on a close or after 10 s without it.</summary>
    public async Task AwaitFrameWithAsync(byte[] needle)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            _length = 0;
            ValueWebSocketReceiveResult r;
            do
            {
                r = await _socket.ReceiveAsync(_buffer.AsMemory(_length), deadline.Token);
                _length += r.Count;
            } while (!r.EndOfMessage);
            if (r.MessageType == WebSocketMessageType.Close)
                throw new InvalidOperationException($"The server closed the socket: {_socket.CloseStatusDescription}");
            if (_buffer.AsSpan(0, _length).IndexOf(needle) >= 0) return;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is WebSocketException or TimeoutException or OperationCanceledException) { }
        _socket.Dispose();
    }
}

/// <summary>
/// A keep-alive HTTP/1.1 connection that sends requests encoded beforehand and reads each response into one buffer
/// (its status, and its body by Content-Length or to the last chunk), so a batch counts the server's allocations.
/// </summary>
sealed class LeanPlatformClient : IAsyncDisposable
{
    readonly System.Net.Sockets.Socket _socket;
    readonly string _authority;
    readonly string _token;
    readonly byte[] _buffer = new byte[64 * 1024];

    LeanPlatformClient(System.Net.Sockets.Socket socket, string authority, string token) => (_socket, _authority, _token) = (socket, authority, token);

    public static async Task<LeanPlatformClient> ConnectAsync(Uri server, string token)
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(server.Host, server.Port).WaitAsync(TimeSpan.FromSeconds(10));
        return new LeanPlatformClient(socket, server.Authority, token);
    }

    public byte[] Post(string path, string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        return [.. Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: {_authority}\r\nAuthorization: Bearer {_token}\r\n" +
                                           $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"), .. body];
    }

    /// <summary>Sends one request and reads its whole response; its status code. Fails after 10 s without it.</summary>
    public async Task<int> SendAsync(byte[] request)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _socket.SendAsync(request, System.Net.Sockets.SocketFlags.None, deadline.Token);
        var length = 0;
        while (true)
        {
            var read = await _socket.ReceiveAsync(_buffer.AsMemory(length), System.Net.Sockets.SocketFlags.None, deadline.Token);
            if (read == 0) throw new IOException("The server closed the connection.");
            length += read;
            if (Complete(_buffer.AsSpan(0, length)) is { } status) return status;
        }
    }

    /// <summary>The status once the response is whole (read without allocating: the batch counts the server).</summary>
    static int? Complete(ReadOnlySpan<byte> response)
    {
        var headersEnd = response.IndexOf("\r\n\r\n"u8);
        if (headersEnd < 0) return null;
        var headers = response[..headersEnd];
        var status = (headers[9] - '0') * 100 + (headers[10] - '0') * 10 + (headers[11] - '0');
        var body = response[(headersEnd + 4)..];
        var at = headers.IndexOf("\r\nContent-Length: "u8);
        if (at < 0) return body.EndsWith("0\r\n\r\n"u8) ? status : null;   // chunked: the last chunk
        var value = headers[(at + 18)..];
        var end = value.IndexOf("\r\n"u8);
        System.Buffers.Text.Utf8Parser.TryParse(end < 0 ? value : value[..end], out int length, out _);
        return body.Length >= length ? status : null;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
