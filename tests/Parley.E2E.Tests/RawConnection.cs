using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Parley.E2E.Tests;

/// <summary>
/// A TCP connection from a chosen loopback address, driven byte by byte: idle connections, hand-made WebSocket upgrades
/// and frames (a client that never answers pings, or announces a frame it never sends), raw HTTP requests.
/// </summary>
public sealed class RawConnection : IAsyncDisposable
{
    readonly Socket _socket;
    readonly byte[] _buffer = new byte[64 * 1024];
    int _start, _end;

    RawConnection(Socket socket) => _socket = socket;

    public static IPAddress Loopback(int last) => new([127, 0, 0, (byte)last]);

    /// <summary>An HTTP handler whose connections leave from <paramref name="from"/>.</summary>
    public static SocketsHttpHandler BoundHandler(IPAddress from) => new()
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            socket.Bind(new IPEndPoint(from, 0));
            await socket.ConnectAsync(context.DnsEndPoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    };

    public static async Task<RawConnection> ConnectAsync(IPAddress from, Uri server)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(IPAddress.Parse(server.Host), server.Port).WaitAsync(TimeSpan.FromSeconds(10));
        return new RawConnection(socket);
    }

    /// <summary>A guest WebSocket opened by hand; afterwards nothing is sent unless the test sends it.</summary>
    public static async Task<RawConnection> UpgradeAsync(IPAddress from, Uri server)
    {
        var (connection, head) = await TryUpgradeAsync(from, server);
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal)) throw new InvalidOperationException($"Upgrade refused: {head}");
        return connection;
    }

    /// <summary>An upgrade request, answered or refused: the connection (left open) and the answer's head ("" if none came).</summary>
    public static async Task<(RawConnection Connection, string Head)> TryUpgradeAsync(IPAddress from, Uri server)
    {
        var connection = await ConnectAsync(from, server);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        await connection.SendAsync(Encoding.ASCII.GetBytes(
            $"GET /v1?deploymentId={ParleyServer.DeploymentId} HTTP/1.1\r\nHost: {server.Authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
            $"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"));
        try { return (connection, await connection.ReadHeadAsync(TimeSpan.FromSeconds(10))); }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException) { return (connection, ""); }
    }

    public Task SendAsync(ReadOnlyMemory<byte> bytes) => _socket.SendAsync(bytes).AsTask();

    /// <summary>A masked client frame (RFC 6455 §5.2) announcing <paramref name="announced"/> bytes, carrying <paramref name="payload"/>.</summary>
    public Task SendFrameAsync(int opcode, ReadOnlySpan<byte> payload, long? announced = null, bool fin = true)
    {
        var length = announced ?? payload.Length;
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode) };
        if (length < 126) frame.Add((byte)(0x80 | length));
        else if (length <= ushort.MaxValue) { frame.Add(0x80 | 126); frame.Add((byte)(length >> 8)); frame.Add((byte)length); }
        else
        {
            frame.Add(0x80 | 127);
            var ext = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(ext, length);
            frame.AddRange(ext);
        }
        var mask = RandomNumberGenerator.GetBytes(4);
        frame.AddRange(mask);
        for (var i = 0; i < payload.Length; i++) frame.Add((byte)(payload[i] ^ mask[i % 4]));
        return SendAsync(frame.ToArray());
    }

    public Task SendTextAsync(string json) => SendFrameAsync(1, Encoding.UTF8.GetBytes(json));

    /// <summary>The next server frame (opcode, payload); null when the server closed the connection.</summary>
    public async Task<(int Opcode, byte[] Payload)?> ReadFrameAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        if (!await FillAsync(2, cts.Token)) return null;
        var opcode = _buffer[_start] & 0x0F;
        long length = _buffer[_start + 1] & 0x7F;
        var headerLength = length == 126 ? 4 : length == 127 ? 10 : 2;
        if (!await FillAsync(headerLength, cts.Token)) return null;
        if (length == 126) length = BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2));
        else if (length == 127) length = BinaryPrimitives.ReadInt64BigEndian(_buffer.AsSpan(_start + 2));
        if (!await FillAsync(headerLength + (int)length, cts.Token)) return null;
        var payload = _buffer.AsSpan(_start + headerLength, (int)length).ToArray();
        _start += headerLength + (int)length;
        return (opcode, payload);
    }

    /// <summary>Frames until the server's close frame; its status, or null when the connection ended without one.</summary>
    public async Task<(int? Status, List<string> Texts)> ReadUntilCloseAsync(TimeSpan timeout)
    {
        var texts = new List<string>();
        var deadline = DateTime.UtcNow + timeout;
        while (await ReadFrameAsync(deadline - DateTime.UtcNow) is { } frame)
        {
            if (frame.Opcode == 8) return (frame.Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(frame.Payload) : 1005, texts);
            if (frame.Opcode == 1) texts.Add(Encoding.UTF8.GetString(frame.Payload));
        }
        return (null, texts);
    }

    /// <summary>Completes when the server has closed the connection (end of stream or reset); what arrives first is read and ignored.</summary>
    public async Task WaitForServerCloseAsync(CancellationToken ct)
    {
        var sink = new byte[4096];
        try
        {
            while (await _socket.ReceiveAsync(sink, SocketFlags.None, ct) > 0) { }
        }
        catch (SocketException) { /* reset: closed as well */ }
    }

    /// <summary>A whole HTTP/1.1 answer to a request sent with Connection: close.</summary>
    public async Task<string> RequestAsync(string method, string path, TimeSpan timeout)
    {
        await SendAsync(Encoding.ASCII.GetBytes($"{method} {path} HTTP/1.1\r\nHost: parley\r\nConnection: close\r\n\r\n"));
        using var cts = new CancellationTokenSource(timeout);
        var answer = new MemoryStream();
        var chunk = new byte[4096];
        int n;
        while ((n = await _socket.ReceiveAsync(chunk, SocketFlags.None, cts.Token)) > 0) answer.Write(chunk, 0, n);
        return Encoding.UTF8.GetString(answer.ToArray());
    }

    /// <summary>Whether GET /health from <paramref name="from"/> is answered 200; false when the connection is refused or closed.</summary>
    public static async Task<bool> HealthAnswersAsync(IPAddress from, Uri server)
    {
        try
        {
            await using var connection = await ConnectAsync(from, server);
            return (await connection.RequestAsync("GET", "/health", TimeSpan.FromSeconds(5))).StartsWith("HTTP/1.1 200", StringComparison.Ordinal);
        }
        catch (SocketException) { return false; }   // closed as it was opened, or reset
    }

    /// <summary>The head of the next HTTP answer (status line and headers), consumed; what follows stays for ReadFrameAsync.</summary>
    public async Task<string> ReadHeadAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (at >= 0)
            {
                var head = Encoding.ASCII.GetString(_buffer, _start, at);
                _start += at + 4;
                return head;
            }
            if (!await FillAsync(_end - _start + 1, cts.Token)) throw new InvalidOperationException("The server closed the connection during the upgrade.");
        }
    }

    /// <summary>The next <paramref name="count"/> bytes (an answer's body), consumed.</summary>
    public async Task<byte[]> ReadBytesAsync(int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        if (!await FillAsync(count, cts.Token)) throw new InvalidOperationException("The server closed the connection.");
        var bytes = _buffer.AsSpan(_start, count).ToArray();
        _start += count;
        return bytes;
    }

    async Task<bool> FillAsync(int count, CancellationToken ct)
    {
        if (_end - _start >= count) return true;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        while (_end < count)
        {
            int n;
            try { n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct); }
            catch (SocketException) { return false; }
            if (n == 0) return false;
            _end += n;
        }
        return true;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
