using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// The events of a notification channel, read in the background (<see cref="NotificationsClient.OpenAsync"/>). Enumerate
/// it once. Delivery is at most once, as the platform's: events published while the socket is being reconnected are
/// missed. A failure it cannot recover from (the credentials refused, the topics refused) ends the enumeration with
/// that <see cref="ParleyApiException"/>.
/// </summary>
public sealed class NotificationStream : IAsyncEnumerable<NotificationEvent>, IAsyncDisposable
{
    const string Heartbeat = "channel.metadata";
    const string SocketClosing = "v2.system.socket_closing";
    /// <summary>A frame larger than this is not a notification; the socket is dropped and reconnected.</summary>
    const int MaxFrameBytes = 4 << 20;

    readonly NotificationsClient _client;
    readonly NotificationStreamOptions _options;
    readonly Channel<NotificationEvent> _events;
    readonly CancellationTokenSource _stop = new();
    Task _reader = Task.CompletedTask;
    ClientWebSocket? _socket;
    int _reconnects;
    int _heartbeats;

    internal NotificationStream(NotificationsClient client, string[] topics, NotificationStreamOptions options)
    {
        if (topics.Length == 0) throw new ArgumentException("Name at least one topic.", nameof(topics));
        _client = client;
        Topics = topics;
        _options = options;
        _events = System.Threading.Channels.Channel.CreateBounded<NotificationEvent>(
            new BoundedChannelOptions(Math.Max(1, options.Buffer)) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
    }

    /// <summary>The topics subscribed (again, on a new channel, after the old one is gone).</summary>
    public IReadOnlyList<string> Topics { get; }

    /// <summary>The channel in use (a new one when the server had removed the old one).</summary>
    public ChannelWire Channel { get; private set; } = null!;

    /// <summary>How many times a dropped socket was reconnected.</summary>
    public int Reconnects => Volatile.Read(ref _reconnects);

    /// <summary>How many <c>channel.metadata</c> frames (heartbeats, pongs) were read and skipped: the socket is alive.</summary>
    public int Heartbeats => Volatile.Read(ref _heartbeats);

    /// <summary>Raised (on the reading task) after each reconnection, with the channel now in use.</summary>
    public event Action<ChannelWire>? Reconnected;

    internal async Task StartAsync(CancellationToken ct)
    {
        Channel = await _client.CreateChannelAsync(ct);
        await _client.SetSubscriptionsAsync(Channel.Id, Topics, ct);
        _socket = await ConnectAsync(Channel.ConnectUri, ct);
        _reader = Task.Run(ReadLoopAsync, CancellationToken.None);
    }

    public IAsyncEnumerator<NotificationEvent> GetAsyncEnumerator(CancellationToken ct = default) =>
        _events.Reader.ReadAllAsync(ct).GetAsyncEnumerator(ct);

    async Task ReadLoopAsync()
    {
        var stop = _stop.Token;
        try
        {
            while (true)
            {
                try { await ReadSocketAsync(_socket!, stop); }
                catch (Exception e) when (e is WebSocketException or IOException && !stop.IsCancellationRequested) { }
                _socket?.Dispose();
                _socket = null;
                await ReconnectAsync(stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { _events.Writer.TryComplete(); }
        catch (Exception e) { _events.Writer.TryComplete(e); }
    }

    /// <summary>Reads frames until the socket closes; heartbeats and pongs are skipped.</summary>
    async Task ReadSocketAsync(ClientWebSocket socket, CancellationToken stop)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var count = 0;
            ValueWebSocketReceiveResult r;
            do
            {
                if (count == buffer.Length)
                {
                    if (buffer.Length >= MaxFrameBytes) throw new WebSocketException(WebSocketError.Faulted, "A notification frame exceeded 4 MB.");
                    Array.Resize(ref buffer, buffer.Length * 2);
                }
                r = await socket.ReceiveAsync(buffer.AsMemory(count), stop);
                count += r.Count;
            } while (!r.EndOfMessage);
            if (r.MessageType == WebSocketMessageType.Close) return;
            if (Parse(buffer.AsSpan(0, count)) is { } e) await _events.Writer.WriteAsync(e, stop);
        }
    }

    NotificationEvent? Parse(ReadOnlySpan<byte> frame)
    {
        try
        {
            using var doc = JsonDocument.Parse(frame.ToArray());
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("topicName", out var t) || t.ValueKind != JsonValueKind.String) return null;
            var topic = t.GetString()!;
            if (topic == Heartbeat)
            {
                Interlocked.Increment(ref _heartbeats);
                return null;
            }
            if (topic == SocketClosing) return null;   // the close follows it, and the reconnect follows that
            var body = root.TryGetProperty("eventBody", out var b) ? b.Clone() : default;
            var version = root.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            string? correlation = null;
            if (root.TryGetProperty("metadata", out var m) && m.ValueKind == JsonValueKind.Object
                && m.TryGetProperty("CorrelationId", out var c) && c.ValueKind == JsonValueKind.String) correlation = c.GetString();
            return new NotificationEvent(topic, body, version, correlation);
        }
        catch (JsonException) { return null; }   // not a notification: nothing to hand on
    }

    /// <summary>
    /// The same channel when it still exists (its subscriptions are the server's), else a new one with the same topics;
    /// retried with a growing delay while the server cannot be reached. Refused credentials or topics end the stream.
    /// </summary>
    async Task ReconnectAsync(CancellationToken stop)
    {
        var delay = _options.FirstReconnectDelay;
        while (true)
        {
            await Task.Delay(delay, stop);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
            try
            {
                if (!await _client.ChannelExistsAsync(Channel.Id, stop))
                {
                    var channel = await _client.CreateChannelAsync(stop);
                    await _client.SetSubscriptionsAsync(channel.Id, Topics, stop);
                    Channel = channel;
                }
                _socket = await ConnectAsync(Channel.ConnectUri, stop);
                Interlocked.Increment(ref _reconnects);
                Reconnected?.Invoke(Channel);
                return;
            }
            catch (ParleyApiException e) when (e.Status is 0 or 404 or 408 or 429 or >= 500) { }   // unreachable or busy: try again
            catch (Exception e) when (e is WebSocketException or IOException && !stop.IsCancellationRequested) { }
        }
    }

    async Task<ClientWebSocket> ConnectAsync(string connectUri, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        // The platform heartbeats every 30 s; a peer that stops answering pings is a dropped socket.
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(30);
        socket.Options.KeepAliveTimeout = TimeSpan.FromSeconds(30);
        _options.ConfigureSocket?.Invoke(socket.Options);
        try
        {
            await socket.ConnectAsync(new Uri(connectUri), ct);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Stops reading and closes the socket (the channel itself expires on the server).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        var socket = _socket;
        if (socket is { State: WebSocketState.Open })
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try { await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token); }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
        }
        _stop.Cancel();
        try { await _reader; }
        catch (OperationCanceledException) { }
        socket?.Dispose();
        _events.Writer.TryComplete();
        _stop.Dispose();
    }
}
