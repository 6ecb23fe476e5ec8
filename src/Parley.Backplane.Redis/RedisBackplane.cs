using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Parley.Core;
using StackExchange.Redis;

namespace Parley.Backplane.Redis;

/// <summary>Names and timings of the Redis backplane; the defaults are what a node uses (docs/fanout.md).</summary>
public sealed record RedisBackplaneOptions(string NodeId)
{
    /// <summary>Every channel and key starts with it, so one Redis can serve other programs (or other Parley clusters).</summary>
    public string Prefix { get; init; } = "parley:";
    /// <summary>
    /// Beyond a delivery's deadline, how long the origin waits for the other nodes' answers: a node answers at the latest
    /// at the deadline (its slow sockets are cut off then), and its answer still has to cross Redis.
    /// </summary>
    public TimeSpan TransportAllowance { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>How often this node renews its membership key.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>The membership key's lifetime: a node that stops renewing it is no longer waited for once it expires.</summary>
    public TimeSpan MembershipTtl { get; init; } = TimeSpan.FromSeconds(3);
}

/// <summary>
/// The backplane between nodes over Redis publish/subscribe. Every delivery is handed to this node's sockets first,
/// directly, then published once on one channel that every node subscribes to, in one ordered queue per node; each other
/// node hands it to its own sockets and answers on the origin's reply channel with how many took it. Nobody keeps an
/// index of where a session's sockets are: every node is asked and each knows its own. Whom to wait for is the number of
/// subscribers Redis reports for the PUBLISH (the origin's own subscription included, answered by the origin itself when
/// its copy comes back), so a node whose connection is gone is never waited for; a subscriber that is connected but no
/// live member (its membership key expired: the process hangs, or its machine vanished without closing the connection)
/// stops being waited for once every live member has answered. Redis unreachable: this node's sockets are served and
/// counted, the others' are not, and nothing waits (docs/fanout.md "Redis backplane").
/// </summary>
public sealed class RedisBackplane : ISessionBackplane, IChangeBroadcast, IAsyncDisposable
{
    readonly IConnectionMultiplexer _redis;
    readonly ILocalSessionSockets _local;
    readonly ILocalNotifications _notifications;
    readonly RedisBackplaneOptions _options;
    readonly ILogger _log;
    readonly RedisChannel _deliveries, _changes, _replies, _channelChanges, _receiptChanges;
    readonly RedisKey _memberKey, _membersKey;
    readonly ConcurrentDictionary<long, Pending> _pending = new();
    readonly CancellationTokenSource _stop = new();
    ChannelMessageQueue? _deliveryQueue, _changeQueue;
    Task _heartbeat = Task.CompletedTask;
    long _nextId;
    volatile string[] _members = [];
    volatile bool _subscribed;
    bool _repliesSubscribed;
    int _disposed;

    /// <summary>Live members: ids whose membership key exists (Redis's own clock decides); the others are dropped from the set.</summary>
    const string LiveMembersScript = """
        local live = {}
        for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          if redis.call('EXISTS', ARGV[1] .. id) == 1 then table.insert(live, id) else redis.call('SREM', KEYS[1], id) end
        end
        return live
        """;

    public RedisBackplane(IConnectionMultiplexer redis, ILocalSessionSockets local, ILocalNotifications notifications,
        RedisBackplaneOptions options, ILogger log)
    {
        (_redis, _local, _notifications, _options, _log) = (redis, local, notifications, options, log);
        _deliveries = RedisChannel.Literal(options.Prefix + "deliveries");
        _changes = RedisChannel.Literal(options.Prefix + "changes");
        _replies = RedisChannel.Literal(options.Prefix + "replies:" + options.NodeId);
        _channelChanges = RedisChannel.Literal(options.Prefix + "notification-channels");
        _receiptChanges = RedisChannel.Literal(options.Prefix + "termination-receipts");
        _memberKey = options.Prefix + "node:" + options.NodeId;
        _membersKey = options.Prefix + "nodes";
    }

