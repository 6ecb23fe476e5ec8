using System.Net.WebSockets;
using System.Threading.Channels;

namespace Parley.Server.GuestApi;

/// <summary>
/// One guest WebSocket. Only the send loop sends (a WebSocket allows one send in flight); everything else queues a
/// frame. A queue that fills means the guest does not read: it is dropped rather than let the publisher wait.
/// </summary>
public sealed class GuestConnection
{
    readonly WebSocket _socket;
    readonly Channel<Outgoing> _outbound;
    readonly TimeSpan _sendTimeout;
    readonly int _roomMark;
    int _closing;
    int _queued;
    TaskCompletionSource? _roomWaiter;

    readonly record struct Outgoing(byte[]? Frame, TaskCompletionSource<bool>? Sent, WebSocketCloseStatus? CloseStatus = null, string? CloseText = null);

    /// <param name="sendTimeout">How long one frame may take to send, and a closed guest to answer the close.</param>
    public GuestConnection(WebSocket socket, int maxQueuedFrames, TimeSpan sendTimeout)
    {
        _socket = socket;
        _sendTimeout = sendTimeout;
        _roomMark = Math.Max(1, maxQueuedFrames / 2);
        _outbound = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(maxQueuedFrames) { SingleReader = true });
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");
    /// <summary>The guest session this socket is configured for; null until configureSession.</summary>
    public GuestBinding? Binding
    {
        get => _binding;
        set { _binding = value; if (value is not null) WasConfigured = true; }
    }
    volatile GuestBinding? _binding;
    /// <summary>Whether a session was ever configured on this socket (the configureSession deadline is met).</summary>
    public volatile bool WasConfigured;
    /// <summary>This socket was sent the Clear sequence (SessionCleared, ConnectionClosed); only its close is still due.</summary>
    public volatile bool ClearTold;
    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>Queues a frame; false when the socket is closing or too slow (then it is aborted).</summary>
    public bool Deliver(byte[] frame)
    {
        if (IsClosing) return false;
        if (_outbound.Writer.TryWrite(new Outgoing(frame, null))) { Interlocked.Increment(ref _queued); return true; }
        Abort();
        return false;
    }

    /// <summary>Queues a frame and completes when it was written to the socket (true) or could not be (false).</summary>
    public Task<bool> DeliverAndConfirmAsync(byte[] frame)
    {
        if (IsClosing) return Task.FromResult(false);
        var sent = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_outbound.Writer.TryWrite(new Outgoing(frame, sent))) { Interlocked.Increment(ref _queued); return sent.Task; }
        Abort();
        return Task.FromResult(false);
    }

    /// <summary>
    /// Back-pressure on the guest's own requests: the receive loop waits here until the queue is at most half full,
    /// so a guest that sends faster than it reads is slowed down, not dropped; the other half is room for pushes
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

    /// <summary>Sends what is queued, then the close handshake. Frames queued after this are refused.</summary>
    public void Close(WebSocketCloseStatus status, string text) => CloseAndConfirmAsync(status, text);

    /// <summary>As <see cref="Close"/>; completes when the close frame was written (false: it could not be).</summary>
    public Task<bool> CloseAndConfirmAsync(WebSocketCloseStatus status, string text)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return Task.FromResult(false);
        CloseReason = text;
        var sent = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_outbound.Writer.TryWrite(new Outgoing(null, sent, status, text)))
        {
            _socket.Abort();
            sent.TrySetResult(false);
        }
        _outbound.Writer.TryComplete();
        return sent.Task;
    }

    /// <summary>Why the socket was closed by the server (its close frame's text), or "aborted"; null while open.</summary>
    public string? CloseReason { get; private set; }

    public void Abort()
    {
        CloseReason ??= "aborted: the guest did not take its frames in time";
        Interlocked.Exchange(ref _closing, 1);
        _outbound.Writer.TryComplete();
        _socket.Abort();
    }

    public async Task RunSendLoopAsync()
    {
        Outgoing current = default;
        try
        {
            await foreach (var item in _outbound.Reader.ReadAllAsync())
            {
                current = item;
                using var deadline = new CancellationTokenSource(_sendTimeout);
                if (item.CloseStatus is { } status)
                {
                    await _socket.CloseOutputAsync(status, item.CloseText, deadline.Token);
                    item.Sent?.TrySetResult(true);
                    // A guest that does not answer the close within the send timeout is cut off, so it holds nothing.
                    _ = Task.Delay(_sendTimeout).ContinueWith(_ => { if (_socket.State != WebSocketState.Closed) _socket.Abort(); },
                        TaskScheduler.Default);
                    break;
                }
                await _socket.SendAsync(item.Frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, deadline.Token);
                item.Sent?.TrySetResult(true);
                FreeRoom();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            current.Sent?.TrySetResult(false);
            _socket.Abort();   // a guest that stopped reading, or went away
        }
        finally
        {
            Interlocked.Exchange(ref _closing, 1);
            _outbound.Writer.TryComplete();
            while (_outbound.Reader.TryRead(out var left)) left.Sent?.TrySetResult(false);
            Interlocked.Exchange(ref _roomWaiter, null)?.TrySetResult();
        }
    }
}

/// <summary>What a configured socket is bound to: the session and the hash of the token that opened it.</summary>
public sealed record GuestBinding(string SessionId, string DeploymentId, string TokenHash);
