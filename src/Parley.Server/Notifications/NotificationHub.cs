using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Parley.Server.Notifications;

/// <summary>
/// Notification channels (docs/compatibility.md §Notification channels): a client creates a channel, subscribes it to topics, and opens its
/// <c>connectUri</c> WebSocket to receive <c>{topicName, version, eventBody, metadata}</c> frames. In memory on this
/// node; delivery is at most once, as the platform's is (a channel that is not connected misses what happens).
/// </summary>
public sealed partial class NotificationHub(TimeProvider clock)
{
    public static readonly TimeSpan ChannelLifetime = TimeSpan.FromHours(24);
    public const int MaxChannelsPerClient = 20;
    public const int MaxTopicsPerChannel = 1000;

    /// <summary>The topics Parley publishes. {id} is a conversation id.</summary>
    public static readonly string[] TopicPatterns =
    [
        "v2.detail.events.conversation.{id}.customer.start",
        "v2.detail.events.conversation.{id}.customer.end",
    ];

    [GeneratedRegex(@"^v2\.detail\.events\.conversation\.[0-9a-fA-F-]{36}\.customer\.(start|end)$")]
    private static partial Regex SupportedTopic();

    public static bool IsSupported(string topic) => SupportedTopic().IsMatch(topic);

    public sealed class Channel(string id, string clientId, DateTimeOffset expires)
    {
        public string Id => id;
        public string ClientId => clientId;
        public DateTimeOffset Expires { get; set; } = expires;
        public HashSet<string> Topics { get; } = [];
        public WebSocket? Socket { get; set; }
        public SemaphoreSlim SendLock { get; } = new(1, 1);
    }

    readonly ConcurrentDictionary<string, Channel> _channels = new();

    public Channel Create(string clientId)
    {
        var mine = _channels.Values.Where(c => c.ClientId == clientId).OrderBy(c => c.Expires).ToList();
        for (var i = 0; i <= mine.Count - MaxChannelsPerClient; i++) Remove(mine[i].Id);   // the oldest makes room, as on the platform
        var channel = new Channel("streaming-" + Guid.NewGuid().ToString("N"), clientId, clock.GetUtcNow() + ChannelLifetime);
        _channels[channel.Id] = channel;
        return channel;
    }

    public Channel? Find(string id) => _channels.TryGetValue(id, out var c) && c.Expires > clock.GetUtcNow() ? c : null;

    public IEnumerable<Channel> Of(string clientId) => _channels.Values.Where(c => c.ClientId == clientId && c.Expires > clock.GetUtcNow());

    public void Extend(Channel channel) => channel.Expires = clock.GetUtcNow() + ChannelLifetime;

    public void Remove(string id)
    {
        if (_channels.TryRemove(id, out var c)) c.Socket?.Abort();
    }

    /// <summary>Sends an event to every connected channel subscribed to <paramref name="topic"/>.</summary>
    public void Publish(string topic, JsonObject eventBody)
    {
        byte[]? frame = null;
        var now = clock.GetUtcNow();
        foreach (var channel in _channels.Values)
        {
            if (channel.Expires <= now) { Remove(channel.Id); continue; }   // a channel lives 24 h unless renewed
            bool subscribed;
            lock (channel.Topics) subscribed = channel.Topics.Contains(topic);
            if (!subscribed || channel.Socket is not { State: WebSocketState.Open } socket) continue;
            frame ??= JsonSerializer.SerializeToUtf8Bytes(new JsonObject
            {
                ["topicName"] = topic, ["version"] = "2", ["eventBody"] = eventBody,
                ["metadata"] = new JsonObject { ["CorrelationId"] = Guid.NewGuid().ToString() },
            });
            _ = SendAsync(channel, socket, frame);
        }
    }

    public static async Task SendAsync(Channel channel, WebSocket socket, byte[] frame)
    {
        await channel.SendLock.WaitAsync();
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.SendAsync(frame, WebSocketMessageType.Text, true, deadline.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { socket.Abort(); }
        finally { channel.SendLock.Release(); }
    }

    public static byte[] Metadata(string message) => JsonSerializer.SerializeToUtf8Bytes(new JsonObject
    {
        ["topicName"] = "channel.metadata", ["eventBody"] = new JsonObject { ["message"] = message },
    });
}