    public string NodeId => _options.NodeId;

    /// <summary>Whether this node is connected to Redis and subscribed: other nodes' deliveries reach it, and its reach them.</summary>
    public bool IsConnected => _redis.IsConnected && _subscribed;

    /// <summary>The live members as last read (this node included), refreshed every heartbeat.</summary>
    public IReadOnlyList<string> Members => _members;

    /// <summary>
    /// Registers this node and subscribes. Never fails for Redis: unreachable, the heartbeat retries until it is back
    /// (a node starts degraded rather than refusing to serve its own sockets).
    /// </summary>
    public async Task StartAsync()
    {
        await TryJoinAsync();
        _heartbeat = HeartbeatAsync(_stop.Token);
    }

    // ------------------------------------------------------------------ deliveries

    public Task<int> DeliverAsync(string sessionId, SessionDelivery delivery, TimeSpan deadline, CancellationToken ct)
    {
        var local = _local.DeliverAsync(sessionId, delivery, deadline);   // first and synchronously: this node's order is kept
        if (!IsConnected) return local;                                    // the other nodes cannot be reached: nothing to wait for
        var id = Interlocked.Increment(ref _nextId);
        var payload = JsonSerializer.SerializeToUtf8Bytes(DeliveryEnvelope.From(NodeId, id, sessionId, delivery, deadline), BackplaneJson.Default.DeliveryEnvelope);
        var remote = Ask(id, payload, deadline + _options.TransportAllowance, ct);
        return remote.IsCompleted && local.IsCompleted ? Sum(local, remote) : SumAsync(local, remote);
    }

    public Task<int> CountSocketsAsync(string sessionId, CancellationToken ct)
    {
        var here = _local.Count(sessionId);
        if (!IsConnected) return Task.FromResult(here);
        var id = Interlocked.Increment(ref _nextId);
        var envelope = new DeliveryEnvelope(NodeId, id, DeliveryEnvelope.CountKind, sessionId, 0);
        var payload = JsonSerializer.SerializeToUtf8Bytes(envelope, BackplaneJson.Default.DeliveryEnvelope);
        return SumAsync(Task.FromResult(here), Ask(id, payload, _options.TransportAllowance, ct));
    }

    static Task<int> Sum(Task<int> a, Task<int> b) => Task.FromResult(a.Result + b.Result);

    static async Task<int> SumAsync(Task<int> local, Task<int> remote) => await local + await remote;

