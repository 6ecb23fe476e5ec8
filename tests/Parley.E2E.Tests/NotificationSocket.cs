using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

/// <summary>A notification channel made through the Platform API, and its socket at connectUri (a real ClientWebSocket).</summary>
public sealed class NotificationSocket : IAsyncDisposable
{
    readonly ClientWebSocket _socket = new();

    public required string ChannelId { get; init; }
    public required string ConnectUri { get; init; }

    /// <summary>Creates a channel, subscribes it to <paramref name="topics"/> (must be accepted) and connects its socket.</summary>
    public static async Task<NotificationSocket> OpenAsync(PlatformClient platform, params string[] topics)
    {
        var (created, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var id = (string)channel!["id"]!;
        if (topics.Length > 0)
        {
            var (subscribed, body) = await platform.PostAsync($"/api/v2/notifications/channels/{id}/subscriptions", topics.Select(t => new { id = t }).ToArray());
            Assert.True(subscribed.StatusCode == HttpStatusCode.OK, body?.ToJsonString());
        }
        return await ConnectAsync(id, (string)channel["connectUri"]!);
    }

    /// <summary>Connects (again) to a channel's connectUri, and proves the socket is registered with a ping answered.</summary>
    public static async Task<NotificationSocket> ConnectAsync(string channelId, string connectUri)
    {
        var opened = new NotificationSocket { ChannelId = channelId, ConnectUri = connectUri };
        await opened._socket.ConnectAsync(new Uri(connectUri), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await opened.PingAsync();
        return opened;
    }

    public async Task PingAsync()
    {
        await _socket.SendAsync("{\"message\":\"ping\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("pong", (string?)(await NextAsync(f => (string?)f["topicName"] == "channel.metadata" && (string?)f["eventBody"]?["message"] == "pong"))["eventBody"]!["message"]);
    }

    readonly List<JsonObject> _unmatched = [];

    /// <summary>The next frame that matches, within 10 s; the others stay, in order, for a later call (heartbeats are dropped).</summary>
    public async Task<JsonObject> NextAsync(Func<JsonObject, bool> match)
    {
        var kept = _unmatched.FindIndex(f => match(f));
        if (kept >= 0)
        {
            var found = _unmatched[kept];
            _unmatched.RemoveAt(kept);
            return found;
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var frame = await ReceiveAsync(timeout.Token) ?? throw new InvalidOperationException("The channel's socket was closed.");
            if (match(frame)) return frame;
            if ((string?)frame["eventBody"]?["message"] != "WebSocket Heartbeat") _unmatched.Add(frame);
        }
    }

    /// <summary>The next frame on <paramref name="topic"/>.</summary>
    public Task<JsonObject> NextOnAsync(string topic) => NextAsync(f => (string?)f["topicName"] == topic);

    /// <summary>One frame; null when the server closed the socket.</summary>
    public async Task<JsonObject?> ReceiveAsync(CancellationToken ct)
    {
        var buffer = new byte[256 * 1024];
        var count = 0;
        ValueWebSocketReceiveResult r;
        do
        {
            r = await _socket.ReceiveAsync(buffer.AsMemory(count), ct);
            count += r.Count;
        } while (!r.EndOfMessage);
        return r.MessageType == WebSocketMessageType.Close ? null : JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, count))!.AsObject();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception) { }
        _socket.Dispose();
    }
}

/// <summary>
/// A channel socket that never reads: a raw TCP connection with a tiny receive buffer that completes the WebSocket
/// handshake and then leaves everything the server sends unread, so the server's writes back up at once.
/// </summary>
public sealed class StalledSocket : IAsyncDisposable
{
    readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 1024 };

    public static async Task<StalledSocket> ConnectAsync(string connectUri)
    {
        var uri = new Uri(connectUri);
        var stalled = new StalledSocket();
        await stalled._socket.ConnectAsync(uri.Host, uri.Port);
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        await stalled._socket.SendAsync(Encoding.ASCII.GetBytes($"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\n" +
            $"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"));
        // Read the 101 answer byte by byte: nothing after its blank line is taken off the socket.
        var head = new StringBuilder();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stalled._socket.ReceiveAsync(one, timeout.Token) == 0) throw new InvalidOperationException("closed during the handshake");
            head.Append((char)one[0]);
        }
        Assert.StartsWith("HTTP/1.1 101", head.ToString());
        return stalled;
    }

    /// <summary>
    /// Reads what a reader that finally wakes up finds, as raw bytes, until a text frame containing <paramref name="notice"/>
    /// and, after it, a close frame (opcode 0x8) have come, or the server ends the connection, or <paramref name="timeout"/>.
    /// Returns the text read (server frames are not masked, so their JSON reads as is) and whether the close came.
    /// </summary>
    public async Task<(string Text, bool Closed)> DrainAsync(string notice, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        var marker = Encoding.UTF8.GetBytes(notice);
        try
        {
            int read;
            while ((read = await _socket.ReceiveAsync(buffer, deadline.Token)) > 0)
            {
                all.Write(buffer, 0, read);
                var bytes = all.GetBuffer().AsSpan(0, (int)all.Length);
                var at = bytes.IndexOf(marker);
                if (at >= 0 && bytes[at..].IndexOf((byte)0x88) >= 0) return (Encoding.UTF8.GetString(bytes), true);
            }
        }
        catch (SocketException) { }            // reset: the server cut the connection off
        catch (OperationCanceledException) { }  // nothing more came
        return (Encoding.UTF8.GetString(all.ToArray()), false);
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
