using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Parley.Core;
using Parley.Protocol;

namespace Parley.Server.Notifications;

/// <summary>
/// This node's notification sockets (docs/notifications.md). A channel's state (owner, expiry, topics) lives in the store,
/// where every node sees it; this hub holds only the sockets connected here, an index from topic to those sockets, and
/// one bounded queue per socket with one writer task. Publishing looks the topic up in the index (it costs the
/// subscribers, not the channel count), renders the frame once, and queues it without waiting: a socket whose queue is
/// full is told and dropped (its subscriptions stay, a reconnect resumes), so a slow reader never grows memory nor
/// delays a commit. Delivery is at most once, as the platform's is: a channel that is not connected misses what happens.
/// </summary>
public sealed class NotificationHub(INotificationChannelStore store, ParleyOptions options, TimeProvider clock, ILoggerFactory loggers,
    IServiceProvider services)
{
    public static readonly TimeSpan ChannelLifetime = TimeSpan.FromHours(24);
    public const int MaxChannelsPerClient = 20;   // per client and user (a client-credentials token: the client's own)
    public const int MaxTopicsPerChannel = 1000;

    readonly ILogger _log = loggers.CreateLogger("Parley.Notifications");
    readonly ConcurrentDictionary<string, Connection> _connected = new();
    readonly Lock _indexGate = new();
    // Copy on write: a publish reads an array without a lock; subscribe, unsubscribe and disconnect replace it.
    readonly ConcurrentDictionary<string, Connection[]> _index = new(StringComparer.Ordinal);

    /// <summary>Sockets connected to this node.</summary>
    public int ConnectedCount => _connected.Count;

    /// <summary>Channels dropped on this node for not keeping up (since start).</summary>
    public long DroppedCount => Interlocked.Read(ref _dropped);
    long _dropped;

    // ------------------------------------------------------------------ channels (in the store)

    /// <summary>
    /// A new channel for the client and user (null: a client-credentials token); <c>Evicted</c>: that client and user's oldest
    /// channels removed to make room (every node must close their sockets). Another user of the same client keeps theirs.
    /// </summary>
    public async Task<(NotificationChannelState Channel, List<string> Evicted)> CreateAsync(string clientId, string? userId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await store.DeleteExpiredAsync(now, ct);   // a channel lives 24 h unless renewed: expired ones go on the next creation
        var mine = (await OfAsync(clientId, userId, ct)).ToList();
        var evicted = new List<string>();
        for (var i = 0; i <= mine.Count - MaxChannelsPerClient; i++)   // the oldest makes room, as on the platform
        {
            await store.DeleteAsync(mine[i].Id, ct);
            evicted.Add(mine[i].Id);
        }
        var id = "streaming-" + Guid.NewGuid().ToString("N");
        var expires = now + ChannelLifetime;
        await store.CreateAsync(id, clientId, userId, expires, ct);
        return (new NotificationChannelState(id, clientId, userId, expires, []), evicted);
    }

    /// <summary>The channel if it exists and has not expired.</summary>
    public async Task<NotificationChannelState?> FindAsync(string id, CancellationToken ct) =>
        id.Length <= 100 && await store.GetAsync(id, ct) is { } c && c.Expires > clock.GetUtcNow() ? c : null;

    /// <summary>Every live channel of the client, whichever user created it.</summary>
    public Task<IReadOnlyList<NotificationChannelState>> OfClientAsync(string clientId, CancellationToken ct) =>
        store.ListByClientAsync(clientId, clock.GetUtcNow(), ct);

    /// <summary>The live channels of this client and user (null: those created without a user), soonest to expire first.</summary>
    public async Task<IReadOnlyList<NotificationChannelState>> OfAsync(string clientId, string? userId, CancellationToken ct) =>
        [.. (await store.ListByClientAsync(clientId, clock.GetUtcNow(), ct)).Where(c => c.UserId == userId)];

    /// <summary>Adds (or replaces) topics and extends the channel's life; applies the result to this node's socket at once.</summary>
    public async Task<NotificationChannelState?> SubscribeAsync(string id, IReadOnlyCollection<string> topics, bool replace, CancellationToken ct)
    {
        var after = await store.SubscribeAsync(id, topics, replace, clock.GetUtcNow() + ChannelLifetime, ct);
        if (after is not null) Apply(after);
        return after;
    }

    public async Task RemoveAsync(string id, CancellationToken ct)
    {
        await store.DeleteAsync(id, ct);
        if (_connected.TryGetValue(id, out var c)) Drop(c, "The channel was removed.");
    }

    /// <summary>
    /// Removes every channel of a client (it was deleted, or its secret regenerated: the channel ids were handed out under
    /// the old credentials) and closes their sockets on every node. Runs on its own; a failure is logged.
    /// </summary>
    public void CloseClient(string clientId) => _ = CloseClientAsync(clientId);

    async Task CloseClientAsync(string clientId)
    {
        try { await CloseAllAsync(await store.ListByClientAsync(clientId, DateTimeOffset.MinValue, CancellationToken.None)); }
        catch (Exception e) { _log.LogWarning(e, "A revoked client's notification channels could not all be removed."); }
    }

    /// <summary>
    /// Removes every channel a user created (through any client) and closes their sockets on every node: the user was
    /// deleted, or their password or roles changed (their tokens no longer hold). Runs on its own; a failure is logged.
    /// </summary>
    public void CloseUser(string userId) => _ = CloseUserAsync(userId);

    async Task CloseUserAsync(string userId)
    {
        try { await CloseAllAsync(await store.ListByUserAsync(userId, DateTimeOffset.MinValue, CancellationToken.None)); }
        catch (Exception e) { _log.LogWarning(e, "A revoked user's notification channels could not all be removed."); }
    }

    async Task CloseAllAsync(IReadOnlyList<NotificationChannelState> channels)
    {
        // Resolved here, not in the constructor: the broadcast's own construction needs this hub (through the publisher).
        var nodes = services.GetRequiredService<IChangeBroadcast>();
        foreach (var channel in channels)
        {
            await RemoveAsync(channel.Id, CancellationToken.None);
            nodes.ChannelChanged(channel.Id);
        }
    }

    /// <summary>
    /// Another node (or this one) changed the channel's stored state: re-read it when its socket is here. A reload that
    /// finishes after a later one started is not applied (the later one is).
    /// </summary>
    public void Reload(string id)
    {
        if (!_connected.TryGetValue(id, out var c)) return;
        var generation = Interlocked.Increment(ref c.Generation);
        _ = ReloadAsync(c, generation);
    }

    async Task ReloadAsync(Connection c, long generation)
    {
        try
        {
            var state = await store.GetAsync(c.ChannelId, CancellationToken.None);
            if (Interlocked.Read(ref c.Generation) != generation) return;
            if (state is null || state.Expires <= clock.GetUtcNow()) Drop(c, "The channel was removed.");
            else Apply(state);
        }
        catch (Exception e) { _log.LogWarning(e, "A notification channel's subscriptions could not be re-read; its socket keeps the ones it had."); }
    }

    /// <summary>Puts the socket of <paramref name="state"/> (if it is here) under exactly its topics in the index.</summary>
    void Apply(NotificationChannelState state)
    {
        if (!_connected.TryGetValue(state.Id, out var c)) return;
        lock (_indexGate)
        {
            if (c.Closed) return;
            var next = state.Topics.ToHashSet(StringComparer.Ordinal);
            foreach (var gone in c.Topics.Where(t => !next.Contains(t))) Unindex(gone, c);
            foreach (var added in next.Where(t => !c.Topics.Contains(t))) Index(added, c);
            c.Topics = next;
            c.Expires = state.Expires;
        }
    }

    void Index(string topic, Connection c)
    {
        if (_index.TryGetValue(topic, out var list)) _index[topic] = [.. list, c];
        else
        {
            _index[topic] = [c];
            Volatile.Write(ref _topics, _topics + 1);
        }
    }

    void Unindex(string topic, Connection c)
    {
        if (!_index.TryGetValue(topic, out var list)) return;
        var rest = Array.FindAll(list, x => !ReferenceEquals(x, c));
        if (rest.Length > 0) _index[topic] = rest;
        else if (_index.TryRemove(topic, out _)) Volatile.Write(ref _topics, _topics - 1);
    }

    /// <summary>Topics in the index, changed only under <see cref="_indexGate"/>: read without it, as a hint.</summary>
    int _topics;

    // ------------------------------------------------------------------ publishing

    /// <summary>Whether any socket on this node is subscribed to <paramref name="topic"/> (render nothing otherwise).</summary>
    public bool HasSubscribers(string topic) => _index.ContainsKey(topic);

    /// <summary>
    /// Whether any socket on this node is subscribed to anything: when none is, a committed change costs the publisher
    /// nothing (no topic names, no closures per message). A subscription made while a change is published may miss that
    /// one change, as it would by arriving a moment later.
    /// </summary>
    public bool HasAnySubscriber => Volatile.Read(ref _topics) > 0;

    /// <summary>
    /// Queues the frame <paramref name="render"/> makes (called once, only when someone is subscribed) on every socket
    /// subscribed to <paramref name="topic"/>. Never waits: a socket whose queue is full is dropped.
    /// </summary>
    public void Publish(string topic, Func<byte[]> render)
    {
        if (!_index.TryGetValue(topic, out var subscribers)) return;
        var frame = render();
        var now = clock.GetUtcNow();
        foreach (var c in subscribers)
        {
            if (c.Expires <= now) Drop(c, "The channel expired; create a new one.");
            else if (!c.Queue.Writer.TryWrite(frame))
                Drop(c, $"The channel fell {options.NotificationChannelQueueFrames} events behind and was dropped; reconnect to resume.");
        }
    }

    /// <summary>Takes the socket off the index and tells its writer to send <paramref name="reason"/> and close.</summary>
    void Drop(Connection c, string reason)
    {
        lock (_indexGate)
        {
            if (c.Closed) return;
            c.Closed = true;
            foreach (var t in c.Topics) Unindex(t, c);
        }
        _connected.TryRemove(new KeyValuePair<string, Connection>(c.ChannelId, c));
        c.CloseReason = reason;
        c.Queue.Writer.TryComplete();
        c.Stop.Cancel();   // the writer stops taking frames; a frame in flight finishes (or times out) first
        // The frame in flight gets a whole send timeout from now: a reader that wakes up in that time reads its backlog and why.
        try { c.SendDeadline?.CancelAfter(options.NotificationSendTimeout); } catch (ObjectDisposedException) { }
        if (reason.Contains("behind", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _dropped);
            _log.LogWarning("A notification channel could not keep up ({Frames} frames queued) and was dropped.", options.NotificationChannelQueueFrames);
        }
    }

    // ------------------------------------------------------------------ sockets

    /// <summary>
    /// A socket's place in the order sockets arrive on this node: taken before its upgrade is answered, handed to
    /// <see cref="ServeAsync"/>.
    /// </summary>
    public long Arrive() => Interlocked.Increment(ref _arrivals);
    long _arrivals;

    /// <summary>
    /// Serves the channel's socket on this node until it closes: registers it under the channel's stored topics, runs
    /// its writer, and answers pings. A socket that arrived later for the same channel replaces it, whichever of the
    /// two registers first (<paramref name="arrival"/> from <see cref="Arrive"/>).
    /// </summary>
    public async Task ServeAsync(NotificationChannelState state, WebSocket socket, long arrival, CancellationToken aborted)
    {
        var c = new Connection(state.Id, socket, options.NotificationChannelQueueFrames) { Expires = state.Expires, Arrival = arrival };
        Connection? replaced;
        lock (_indexGate)
        {
            // Two upgrades of one channel run side by side: the one answered first may register last (its client
            // believes it is connected, and the other is the newcomer that must win).
            if (!_connected.TryGetValue(state.Id, out replaced) || replaced.Arrival < arrival) _connected[state.Id] = c;
            else replaced = c;
        }
        if (replaced is not null) Drop(replaced, "Another socket connected to this channel.");
        if (!c.Closed)
        {
            Apply(state);
            // A subscription change between the read and the registration: read again now that the socket is findable.
            Reload(state.Id);
        }
        var writer = WriteAsync(c);
        var heartbeat = HeartbeatAsync(c);
        var buffer = new byte[4096];
        try
        {
            while (socket.State == WebSocketState.Open && !c.Closed)
            {
                var r = await socket.ReceiveAsync(buffer, aborted);
                if (r.MessageType == WebSocketMessageType.Close) break;
                if (!r.EndOfMessage) continue;
                if (IsPing(buffer.AsSpan(0, r.Count)) && !c.Queue.Writer.TryWrite(Pong))
                    Drop(c, $"The channel fell {options.NotificationChannelQueueFrames} events behind and was dropped; reconnect to resume.");
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        finally
        {
            if (!c.Closed) Drop(c, "closed");
            try { await Task.WhenAll(writer, heartbeat); } catch (OperationCanceledException) { }
        }
    }

    static bool IsPing(ReadOnlySpan<byte> text)
    {
        try
        {
            var reader = new Utf8JsonReader(text);
            using var doc = JsonDocument.ParseValue(ref reader);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("message", out var m)
                && m.ValueKind == JsonValueKind.String && m.ValueEquals("ping");
        }
        catch (JsonException) { return false; }
    }

    /// <summary>The socket's one writer: frames in queue order, each within the send timeout; then the close notice.</summary>
    async Task WriteAsync(Connection c)
    {
        try
        {
            await foreach (var frame in c.Queue.Reader.ReadAllAsync(c.Stop.Token))
            {
                using var deadline = new CancellationTokenSource(options.NotificationSendTimeout);
                c.SendDeadline = deadline;
                await c.Socket.SendAsync(frame, WebSocketMessageType.Text, true, deadline.Token);
                c.SendDeadline = null;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            if (c.Socket.State != WebSocketState.Open || !c.Stop.IsCancellationRequested) { c.Socket.Abort(); return; }
        }
        if (c.CloseReason is { } reason && reason != "closed") await TellAndCloseAsync(c, reason);
    }

    /// <summary>The platform's closing notice (<c>v2.system.socket_closing</c>) with why, then a close; cut off if it is not taken in time.</summary>
    async Task TellAndCloseAsync(Connection c, string reason)
    {
        // As long as any frame gets: a reader that wakes up in time reads its backlog, then why it was dropped.
        using var deadline = new CancellationTokenSource(options.NotificationSendTimeout);
        try
        {
            await c.Socket.SendAsync(Closing(reason), WebSocketMessageType.Text, true, deadline.Token);
            await c.Socket.CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, "dropped", deadline.Token);
            // Not aborted now (that would throw away what is still on its way): the client answers the close, or is cut off.
            _ = Task.Delay(options.NotificationSendTimeout, clock).ContinueWith(static (_, s) =>
            {
                var socket = (WebSocket)s!;
                if (socket.State != WebSocketState.Closed) socket.Abort();
            }, c.Socket, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
        c.Socket.Abort();
    }

    async Task HeartbeatAsync(Connection c)
    {
        var frame = Metadata("WebSocket Heartbeat");
        try
        {
            while (!c.Stop.IsCancellationRequested)
            {
                await Task.Delay(NotificationsApi.Heartbeat, clock, c.Stop.Token);
                if (!c.Queue.Writer.TryWrite(frame))
                    Drop(c, $"The channel fell {options.NotificationChannelQueueFrames} events behind and was dropped; reconnect to resume.");
            }
        }
        catch (OperationCanceledException) { }
    }

    static readonly byte[] Pong = Metadata("pong");

    public static byte[] Metadata(string message) =>
        JsonSerializer.SerializeToUtf8Bytes(new ChannelFrame("channel.metadata", new ChannelMessageBody(message)), ParleyJson.Wire.ChannelFrame);

    static byte[] Closing(string reason) =>
        JsonSerializer.SerializeToUtf8Bytes(new ChannelFrame("v2.system.socket_closing", new ChannelMessageBody(reason), "2"), ParleyJson.Wire.ChannelFrame);

    sealed class Connection(string channelId, WebSocket socket, int capacity)
    {
        public string ChannelId => channelId;
        public WebSocket Socket => socket;
        public Channel<byte[]> Queue { get; } = System.Threading.Channels.Channel.CreateBounded<byte[]>(
            new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        public CancellationTokenSource Stop { get; } = new();
        public HashSet<string> Topics { get; set; } = [];
        public DateTimeOffset Expires { get; set; }
        public bool Closed { get; set; }
        public string? CloseReason { get; set; }
        public volatile CancellationTokenSource? SendDeadline;
        public long Generation;
        public long Arrival { get; init; }
    }
}
