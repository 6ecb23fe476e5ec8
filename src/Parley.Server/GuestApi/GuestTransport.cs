using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Parley.Core;

namespace Parley.Server.GuestApi;

/// <summary>
/// Takes the Guest API's WebSocket upgrade below Kestrel's HTTP layer (docs/guest-transport.md), so an open guest socket
/// keeps no HTTP connection, request, headers or features alive: only the transport's pipes and the WebSocket. It runs as
/// connection middleware and looks at a new connection's first request without consuming it. Only a valid upgrade
/// (<c>GET /v1?… HTTP/1.1</c> with Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version 13 and a valid key)
/// that the Guest API would accept (origin allowed, a place free) is answered here, with 101; everything else — other
/// paths and methods, a plain GET /v1, a malformed or refused upgrade, TLS, HTTP/2 — is handed to Kestrel untouched and
/// answered by the HTTP path exactly as before, refusals included (400, 403, 503 with Retry-After).
/// </summary>
public sealed class GuestTransport(GuestSocketEndpoint guest, SessionRegistry registry, IDirectoryStore directory, ParleyOptions options,
    TrustedProxies proxies, IHostEnvironment environment, ILoggerFactory loggers)
{
    /// <summary>Kestrel's default limit on a request's header block (MaxRequestHeadersTotalSize, 32 KiB); past it Kestrel answers.</summary>
    const int MaxHeadBytes = 32 * 1024;
    static readonly byte[] Prefix = "GET /v1"u8.ToArray();
    static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    readonly ILogger _access = loggers.CreateLogger(ParleyLog.Access);

    /// <summary>Whether an access-log line is written when a socket taken here closes, as the HTTP path's access log does.</summary>
    readonly bool _accessLog = options.AccessLogEnabled ?? environment.IsDevelopment();

    /// <summary>Guest sockets taken below HTTP so far (diagnostics and tests).</summary>
    public long Taken => Interlocked.Read(ref _taken);
    long _taken;

    public ConnectionDelegate Wrap(ConnectionDelegate next) => connection => HandleAsync(connection, next);

    /// <summary>One async method for the whole connection (its handshake and its socket): one state machine held per idle socket, not three.</summary>
    async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        Upgrade? upgrade;
        try
        {
            upgrade = await ReadUpgradeAsync(connection, connection.Transport.Input);
        }
        catch (OperationCanceledException) when (!connection.ConnectionClosed.IsCancellationRequested)
        {
            // The request's headers did not arrive within RequestHeadersTimeout: a slowloris is cut here as Kestrel cuts it.
            connection.Abort(new ConnectionAbortedException("request headers timed out"));
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
        {
            return;   // gone before it said anything useful
        }
        if (upgrade is null)
        {
            await next(connection);
            return;
        }

        var openedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _taken);
        // Only what the socket's life needs is kept; the access log's path only when there is an access log.
        var (deploymentId, origin, client) = (upgrade.DeploymentId, upgrade.Origin, upgrade.Client);
        var target = _accessLog ? upgrade.Target : null;
        var response = SwitchingProtocols(upgrade.Key);
        upgrade = null;
        var guard = new FrameSizeGuard(options.MaxFrameBytes);
        var socket = WebSocket.CreateFromStream(new ConnectionStream(connection, guard), new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = options.WebSocketPingInterval,
            KeepAliveTimeout = options.WebSocketPongTimeout,
        });
        try
        {
            var flushed = await connection.Transport.Output.WriteAsync(response, connection.ConnectionClosed);
            response = null;
            if (!flushed.IsCanceled && !flushed.IsCompleted)
                await guest.ServeAsync(socket, deploymentId, origin, client, guard, connection.ConnectionClosed);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
        {
            // gone during the answer
        }
        finally
        {
            registry.Closed();
            // Aborted (a guest that does not read, or never answered the close): cut the connection, its unsent bytes with it.
            // Otherwise the close frame is written and Kestrel ends the connection gracefully once this returns, as it does
            // for an upgraded request whose handler returns.
            if (socket.State == WebSocketState.Aborted) connection.Abort(new ConnectionAbortedException("guest socket aborted"));
            socket.Dispose();
            if (target is not null && _access.IsEnabled(LogLevel.Information))
            {
                var query = target.IndexOf('?');
                _access.WebSocketClosed("GET", Parley.Server.AccessLog.SafePath(query < 0 ? target : target[..query], query < 0 ? null : target[query..]),
                    StatusCodes.Status101SwitchingProtocols, Math.Round(System.Diagnostics.Stopwatch.GetElapsedTime(openedAt).TotalMilliseconds, 2),
                    client?.ToString() ?? "-");
            }
        }
    }

    /// <summary>The 101 answer (RFC 6455 §4.2.2): no subprotocol and no extension is chosen, as the HTTP path's upgrade chooses none.</summary>
    static byte[] SwitchingProtocols(string key)
    {
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        return Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    }

    sealed record Upgrade(string Target, string Key, string Origin, string DeploymentId, IPAddress? Client);

    /// <summary>
    /// Reads until the first request's head is complete (or clearly not a guest upgrade). Returns the upgrade with the
    /// head consumed and a place taken; or null with nothing consumed, for Kestrel.
    /// </summary>
    async Task<Upgrade?> ReadUpgradeAsync(ConnectionContext connection, PipeReader input)
    {
        using var headersDeadline = new CancellationTokenSource(options.RequestHeadersTimeout);
        while (true)
        {
            var result = await input.ReadAsync(headersDeadline.Token);
            var buffer = result.Buffer;
            var head = MaybeGuest(buffer, out var end);
            if (head is false || (head is null && (result.IsCompleted || buffer.Length > MaxHeadBytes)))
            {
                input.AdvanceTo(buffer.Start);
                return null;
            }
            if (head is null)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }
            var upgrade = Parse(buffer.Slice(0, end), connection);
            // A refusal (origin, capacity) is answered by the HTTP path, in its exact form: only an accepted upgrade stays here.
            if (upgrade is null || await AcceptableAsync(upgrade, connection.ConnectionClosed) is not { } accepted)
            {
                input.AdvanceTo(buffer.Start);
                return null;
            }
            upgrade = accepted;
            input.AdvanceTo(buffer.GetPosition(end));   // bytes after the head are the guest's first frames: left in the pipe
            return upgrade;
        }
    }

    /// <summary>False: not a guest upgrade; null: not known yet (need more bytes); true: a whole head, <paramref name="end"/> bytes long.</summary>
    static bool? MaybeGuest(ReadOnlySequence<byte> buffer, out long end)
    {
        end = 0;
        var reader = new SequenceReader<byte>(buffer);
        var start = buffer.Length >= Prefix.Length + 1 ? Prefix.Length + 1 : (int)buffer.Length;
        Span<byte> first = stackalloc byte[Prefix.Length + 1];
        buffer.Slice(0, start).CopyTo(first);
        for (var i = 0; i < Math.Min(start, Prefix.Length); i++)
            if (first[i] != Prefix[i]) return false;
        if (start < Prefix.Length + 1) return null;
        if (first[Prefix.Length] is not ((byte)'?' or (byte)' ')) return false;   // /v1 exactly; /v1/… or /v1x is another path
        if (!reader.TryReadTo(out ReadOnlySequence<byte> _, HeadEnd, advancePastDelimiter: true)) return null;
        end = reader.Consumed;
        return true;
    }

    /// <summary>The head, when it is a valid RFC 6455 opening handshake for the Guest API; otherwise null (Kestrel answers it).</summary>
    Upgrade? Parse(ReadOnlySequence<byte> headBytes, ConnectionContext connection)
    {
        var head = Encoding.Latin1.GetString(headBytes);
        var lines = head.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[0] != "GET" || requestLine[2] != "HTTP/1.1") return null;
        var target = requestLine[1];
        if (!target.StartsWith("/v1", StringComparison.Ordinal) || (target.Length > 3 && target[3] != '?')) return null;
        string? upgrade = null, connectionHeader = null, version = null, key = null, origin = null, host = null;
        List<string>? forwardedFor = null;
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length == 0) continue;
            var colon = line.IndexOf(':');
            // obs-fold, a name with spaces, control characters: all Kestrel's to refuse.
            if (colon <= 0 || line[0] is ' ' or '\t' || line.AsSpan(0, colon).ContainsAny(' ', '\t') || line.AsSpan().IndexOfAnyInRange('\0', '\x08') >= 0)
                return null;
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t');
            switch (name.ToLowerInvariant())
            {
                case "upgrade": if (!Once(ref upgrade, value)) return null; break;
                case "connection": connectionHeader = connectionHeader is null ? value : connectionHeader + "," + value; break;
                case "sec-websocket-version": if (!Once(ref version, value)) return null; break;
                case "sec-websocket-key": if (!Once(ref key, value)) return null; break;
                case "origin": if (!Once(ref origin, value)) return null; break;
                case "host": if (!Once(ref host, value)) return null; break;
                case "content-length" when value != "0": return null;   // an upgrade carries no body
                case "transfer-encoding": return null;
                case "x-forwarded-for": (forwardedFor ??= []).Add(value); break;
            }
        }
        if (host is null || upgrade is null || connectionHeader is null || version != "13" || key is null) return null;
        if (!upgrade.Split(',').Any(t => t.Trim().Equals("websocket", StringComparison.OrdinalIgnoreCase))) return null;
        if (!connectionHeader.Split(',').Any(t => t.Trim().Equals("upgrade", StringComparison.OrdinalIgnoreCase))) return null;
        Span<byte> decoded = stackalloc byte[18];
        if (key.Length != 24 || !Convert.TryFromBase64String(key, decoded, out var length) || length != 16) return null;
        var query = target.Length > 3 ? target[3..] : "";
        var deploymentId = QueryValue(query, "deploymentId");
        if (deploymentId is null) return null;   // a value that does not decode: the HTTP path reads it as it always has
        var client = ClientOf(connection, forwardedFor);
        return new Upgrade(target, key, origin ?? "", deploymentId, client);
    }

    static bool Once(ref string? slot, string value)
    {
        if (slot is not null) return false;
        slot = value;
        return true;
    }

    /// <summary>The first value of <paramref name="name"/> in the query, decoded as ASP.NET decodes it; "" when absent, null when malformed.</summary>
    static string? QueryValue(string query, string name)
    {
        try
        {
            var parsed = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query);
            return parsed.TryGetValue(name, out var values) ? values.ToString() : "";
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The client's address as the forwarded-headers middleware would give it: the transport's, or, from a trusted proxy, the
    /// X-Forwarded-For entries walked back from the right while they name trusted proxies (Parley:Proxy:TrustedProxies).
    /// </summary>
    IPAddress? ClientOf(ConnectionContext connection, List<string>? forwardedFor)
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (address is null || proxies.IsEmpty || forwardedFor is null) return address;
        var entries = forwardedFor.SelectMany(v => v.Split(',')).Select(e => e.Trim()).ToArray();
        for (var i = entries.Length - 1; i >= 0 && proxies.Contains(address); i--)
        {
            if (IPEndPoint.TryParse(entries[i], out var endpoint)) address = endpoint.Address;
            else if (IPAddress.TryParse(entries[i], out var plain)) address = plain;
            else break;
        }
        return address;
    }

    /// <summary>
    /// The upgrade when the Guest API takes it: its origin is allowed and a place was free (then it is taken). Its
    /// deployment id is the directory's own string, so thousands of sockets of one deployment do not each keep a copy.
    /// </summary>
    async Task<Upgrade?> AcceptableAsync(Upgrade upgrade, CancellationToken ct)
    {
        try
        {
            if (upgrade.DeploymentId.Length > 0 && await directory.GetDeploymentAsync(upgrade.DeploymentId, ct) is { } d)
            {
                if (!d.AllowsOrigin(upgrade.Origin)) return null;
                if (d.Id == upgrade.DeploymentId) upgrade = upgrade with { DeploymentId = d.Id };
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return null;   // the store cannot say: the HTTP path asks again and answers as it does
        }
        return registry.TryOpen(options.MaxGuestSockets) ? upgrade : null;
    }

    /// <summary>
    /// The connection's pipes as the stream a WebSocket runs on. A zero-byte read waits for data without taking a buffer,
    /// so an idle guest holds none. Disposing (the WebSocket's abort) ends a pending read; the connection itself is
    /// ended by <see cref="ServeAsync"/>.
    /// </summary>
    sealed class ConnectionStream(ConnectionContext connection, FrameSizeGuard guard) : DuplexStream
    {
        readonly PipeReader _input = connection.Transport.Input;
        readonly PipeWriter _output = connection.Transport.Output;
        volatile bool _disposed;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            while (true)
            {
                var result = await _input.ReadAsync(cancellationToken);
                var data = result.Buffer;
                if (result.IsCanceled || _disposed)
                {
                    _input.AdvanceTo(data.Start);
                    throw new OperationCanceledException("the guest socket was aborted");
                }
                if (guard.Tripped && !result.IsCompleted)
                {
                    // Past the frame-size cap nothing more is read from the guest: wait, unconsumed, until the socket ends.
                    _input.AdvanceTo(data.Start, data.End);
                    continue;
                }
                if (buffer.Length == 0 || data.IsEmpty || guard.Tripped)
                {
                    _input.AdvanceTo(data.Start);   // a zero-byte read consumes nothing; an empty completed read is the end
                    return 0;
                }
                var count = (int)Math.Min(data.Length, buffer.Length);
                data.Slice(0, count).CopyTo(buffer.Span);
                // The frame headers are watched as they pass; an oversized message's header and what follows stay unread.
                if (guard.Inspect(buffer.Span[..count]) is >= 0 and var before) count = before;
                _input.AdvanceTo(data.GetPosition(count));
                if (count > 0) return count;   // 0 would read as the end of the stream
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var result = await _output.WriteAsync(buffer, cancellationToken);
            if (result.IsCanceled) throw new OperationCanceledException("the write was cancelled");
            if (result.IsCompleted) throw new IOException("the guest's connection is closed");
        }

        public override async Task FlushAsync(CancellationToken cancellationToken) => await _output.FlushAsync(cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() { }

        protected override void Dispose(bool disposing)
        {
            if (!_disposed)
            {
                _disposed = true;
                _input.CancelPendingRead();
            }
            base.Dispose(disposing);
        }
    }
}
