using System.Collections.Immutable;
using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Parley.Core;
using Parley.Server;
using Parley.Server.GuestApi;

namespace Parley.Micro;

/// <summary>
/// One committed guest message fanned out to the N sockets of its session through the server's own path
/// (<see cref="ConversationFanout"/> → <see cref="InProcessBackplane"/> → <see cref="LocalSessionHub"/> → each
/// <see cref="GuestConnection"/>'s send path → a real <see cref="WebSocket"/> over a stream that counts the frames):
/// an operation ends when every socket wrote its frame.
/// </summary>
[MemoryDiagnoser]
public class FanoutBenchmarks
{
    [Params(1, 10, 100)] public int Sockets;

    readonly SessionRegistry _registry = new();
    readonly CountingSink _sink = new();
    readonly List<GuestConnection> _connections = [];
    ConversationFanout _fanout = null!;
    Conversation _live = null!;
    ImmutableArray<ConversationEvent> _events;

    [GlobalSetup]
    public void Setup()
    {
        var hub = new LocalSessionHub(_registry, receipts: null!, TimeProvider.System);   // receipts: only ends record them
        _fanout = new ConversationFanout(new InProcessBackplane(hub), new InProcessChangeBroadcast(new NoSubscribers()),
            new ParleyOptions(), NullLoggerFactory.Instance);
        _live = Samples.Live();
        _events = [new MessageAdded(Samples.Committed(_live), "t-42")];
        for (var i = 0; i < Sockets; i++)
        {
            var socket = WebSocket.CreateFromStream(_sink, isServer: true, subProtocol: null, keepAliveInterval: Timeout.InfiniteTimeSpan);
            var connection = new GuestConnection(socket, maxQueuedFrames: 64, sendTimeout: TimeSpan.FromSeconds(10));
            _registry.Attach(_live.GuestSessionId, connection);
            _connections.Add(connection);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var c in _connections) c.Abort();
    }

    [Benchmark]
    public void MessageToAllSockets()
    {
        _sink.Expect(Sockets);
        _fanout.PublishAsync(_live, _events, started: false);
        _sink.Wait();
    }

    /// <summary>No notification channel subscribed: the fan-out's notification leg decides there is nobody to tell.</summary>
    sealed class NoSubscribers : ILocalNotifications
    {
        public bool HasSubscribers => false;
        public void Publish(ConversationChange change) { }
        public void ChannelChanged(string channelId) { }
        public void ReceiptChanged(string terminationId) { }
    }

    /// <summary>Where every socket writes: drops the bytes, counts the frames (one write each), wakes the benchmark at the last.</summary>
    sealed class CountingSink : Stream
    {
        readonly ManualResetEventSlim _done = new();
        int _left;

        public void Expect(int frames) { _done.Reset(); Volatile.Write(ref _left, frames); }
        public void Wait() => _done.Wait();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            if (Interlocked.Decrement(ref _left) == 0) _done.Set();
            return ValueTask.CompletedTask;
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().Wait();
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken ct) => Task.CompletedTask;
        public override int Read(byte[] buffer, int offset, int count) => 0;
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    }
}
