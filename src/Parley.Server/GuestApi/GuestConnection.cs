using System.Net.WebSockets;

namespace Parley.Server.GuestApi;

/// <summary>
/// One guest WebSocket. One send is in flight at a time (a WebSocket allows no more): a frame delivered while none is
/// goes out at once, from the caller; frames delivered meanwhile wait in a queue that exists only while sends are
/// pending, so an idle socket holds no queue, task or timer here. A queue that fills means the guest does not read: it
/// is dropped rather than let the publisher wait.
/// </summary>
public sealed class GuestConnection
{
    readonly WebSocket _socket;
    readonly TimeSpan _sendTimeout;
    readonly int _maxQueued;
    readonly int _roomMark;
    // Guards _sending, _pending, _closing's transitions and _drained; a socket's own sends never contend for long.
    readonly Lock _lock = new();
    bool _sending;
    Queue<Outgoing>? _pending;
    TaskCompletionSource? _drained;
    int _closing;
    int _queued;
    TaskCompletionSource? _roomWaiter;
    ITimer? _configureDeadline;

    readonly record struct Outgoing(byte[]? Frame, TaskCompletionSource<bool>? Sent, WebSocketCloseStatus? CloseStatus = null, string? CloseText = null);

    /// <param name="sendTimeout">How long one frame may take to send, and a closed guest to answer the close.</param>
    public GuestConnection(WebSocket socket, int maxQueuedFrames, TimeSpan sendTimeout)
    {
        _socket = socket;
        _sendTimeout = sendTimeout;
        _maxQueued = Math.Max(1, maxQueuedFrames);
        _roomMark = Math.Max(1, maxQueuedFrames / 2);
    }

    /// <summary>This socket's id in termination receipts; kept as a Guid (16 bytes inline), rendered only when asked.</summary>
    public string Id => _id.ToString("N");
    readonly Guid _id = Guid.NewGuid();
    /// <summary>The guest session this socket is configured for; null until configureSession.</summary>
    public GuestBinding? Binding
    {
        get => _binding;
        set
        {
            _binding = value;
            if (value is null) return;
            WasConfigured = true;
            // The configureSession deadline is met: its timer is let go now, not when the socket closes.
            Interlocked.Exchange(ref _configureDeadline, null)?.Dispose();
        }
    }
    volatile GuestBinding? _binding;
    /// <summary>Whether a session was ever configured on this socket (the configureSession deadline is met).</summary>
    public volatile bool WasConfigured;
    /// <summary>This socket was sent the Clear sequence (SessionCleared, ConnectionClosed); only its close is still due.</summary>
    public volatile bool ClearTold;
    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>The timer that closes the socket if it is never configured; disposed once it is, or when the socket ends.</summary>
    public void SetConfigureDeadline(ITimer timer)
    {
        Volatile.Write(ref _configureDeadline, timer);
        if (WasConfigured || IsClosing) Interlocked.Exchange(ref _configureDeadline, null)?.Dispose();
    }

    /// <summary>What this socket holds for sending right now (diagnostics and tests): an idle one holds nothing.</summary>
    public (bool Sending, bool HasQueue, bool HasDeadlineTimer) SendState
    {
        get { lock (_lock) return (_sending, _pending is not null, Volatile.Read(ref _configureDeadline) is not null); }
    }

    /// <summary>Sends or queues a frame; false when the socket is closing or too slow (then it is aborted).</summary>
    public bool Deliver(byte[] frame) => Enqueue(new Outgoing(frame, null));

    /// <summary>Sends or queues a frame and completes when it was written to the socket (true) or could not be (false).</summary>
    public Task<bool> DeliverAndConfirmAsync(byte[] frame)
    {
        if (IsClosing) return Task.FromResult(false);
        var sent = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        return Enqueue(new Outgoing(frame, sent)) ? sent.Task : Task.FromResult(false);
    }

    bool Enqueue(Outgoing item)
    {
        bool start, full = false;
        lock (_lock)
        {
            if (IsClosing) return false;
            start = !_sending;
            if (start) _sending = true;
            else if ((_pending ??= new Queue<Outgoing>()).Count >= _maxQueued) full = true;
            else _pending.Enqueue(item);
            if (!full) _queued++;
        }
        if (full)
        {
            Abort();
            return false;
        }
        if (start) _ = SendAsync(item);
        return true;
    }