    /// <summary>Publishes a request to every node; completes with the other nodes' sockets once all answered or at <paramref name="wait"/>.</summary>
    Task<int> Ask(long id, byte[] payload, TimeSpan wait, CancellationToken ct)
    {
        var pending = new Pending(this, id);
        _pending[id] = pending;
        pending.Arm(wait, ct);
        Task<long> published;
        try { published = _redis.GetSubscriber().PublishAsync(_deliveries, payload); }   // issued now, in order, on one connection
        catch (Exception e) when (e is RedisException or ObjectDisposedException)
        {
            pending.Complete();
            return pending.Result;
        }
        if (published.IsCompletedSuccessfully) pending.Receivers(published.Result);
        else published.ContinueWith(static (t, state) =>
            {
                var p = (Pending)state!;
                if (t.IsCompletedSuccessfully) p.Receivers(t.Result);
                else p.Complete();   // not published: no node will answer
            }, pending, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return pending.Result;
    }

    /// <summary>One request's answers. Every subscriber that received it answers once (the origin for itself).</summary>
    sealed class Pending(RedisBackplane owner, long id)
    {
        readonly Lock _gate = new();
        readonly TaskCompletionSource<int> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly List<string> _answeredBy = [];
        int _sockets, _answers;
        long _receivers = -1;   // unknown until the PUBLISH answers
        bool _checkingMembers;
        Timer? _timer;
        CancellationTokenRegistration _cancel;

        public Task<int> Result => _done.Task;

        public void Arm(TimeSpan wait, CancellationToken ct)
        {
            _timer = new Timer(static s => ((Pending)s!).Complete(), this, wait, Timeout.InfiniteTimeSpan);
            if (ct.CanBeCanceled) _cancel = ct.Register(static s => ((Pending)s!).Complete(), this);
        }

        public void Receivers(long count)
        {
            lock (_gate) _receivers = count;
            Evaluate();
        }

        public void Answer(string node, int sockets)
        {
            lock (_gate)
            {
                _answers++;
                _sockets += sockets;
                _answeredBy.Add(node);
            }
            Evaluate();
        }

        void Evaluate()
        {
            bool done, suspect = false;
            lock (_gate)
            {
                done = _receivers >= 0 && _answers >= _receivers;
                if (!done && _receivers >= 0 && !_checkingMembers && AllMembersAnswered(owner._members))
                    suspect = _checkingMembers = true;
            }
            if (done) Complete();
            else if (suspect) _ = owner.CheckMembersAsync(this);   // a subscriber that is not a member: is it dead?
        }

        /// <summary>Whether every node in <paramref name="members"/> but the origin has answered (the origin answers for itself too).</summary>
        public bool AllMembersAnswered(string[] members)
        {
            lock (_gate)
            {
                foreach (var m in members)
                    if (!_answeredBy.Contains(m)) return false;
                return true;
            }
        }

        public void Complete()
        {
            int sockets;
            lock (_gate) sockets = _sockets;
            if (!_done.TrySetResult(sockets)) return;
            owner._pending.TryRemove(id, out _);
            _timer?.Dispose();
            _cancel.Dispose();
        }
    }

    /// <summary>
    /// Every member this node knew of answered, yet another subscriber has not: read the members afresh. A subscriber
    /// that is no live member is a node whose membership key expired (or not a node at all): it is not waited for.
    /// </summary>
    async Task CheckMembersAsync(Pending pending)
    {
        try
        {
            var members = await LiveMembersAsync();
            if (pending.AllMembersAnswered(members)) pending.Complete();
        }
        catch (Exception e) { _log.MembersUnread(e); }
    }

    void Answered(long id, string node, int sockets)
    {
        if (_pending.TryGetValue(id, out var pending)) pending.Answer(node, sockets);
    }

    /// <summary>
    /// A delivery or count request from any node, in the order Redis carried them (one ordered queue). This node's part
    /// is started synchronously, so deliveries are queued on its sockets in that order; the answer goes when it completes.
    /// </summary>
    void OnDelivery(ChannelMessage message)
    {
        DeliveryEnvelope? e;
        try { e = JsonSerializer.Deserialize((byte[])message.Message!, BackplaneJson.Default.DeliveryEnvelope); }
        catch (JsonException ex)
        {
            _log.DeliveryUnreadable(ex);
            return;
        }
        if (e is null) return;
        if (e.Origin == NodeId)
        {
            Answered(e.Id, NodeId, 0);   // our own, back from Redis: this node delivered it directly already
            return;
        }
        if (e.Kind == DeliveryEnvelope.CountKind)
        {
            Reply(e, _local.Count(e.Session));
            return;
        }
        if (e.ToDelivery() is not { } delivery)
        {
            Reply(e, 0);
            return;
        }
        Task<int> told;
        // The origin's trace continues here: this node's socket writes are children of its fan-out.
        var previous = Activity.Current;
        var span = e.TraceParent is { } parent && ActivityContext.TryParse(parent, null, isRemote: true, out var context)
            ? ParleyDiagnostics.Source.StartActivity("parley.backplane.receive", ActivityKind.Consumer, context) : null;
        span?.SetTag("parley.node.id", NodeId);
        try { told = _local.DeliverAsync(e.Session, delivery, TimeSpan.FromMilliseconds(e.DeadlineMs)); }
        catch (Exception ex)
        {
            span?.Dispose();
            Activity.Current = previous;
            _log.DeliveryFailed(ex, e.Session);
            Reply(e, 0);
            return;
        }
        ParleyDiagnostics.EndWhenDone(span, previous, told, "parley.sockets.told");
        if (told.IsCompleted) Reply(e, told.IsCompletedSuccessfully ? told.Result : 0);
        else told.ContinueWith((t, state) => Reply((DeliveryEnvelope)state!, t.IsCompletedSuccessfully ? t.Result : 0),
            e, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    void Reply(DeliveryEnvelope e, int sockets)
    {
        try
        {
            var channel = RedisChannel.Literal(_options.Prefix + "replies:" + e.Origin);
            _redis.GetSubscriber().Publish(channel, string.Create(CultureInfo.InvariantCulture, $"{e.Id} {sockets} {NodeId}"), CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException) { /* the origin's deadline counts us 0 */ }
    }

    void OnReply(RedisChannel channel, RedisValue value)
    {
        // "id sockets node": written by Reply above.
        var parts = ((string?)value)?.Split(' ');
        if (parts is not { Length: 3 } || !long.TryParse(parts[0], CultureInfo.InvariantCulture, out var id)
            || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var sockets)) return;
        Answered(id, parts[2], sockets);
    }

    // ------------------------------------------------------------------ notifications

    /// <summary>Always: this node cannot know whether another node's channels are subscribed.</summary>
    public bool Listened => true;

    public void Broadcast(ConversationChange change)
    {
        _notifications.Publish(change);   // this node's channels, once, now
        if (!IsConnected) return;         // the others miss it: notifications are at most once
        try
        {
            var payload = JsonSerializer.SerializeToUtf8Bytes(ChangeEnvelope.From(NodeId, change), BackplaneJson.Default.ChangeEnvelope);
            _redis.GetSubscriber().Publish(_changes, payload, CommandFlags.FireAndForget);
        }
        catch (Exception e) when (e is RedisException or ObjectDisposedException)
        {
            _log.NotificationNotCarried(e);
        }
    }

    void OnChange(ChannelMessage message)
    {
        try
        {
            var e = JsonSerializer.Deserialize((byte[])message.Message!, BackplaneJson.Default.ChangeEnvelope);
            if (e is null || e.Origin == NodeId) return;   // the origin published to its own channels already
            _notifications.Publish(e.ToChange());
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            _log.NotificationNotPublished(ex);
        }
    }

    /// <summary>
    /// A notification channel's stored state changed: this node re-reads it now, every other node when the message
    /// ("origin channelId") arrives; the node holding the channel's socket applies it. At most once, like a change.
    /// </summary>
    public void ChannelChanged(string channelId)
    {
        _notifications.ChannelChanged(channelId);
        if (!IsConnected) return;
        try { _redis.GetSubscriber().Publish(_channelChanges, NodeId + " " + channelId, CommandFlags.FireAndForget); }
        catch (Exception e) when (e is RedisException or ObjectDisposedException) { _log.NotificationNotCarried(e); }
    }

    void OnChannelChanged(RedisChannel channel, RedisValue value)
    {
        var parts = ((string?)value)?.Split(' ', 2);
        if (parts is not { Length: 2 } || parts[0] == NodeId) return;   // ours was applied here already
        _notifications.ChannelChanged(parts[1]);
    }

    /// <summary>
    /// A termination's receipt changed: this node publishes it to its subscribed channels now, every other node when the
    /// message ("origin terminationId") arrives (each reads the receipt as stored). At most once, like a change.
    /// </summary>
    public void ReceiptChanged(string terminationId)
    {
        _notifications.ReceiptChanged(terminationId);
        if (!IsConnected) return;
        try { _redis.GetSubscriber().Publish(_receiptChanges, NodeId + " " + terminationId, CommandFlags.FireAndForget); }
        catch (Exception e) when (e is RedisException or ObjectDisposedException) { _log.NotificationNotCarried(e); }
    }

    void OnReceiptChanged(RedisChannel channel, RedisValue value)
    {
        var parts = ((string?)value)?.Split(' ', 2);
        if (parts is not { Length: 2 } || parts[0] == NodeId) return;   // published here already
        _notifications.ReceiptChanged(parts[1]);
    }

    // ------------------------------------------------------------------ membership and connection

    /// <summary>Renews the membership key, joins when not yet subscribed (start-up or a failed start), refreshes the members.</summary>
    async Task HeartbeatAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_options.Heartbeat);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                // Whatever a beat throws, the next one runs: a dead heartbeat would leave the node out of the cluster for good.
                try
                {
                    if (!_subscribed) await TryJoinAsync();
                    else await TryRenewAsync();
                }
                catch (Exception e) when (!stop.IsCancellationRequested) { _log.HeartbeatFailed(e); }
            }
        }
        catch (OperationCanceledException) { }
    }

