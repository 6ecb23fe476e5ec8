using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Parley.Server.Connections;

/// <summary>
/// Counts every client connection for as long as it is open, plain HTTP and upgraded WebSockets alike, against the
/// process's share of the open-file limit (<see cref="ParleyOptions.MaxConnections"/>) and per client address
/// (<see cref="ParleyOptions.MaxConnectionsPerAddress"/>). It runs as Kestrel connection middleware, before any byte is
/// read. Over its address's limit a new connection is closed at once. When the process is full, a connection that has
/// been open a while without sending a single byte is closed to make room (as nginx reuses idle connections when it
/// runs out): idle sockets cannot starve callers that talk; only when none is idle is the new one closed.
/// </summary>
public sealed class ConnectionGate(ParleyOptions options, ILoggerFactory loggers)
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Refusals);
    /// <summary>How long a silent connection is left alone: a real client sends its request as soon as it connects.</summary>
    static readonly TimeSpan SilentGrace = TimeSpan.FromSeconds(1);

    readonly Dictionary<IPAddress, int> _perAddress = [];
    /// <summary>Open connections that have not sent a byte yet.</summary>
    readonly ConcurrentDictionary<ConnectionContext, byte> _silent = new();
    /// <summary>
    /// Connections in the order they arrived, with when: the oldest silent one is at the head once those that talked or
    /// left are trimmed off, so making room costs O(1), not a scan of every connection while a flood arrives.
    /// </summary>
    readonly Queue<(ConnectionContext Connection, long Since)> _arrivals = new();
    int _open;
    long _refusedTotal, _refusedAddress, _evicted, _lastLogTicks;

    /// <summary>
    /// Addresses the per-address limit does not apply to: the trusted reverse proxies (<c>Parley:Proxy:TrustedProxies</c>),
    /// each of which carries many clients. The process-wide budget still applies to them.
    /// </summary>
    public Func<IPAddress, bool> Exempt { get; set; } = options.TrustedProxies.Contains;

    /// <summary>Client connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    public ConnectionDelegate Wrap(ConnectionDelegate next) => async connection =>
    {
        // A trusted proxy is judged on its own address (not its /64), and carries no per-address count.
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address is { } remote && !Exempt(remote) ? ClientAddress.Key(remote) : null;
        if (!TryEnter(address, out var perAddress, out var reason))
        {
            Refused(reason);
            connection.Abort(new ConnectionAbortedException(reason));
            return;
        }
        _silent[connection] = 0;
        lock (_arrivals)
        {
            TrimArrivals();
            _arrivals.Enqueue((connection, Environment.TickCount64));
        }
        connection.Transport = new FirstByteWatch(connection.Transport, () => _silent.TryRemove(connection, out _));
        try
        {
            await next(connection);
        }
        finally
        {
            _silent.TryRemove(connection, out _);
            Leave(perAddress);
        }
    };

    /// <param name="perAddress">The address whose count this connection took (null: none, e.g. an exempt proxy).</param>
    bool TryEnter(IPAddress? address, out IPAddress? perAddress, out string reason)
    {
        reason = "";
        perAddress = null;
        if (address is not null)
        {
            lock (_perAddress)
            {
                _perAddress.TryGetValue(address, out var held);
                if (held >= options.MaxConnectionsPerAddress)
                {
                    Interlocked.Increment(ref _refusedAddress);
                    reason = $"a client address holds its maximum of {options.MaxConnectionsPerAddress} connections";
                    return false;
                }
                _perAddress[address] = held + 1;
                perAddress = address;
            }
        }
        if (Interlocked.Increment(ref _open) > options.MaxConnections && !EvictSilent())
        {
            Interlocked.Decrement(ref _open);
            Leave(perAddress, countedOpen: false);
            Interlocked.Increment(ref _refusedTotal);
            reason = $"the server holds its maximum of {options.MaxConnections} connections";
            return false;
        }
        return true;
    }

    /// <summary>
    /// Closes one connection that has sent nothing since well before now. Its place passes to the new connection; until
    /// the closed one is let go the count is one over, which the file reserve absorbs.
    /// </summary>
    bool EvictSilent()
    {
        ConnectionContext candidate;
        lock (_arrivals)
        {
            TrimArrivals();
            if (!_arrivals.TryPeek(out var oldest) || Environment.TickCount64 - oldest.Since < SilentGrace.TotalMilliseconds) return false;
            candidate = _arrivals.Dequeue().Connection;
            _silent.TryRemove(candidate, out _);
        }
        candidate.Abort(new ConnectionAbortedException("closed to make room: it sent nothing"));
        Interlocked.Increment(ref _evicted);
        Refused("the server is full; closing connections that have sent nothing");
        return true;
    }

    /// <summary>Drops arrivals at the head that have talked or gone (under the lock of <see cref="_arrivals"/>).</summary>
    void TrimArrivals()
    {
        while (_arrivals.TryPeek(out var head) && !_silent.ContainsKey(head.Connection)) _arrivals.Dequeue();
    }

    void Leave(IPAddress? address, bool countedOpen = true)
    {
        if (countedOpen) Interlocked.Decrement(ref _open);
        if (address is null) return;
        lock (_perAddress)
        {
            if (!_perAddress.TryGetValue(address, out var held)) return;
            if (held <= 1) _perAddress.Remove(address);
            else _perAddress[address] = held - 1;
        }
    }

    /// <summary>Refusals are logged at most every ten seconds, as counts: a flood must not become a flood of log lines.</summary>
    void Refused(string reason)
    {
        var now = Environment.TickCount64;
        var last = Volatile.Read(ref _lastLogTicks);
        if (now - last < 10_000 || Interlocked.CompareExchange(ref _lastLogTicks, now, last) != last) return;
        _log.ConnectionsRefused(reason, Volatile.Read(ref _refusedTotal), Volatile.Read(ref _refusedAddress), Volatile.Read(ref _evicted));
    }

    /// <summary>The connection's pipe, unchanged, except that the first bytes received are reported once.</summary>
    sealed class FirstByteWatch(IDuplexPipe inner, Action firstBytes) : IDuplexPipe
    {
        public PipeReader Input { get; } = new Reader(inner.Input, firstBytes);
        public PipeWriter Output => inner.Output;

        sealed class Reader(PipeReader inner, Action firstBytes) : PipeReader
        {
            Action? _firstBytes = firstBytes;

            ReadResult Seen(ReadResult result)
            {
                if (_firstBytes is { } report && !result.Buffer.IsEmpty)
                {
                    _firstBytes = null;
                    report();
                }
                return result;
            }

            // Once the first bytes were seen, reads go straight through: nothing is added to a busy socket's path.
            public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
                _firstBytes is null ? inner.ReadAsync(cancellationToken) : WatchAsync(cancellationToken);

            async ValueTask<ReadResult> WatchAsync(CancellationToken cancellationToken) => Seen(await inner.ReadAsync(cancellationToken));

            public override bool TryRead(out ReadResult result)
            {
                if (!inner.TryRead(out result)) return false;
                Seen(result);
                return true;
            }

            public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);
            public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);
            public override void CancelPendingRead() => inner.CancelPendingRead();
            public override void Complete(Exception? exception = null) => inner.Complete(exception);
            public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        }
    }
}
