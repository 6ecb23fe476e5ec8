using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Parley.E2E.Tests;

/// <summary>
/// A webhook receiver below HTTP: a TCP listener on loopback that records every byte each connection sent. It answers
/// the first request with <c>Connection: close</c> and keeps reading until the client closes, so bytes smuggled after
/// the first request (a second request inside one delivery) are recorded too, not hidden by an HTTP parser.
/// </summary>
public sealed class RawHttpReceiver : IAsyncDisposable
{
    /// <summary>One connection: all its bytes, and where the first request's headers end.</summary>
    public sealed record Connection(byte[] Bytes, int HeaderEnd, int ContentLength)
    {
        public string Text => Encoding.Latin1.GetString(Bytes);
        public string[] HeaderLines => Encoding.Latin1.GetString(Bytes, 0, HeaderEnd).Split("\r\n");
        public byte[] Body => Bytes[(HeaderEnd + 4)..Math.Min(Bytes.Length, HeaderEnd + 4 + ContentLength)];
        /// <summary>Bytes after the first request's body: none, unless something was smuggled.</summary>
        public int Trailing => Bytes.Length - (HeaderEnd + 4 + ContentLength);
    }

    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly Channel<Connection> _connections = Channel.CreateUnbounded<Connection>();
    readonly CancellationTokenSource _stop = new();
    Task _accepting = Task.CompletedTask;
    public int Count;

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string Url => $"http://127.0.0.1:{Port}/webhook";

    public static RawHttpReceiver Start()
    {
        var receiver = new RawHttpReceiver();
        receiver._listener.Start();
        receiver._accepting = receiver.AcceptAsync();
        return receiver;
    }

    async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = ServeAsync(client);
            }
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
    }

    async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(TimeSpan.FromSeconds(15));
        var stream = client.GetStream();
        var all = new MemoryStream();
        var buffer = new byte[8192];
        int headerEnd = -1, contentLength = 0;
        var answered = false;
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer, deadline.Token);
                if (n == 0) break;   // the client closed: everything it sent is recorded
                all.Write(buffer, 0, n);
                if (answered) continue;
                var text = Encoding.Latin1.GetString(all.GetBuffer(), 0, (int)all.Length);
                headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headerEnd < 0) continue;
                var lengthLine = text[..headerEnd].Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                contentLength = lengthLine is null ? 0 : int.Parse(lengthLine["Content-Length:".Length..].Trim());
                if (all.Length < headerEnd + 4 + contentLength) continue;
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), deadline.Token);
                answered = true;
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        Interlocked.Increment(ref Count);
        _connections.Writer.TryWrite(new Connection(all.ToArray(), headerEnd, contentLength));
    }

    public async Task<Connection> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        try { return await _connections.Reader.ReadAsync(cts.Token); }
        catch (OperationCanceledException) { throw new TimeoutException("No connection reached the raw receiver in time."); }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
    }
}