    async Task TryJoinAsync()
    {
        if (!await TryRenewAsync()) return;
        try
        {
            // Registered before subscribing: a node that another sees as a subscriber is already a member. Each
            // subscription is made once (Redis reconnects restore them): a second queue would deliver twice.
            var subscriber = _redis.GetSubscriber();
            if (_deliveryQueue is null)
            {
                var queue = await subscriber.SubscribeAsync(_deliveries);
                queue.OnMessage(OnDelivery);   // one loop, in Redis's order (StackExchange.Redis's ordered form)
                _deliveryQueue = queue;
            }
            if (_changeQueue is null)
            {
                var queue = await subscriber.SubscribeAsync(_changes);
                queue.OnMessage(OnChange);
                _changeQueue = queue;
            }
            if (!_repliesSubscribed)
            {
                await subscriber.SubscribeAsync(_replies, OnReply);   // answers: any order will do
                await subscriber.SubscribeAsync(_channelChanges, OnChannelChanged);   // re-reads: any order will do (each reads the latest)
                await subscriber.SubscribeAsync(_receiptChanges, OnReceiptChanged);   // the same: each reads the receipt as stored
                _repliesSubscribed = true;
            }
            _subscribed = true;
            _log.Joined(NodeId, _members.Length);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _log.SubscribeFailed(NodeId, e.Message);
        }
    }

