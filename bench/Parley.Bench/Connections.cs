using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Parley.Bench;

/// <summary>What the load tool needs to know about a server frame.</summary>
public readonly record struct Frame(string? TracingId, string? Class, string? Direction, bool IsDisconnect, long ReceivedTicks, string? Jwt = null);

/// <summary>One guest: a WebSocket to the server, frames read by a background loop into a queue.</summary>
public abstract class BenchConnection : IAsyncDisposable
{
    protected readonly ClientWebSocket Socket = new();
    readonly Channel<Frame> _frames = Channel.CreateUnbounded<Frame>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    Task _reader = Task.CompletedTask;
    int _seq;

    public string Token { get; } = Guid.NewGuid().ToString();
    public string? SessionId { get; set; }
    public string? ConversationId { get; set; }
    public string? BotCommunicationId { get; set; }
    /// <summary>Which node of a cluster holds this socket (0 on a single server).</summary>
    public int Node { get; set; }

    static readonly SocketsHttpHandler[] Handlers = new SocketsHttpHandler[16];

    /// <summary>A handler whose connections leave from 127.0.0.(1+source): more loopback sources, more ephemeral ports.</summary>
    static HttpMessageInvoker Invoker(int source)
    {
        var handler = Handlers[source] ??= new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                socket.Bind(new IPEndPoint(IPAddress.Parse($"127.0.0.{1 + source}"), 0));
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        return new HttpMessageInvoker(handler, disposeHandler: false);
    }

    public async Task ConnectAsync(Uri uri, int source, CancellationToken ct)
    {
        Socket.Options.KeepAliveInterval = TimeSpan.Zero;
        Socket.Options.SetBuffer(4096, 4096);
        await Socket.ConnectAsync(uri, Invoker(source), ct);
        _reader = ReadLoopAsync();
    }

    protected string NextTracingId() => "b" + Interlocked.Increment(ref _seq);

    async Task ReadLoopAsync()
    {
        var buffer = new byte[8192];
        var writer = new MemoryStream();
        try
        {
            while (true)
            {
                var r = await Socket.ReceiveAsync(buffer.AsMemory(), default);
                if (r.MessageType == WebSocketMessageType.Close) break;
                writer.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                foreach (var frame in Parse(writer.GetBuffer().AsSpan(0, (int)writer.Length), System.Diagnostics.Stopwatch.GetTimestamp()))
                    _frames.Writer.TryWrite(frame);
                writer.SetLength(0);
            }
        }
        catch (Exception) { /* closed */ }
        finally { _frames.Writer.TryComplete(); }
    }

    protected abstract IEnumerable<Frame> Parse(ReadOnlySpan<byte> message, long ticks);

    protected static Frame GuestFrame(JsonElement root, long ticks)
    {
        string? direction = null, jwt = null;
        var disconnect = false;
        if (root.TryGetProperty("body", out var body) && body.ValueKind == JsonValueKind.Object)
        {
            if (body.TryGetProperty("direction", out var d)) direction = d.GetString();
            if (body.TryGetProperty("jwt", out var j)) jwt = j.GetString();
            if (body.TryGetProperty("events", out var events))
                foreach (var e in events.EnumerateArray())
                    disconnect |= e.TryGetProperty("presence", out var p) && p.GetProperty("type").GetString() == "Disconnect";
        }
        return new Frame(root.TryGetProperty("tracingId", out var t) ? t.GetString() : null,
            root.TryGetProperty("class", out var c) ? c.GetString() : null, direction, disconnect, ticks, jwt);
    }

    public async Task<Frame> NextAsync(Func<Frame, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var frame = await _frames.Reader.ReadAsync(cts.Token);
            if (match(frame)) return frame;
        }
    }

    public abstract Task ConfigureAsync(string deploymentId, TimeSpan timeout);
    /// <summary>Sends a guest text; returns its tracing id.</summary>
    public abstract Task<string> SendTextAsync(string text);
    public virtual async Task<string?> JwtSubjectAsync(TimeSpan timeout) => await Task.FromResult<string?>(null);

    public async ValueTask DisposeAsync()
    {
        try { Socket.Abort(); } catch (Exception) { }
        try { await _reader.WaitAsync(TimeSpan.FromSeconds(1)); } catch (Exception) { }
        Socket.Dispose();
    }
}

