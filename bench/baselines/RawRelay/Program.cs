using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

// Baseline (a) for bench/: the same frames as Parley's Guest API (configureSession, onMessage → echo) and an HTTP
// POST /send/{token} that pushes a bot message, with nothing stored. What a bare Kestrel WebSocket server costs.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
app.UseWebSockets();
var sockets = new ConcurrentDictionary<string, Peer>();

app.Map("/v1", async (HttpContext http) =>
{
    if (!http.WebSockets.IsWebSocketRequest) { http.Response.StatusCode = 400; return; }
    using var ws = await http.WebSockets.AcceptWebSocketAsync();
    var peer = new Peer(ws);
    var sending = peer.RunAsync();
    string? token = null;
    var buffer = new byte[16 * 1024];
    try
    {
        while (true)
        {
            var count = 0;
            ValueWebSocketReceiveResult r;
            do
            {
                r = await ws.ReceiveAsync(buffer.AsMemory(count), default);
                count += r.Count;
            } while (!r.EndOfMessage && count < buffer.Length);
            if (r.MessageType == WebSocketMessageType.Close) break;
            using var doc = JsonDocument.Parse(buffer.AsMemory(0, count));
            var root = doc.RootElement;
            var tracingId = root.TryGetProperty("tracingId", out var t) ? t.GetString() : null;
            switch (root.GetProperty("action").GetString())
            {
                case "configureSession":
                    token = root.GetProperty("token").GetString()!;
                    sockets[token] = peer;
                    peer.Send(Frames.Session(tracingId));
                    break;
                case "onMessage":
                    peer.Send(Frames.Message(root.GetProperty("message").GetProperty("text").GetString(), "Inbound", tracingId));
                    break;
            }
        }
    }
    catch (WebSocketException) { }
    finally
    {
        if (token is not null) sockets.TryRemove(token, out _);
        peer.Complete();
        await sending;
    }
});

app.MapPost("/send/{token}", async (string token, HttpContext http) =>
{
    using var doc = await JsonDocument.ParseAsync(http.Request.Body);
    if (!sockets.TryGetValue(token, out var peer)) return Results.NotFound();
    peer.Send(Frames.Message(doc.RootElement.GetProperty("textBody").GetString(), "Outbound", null));
    return Results.Ok();
});

app.Run();

sealed class Peer(WebSocket ws)
{
    readonly Channel<byte[]> _out = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    public void Send(byte[] frame) => _out.Writer.TryWrite(frame);
    public void Complete() => _out.Writer.TryComplete();
    public async Task RunAsync()
    {
        try
        {
            await foreach (var frame in _out.Reader.ReadAllAsync())
                await ws.SendAsync(frame, WebSocketMessageType.Text, true, default);
        }
        catch (WebSocketException) { }
    }
}

static class Frames
{
    public static byte[] Session(string? tracingId) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        type = "response", @class = "SessionResponse", code = 200, body = new { connected = true, newSession = true, readOnly = false }, tracingId,
    });

    public static byte[] Message(string? text, string direction, string? tracingId) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        type = "message", @class = "StructuredMessage", code = 200,
        body = new { id = Guid.NewGuid().ToString("N"), type = "Text", text, direction, channel = new { time = DateTime.UtcNow.ToString("O") } },
        tracingId,
    });
}