    async Task<bool> TryRenewAsync()
    {
        if (!_redis.IsConnected) return false;
        try
        {
            var db = _redis.GetDatabase();
            var set = db.StringSetAsync(_memberKey, NodeId, _options.MembershipTtl);
            var add = db.SetAddAsync(_membersKey, NodeId);
            await Task.WhenAll(set, add);
            await LiveMembersAsync();
            return true;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _log.RenewalFailed(e);
            return false;
        }
    }

    /// <summary>Reads the live members from Redis and keeps them as this node's view (<see cref="Members"/>).</summary>
    async Task<string[]> LiveMembersAsync()
    {
        var result = await _redis.GetDatabase().ScriptEvaluateAsync(LiveMembersScript, [_membersKey], [_options.Prefix + "node:"]);
        var members = result.IsNull ? [] : Array.ConvertAll((RedisValue[])result!, v => v.ToString());
        _members = members;
        return members;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;   // the host stops it, then the container disposes it
        _stop.Cancel();
        try { await _heartbeat; } catch (OperationCanceledException) { }
        foreach (var p in _pending.Values) p.Complete();
        if (_redis.IsConnected)
        {
            try
            {
                // Leave at once: the others stop waiting for this node now rather than when its key expires.
                var db = _redis.GetDatabase();
                await Task.WhenAll(db.KeyDeleteAsync(_memberKey), db.SetRemoveAsync(_membersKey, NodeId));
                await _redis.GetSubscriber().UnsubscribeAsync(_replies);
                await _redis.GetSubscriber().UnsubscribeAsync(_channelChanges);
                if (_deliveryQueue is not null) await _deliveryQueue.UnsubscribeAsync();
                if (_changeQueue is not null) await _changeQueue.UnsubscribeAsync();
            }
            catch (Exception e) when (e is RedisException or TimeoutException) { }
        }
        _stop.Dispose();
    }
}
