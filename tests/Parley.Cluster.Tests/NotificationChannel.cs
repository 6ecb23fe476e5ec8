using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.Cluster.Tests;

/// <summary>A notification channel (POST /api/v2/notifications/channels) subscribed to topics, its WebSocket connected.</summary>
public sealed class NotificationChannel : IAsyncDisposable
{
    readonly ClientWebSocket _socket = new();

    public string ConnectUri { get; private set; } = "";

    public static async Task<NotificationChannel> OpenAsync(PlatformClient platform, params string[] topics)
    {
        var (created, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var id = (string)channel!["id"]!;
        var (subscribed, _) = await platform.PostAsync($"/api/v2/notifications/channels/{id}/subscriptions", topics.Select(t => new { id = t }).ToArray());
        Assert.Equal(HttpStatusCode.OK, subscribed.StatusCode);
        var opened = new NotificationChannel { ConnectUri = (string)channel["connectUri"]! };
        await opened._socket.ConnectAsync(new Uri(opened.ConnectUri), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        // A ping answered proves the socket reached the channel's node before anything is published.
        await opened._socket.SendAsync("{\"message\":\"ping\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("pong", (string?)(await opened.NextAsync(f => f["eventBody"]?["message"] is not null))["eventBody"]!["message"]);
        return opened;
    }

    /// <summary>The next frame that matches, within 10 s.</summary>
    public async Task<JsonObject> NextAsync(Func<JsonObject, bool> match)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var count = 0;
            ValueWebSocketReceiveResult r;
            do
            {
                r = await _socket.ReceiveAsync(buffer.AsMemory(count), timeout.Token);
                count += r.Count;
            } while (!r.EndOfMessage);
            if (r.MessageType == WebSocketMessageType.Close) throw new InvalidOperationException("The channel's socket was closed.");
            var frame = JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, count))!.AsObject();
            if (match(frame)) return frame;
        }
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
