using System.Net;
using System.Net.Sockets;

namespace Parley.Storage.Tests;

/// <summary>
/// A TCP relay between a store and its PostgreSQL that a test can take down and bring back, and that can cut a connection
/// right after relaying the client's next write (before the answer comes back): engine failures on the test's own
/// connections, without touching the server other tests share.
/// </summary>
sealed class TcpFaultProxy : IAsyncDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly IPEndPoint _target;
    readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    readonly CancellationTokenSource _stop = new();
    volatile bool _down;
    TaskCompletionSource? _cutAfterNextWrite;

    public TcpFaultProxy(string host, int port)
    {
        _target = new IPEndPoint(Dns.GetHostAddresses(host).First(a => a.AddressFamily == AddressFamily.InterNetwork), port);
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Every open connection is dropped and new ones are closed at once, as a server that went away.</summary>
    public void Down()
    {
        _down = true;
        lock (_pairs)
        {
            foreach (var (client, server) in _pairs) { client.Close(); server.Close(); }
            _pairs.Clear();
        }
    }

    public void Up() => _down = false;

    /// <summary>The next chunk a client sends is relayed to the server, then that connection is cut before any answer returns.</summary>
    public Task CutAfterNextWrite()
    {
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _cutAfterNextWrite = cut;
        return cut.Task;
    }

    async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            if (_down) { client.Close(); continue; }
            var server = new TcpClient();
            try { await server.ConnectAsync(_target); }
            catch (SocketException) { client.Close(); server.Close(); continue; }
            lock (_pairs) _pairs.Add((client, server));
            _ = PumpAsync(client, server, fromClient: true);
            _ = PumpAsync(server, client, fromClient: false);
        }
    }

    async Task PumpAsync(TcpClient from, TcpClient to, bool fromClient)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            while (true)
            {
                var n = await input.ReadAsync(buffer, _stop.Token);
                if (n == 0) break;
                // Taken before the chunk is relayed, not after: the answer to a chunk relayed earlier may reach the client,
                // and the test arm the cut, before this thread returns from relaying it (seen once in CI: the cut fell on
                // the previous request's connection and the request meant to lose its answer went through).
                var cut = fromClient ? Interlocked.Exchange(ref _cutAfterNextWrite, null) : null;
                await output.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                if (cut is not null)
                {
                    // The server has the request and may well carry it out; the client's side is cut before any answer
                    // reaches it (the server's side closes when its answer finds the client gone). Marked cut first: the
                    // client fails as soon as the socket closes, and may look at the mark before this thread gets back.
                    cut.TrySetResult();
                    from.Close();
                    return;
                }
            }
        }
        catch (Exception) { /* either side went away */ }
        from.Close();
        to.Close();
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Down();
        return ValueTask.CompletedTask;
    }
}