    /// <summary>
    /// Back-pressure on the guest's own requests: the receive loop waits here until at most half the queue's room is
    /// taken, so a guest that sends faster than it reads is slowed down, not dropped; the other half is room for pushes
    /// from the platform side, which never wait.
    /// </summary>
    public Task WaitForRoomAsync()
    {
        if (Volatile.Read(ref _queued) < _roomMark || IsClosing) return Task.CompletedTask;
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _roomWaiter, waiter);
        if (Volatile.Read(ref _queued) < _roomMark || IsClosing) waiter.TrySetResult();
        return waiter.Task;
    }

    void FreeRoom()
    {
        if (Interlocked.Decrement(ref _queued) < _roomMark) Interlocked.Exchange(ref _roomWaiter, null)?.TrySetResult();
    }

    /// <summary>Sends what is queued, then the close handshake. Frames delivered after this are refused.</summary>
    public void Close(WebSocketCloseStatus status, string text) => CloseAndConfirmAsync(status, text);

    /// <summary>As <see cref="Close"/>; completes when the close frame was written (false: it could not be).</summary>
    public Task<bool> CloseAndConfirmAsync(WebSocketCloseStatus status, string text)
    {
        var sent = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var close = new Outgoing(null, sent, status, text);
        bool start;
        lock (_lock)
        {
            if (_closing != 0) return Task.FromResult(false);
            _closing = 1;
            CloseReason = text;
            start = !_sending;
            if (start) _sending = true;
            else (_pending ??= new Queue<Outgoing>()).Enqueue(close);   // the close is never refused for room
        }
        Interlocked.Exchange(ref _configureDeadline, null)?.Dispose();
        if (start) _ = SendAsync(close);
        return sent.Task;
    }

    /// <summary>Why the socket was closed by the server (its close frame's text), or "aborted"; null while open.</summary>
    public string? CloseReason { get; private set; }

    public void Abort()
    {
        CloseReason ??= "aborted: the guest did not take its frames in time";
        bool idle;
        lock (_lock)
        {
            _closing = 1;
            idle = !_sending;
            if (idle) Drained();
        }
        Interlocked.Exchange(ref _configureDeadline, null)?.Dispose();
        _socket.Abort();
        if (idle) Interlocked.Exchange(ref _roomWaiter, null)?.TrySetResult();
    }

    /// <summary>Completes once the socket is closing and nothing is being sent any more (the close frame is out, or the socket aborted).</summary>
    public Task DrainedAsync()
    {
        lock (_lock)
        {
            if (_closing != 0 && !_sending) return Task.CompletedTask;
            return (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>Under the lock: the last send is done and the socket is closing.</summary>
    void Drained()
    {
        _drained?.TrySetResult();
        _drained = null;
    }

    /// <summary>A send that did not complete at once, given the send timeout; past it, it is left to fail with the abort.</summary>
    async Task WithinSendTimeoutAsync(Task sending)
    {
        try { await sending.WaitAsync(_sendTimeout); }
        catch (TimeoutException)
        {
            _ = sending.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>Sends <paramref name="item"/>, then whatever was queued behind it; runs only while there is something to send.</summary>
    async Task SendAsync(Outgoing item)
    {
        while (true)
        {
            var failed = false;
            try
            {
                if (item.CloseStatus is { } status)
                {
                    using var deadline = new CancellationTokenSource(_sendTimeout);
                    await _socket.CloseOutputAsync(status, item.CloseText, deadline.Token);
                    item.Sent?.TrySetResult(true);
                    // A guest that does not answer the close within the send timeout is cut off, so it holds nothing.
                    _ = Task.Delay(_sendTimeout).ContinueWith(_ => { if (_socket.State != WebSocketState.Closed) _socket.Abort(); },
                        TaskScheduler.Default);
                }
                else
                {
                    // Almost every send completes at once (the connection's buffer has room): those need no timer. One that
                    // waits gets the send timeout, past which the guest is taken as not reading and cut off (below).
                    var sending = _socket.SendAsync(item.Frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                    if (sending.IsCompletedSuccessfully) sending.GetAwaiter().GetResult();
                    else await WithinSendTimeoutAsync(sending.AsTask());
                    item.Sent?.TrySetResult(true);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or TimeoutException)
            {
                failed = true;
                // Closing before the caller hears of the failure: a frame delivered once it has is refused, never taken and
                // dropped (the queue is emptied below). It had been marked only after, which a busy CI machine caught.
                lock (_lock) _closing = 1;
                _socket.Abort();   // a guest that stopped reading, or went away
                item.Sent?.TrySetResult(false);
            }
            if (item.CloseStatus is null) FreeRoom();

            Queue<Outgoing>? left = null;
            lock (_lock)
            {
                if (!failed && item.CloseStatus is null && _pending is { Count: > 0 } queue)
                {
                    item = queue.Dequeue();
                    continue;
                }
                // Both are marked closing already (the catch above; CloseAndConfirmAsync before it queued the close).
                if (failed || item.CloseStatus is not null) left = _pending;
                _pending = null;   // idle again: the queue is let go
                _sending = false;
                if (_closing != 0) Drained();
            }
            if (left is not null)
                while (left.TryDequeue(out var dropped)) dropped.Sent?.TrySetResult(false);
            if (failed || item.CloseStatus is not null) Interlocked.Exchange(ref _roomWaiter, null)?.TrySetResult();
            return;
        }
    }
}

/// <summary>What a configured socket is bound to: the session and the hash of the token that opened it.</summary>
public sealed record GuestBinding(string SessionId, string DeploymentId, string TokenHash);