/// <summary>The Guest API frames (Parley, and the raw Kestrel and Node baselines, which speak the same subset).</summary>
public sealed class GuestConnection : BenchConnection
{
    protected override IEnumerable<Frame> Parse(ReadOnlySpan<byte> message, long ticks)
    {
        using var doc = JsonDocument.Parse(message.ToArray());
        return [GuestFrame(doc.RootElement, ticks)];
    }

    Task SendJsonAsync(object request) =>
        Socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(request), WebSocketMessageType.Text, true, default);

    public override async Task ConfigureAsync(string deploymentId, TimeSpan timeout)
    {
        var t = NextTracingId();
        await SendJsonAsync(new { action = "configureSession", token = Token, deploymentId, tracingId = t });
        var reply = await NextAsync(f => f.TracingId == t, timeout);
        if (reply.Class != "SessionResponse") throw new InvalidOperationException($"configureSession answered {reply.Class}");
    }

    public override async Task<string> SendTextAsync(string text)
    {
        var t = NextTracingId();
        await SendJsonAsync(new { action = "onMessage", token = Token, tracingId = t, message = new { type = "Text", text } });
        return t;
    }

    /// <summary>The guest session id: the subject of the JWT from getJwt.</summary>
    public override async Task<string?> JwtSubjectAsync(TimeSpan timeout)
    {
        var t = NextTracingId();
        await SendJsonAsync(new { action = "getJwt", token = Token, tracingId = t });
        var reply = await NextAsync(f => f.TracingId == t, timeout);
        var payload = reply.Jwt!.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
        using var doc = JsonDocument.Parse(Convert.FromBase64String(payload));
        return doc.RootElement.GetProperty("sub").GetString();
    }
}

/// <summary>The SignalR JSON hub protocol over a WebSocket (no negotiate), for the SignalR baseline.</summary>
public sealed class SignalRConnection : BenchConnection
{
    const char RecordSeparator = '\u001e';
    TaskCompletionSource? _handshake;

    protected override IEnumerable<Frame> Parse(ReadOnlySpan<byte> message, long ticks)
    {
        var frames = new List<Frame>();
        foreach (var record in Encoding.UTF8.GetString(message).Split(RecordSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(record);
            var root = doc.RootElement;
            if (!root.TryGetProperty("type", out var type)) { _handshake?.TrySetResult(); continue; }
            switch (type.GetInt32())
            {
                case 1 when root.GetProperty("target").GetString() == "message":
                    using (var inner = JsonDocument.Parse(root.GetProperty("arguments")[0].GetString()!))
                        frames.Add(GuestFrame(inner.RootElement, ticks));
                    break;
                case 3:
                    frames.Add(new Frame(root.GetProperty("invocationId").GetString(), "Completion", null, false, ticks));
                    break;
            }
        }
        return frames;
    }

    Task SendRecordAsync(object record) =>
        Socket.SendAsync(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record) + RecordSeparator), WebSocketMessageType.Text, true, default);

    public override async Task ConfigureAsync(string deploymentId, TimeSpan timeout)
    {
        _handshake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await SendRecordAsync(new { protocol = "json", version = 1 });
        await _handshake.Task.WaitAsync(timeout);
        var t = NextTracingId();
        await SendRecordAsync(new { type = 1, invocationId = t, target = "ConfigureSession", arguments = new object[] { Token } });
        await NextAsync(f => f.TracingId == t, timeout);
    }

    public override async Task<string> SendTextAsync(string text)
    {
        var t = NextTracingId();
        await SendRecordAsync(new { type = 1, target = "OnMessage", arguments = new object[] { t, text } });
        return t;
    }
}
