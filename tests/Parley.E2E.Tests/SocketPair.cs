using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;

namespace Parley.E2E.Tests;

/// <summary>
/// Both ends of a WebSocket over a loopback TCP connection, for handing a server-side socket straight to a component; it
/// owns the TCP clients (one dropped unreferenced closes its socket when collected).
/// </summary>
public sealed class SocketPair(TcpClient serverEnd, TcpClient clientEnd) : IDisposable
{
    public WebSocket Server { get; } = WebSocket.CreateFromStream(serverEnd.GetStream(), new WebSocketCreationOptions { IsServer = true });
    public WebSocket Client { get; } = WebSocket.CreateFromStream(clientEnd.GetStream(), new WebSocketCreationOptions { IsServer = false });

    /// <param name="smallBuffers">Kernel buffers of a few KiB on both ends: a client that does not read stalls the server's sends at once.</param>
    public static async Task<SocketPair> ConnectAsync(bool smallBuffers = false)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        if (smallBuffers) listener.Server.ReceiveBufferSize = 4096;
        listener.Start();
        var client = new TcpClient();
        if (smallBuffers) client.ReceiveBufferSize = 1024;
        var accepted = listener.AcceptTcpClientAsync();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var server = await accepted;
        if (smallBuffers) server.SendBufferSize = 4096;
        return new SocketPair(server, client);
    }

    public void Dispose()
    {
        Server.Dispose();
        Client.Dispose();
        serverEnd.Dispose();
        clientEnd.Dispose();
    }
}
