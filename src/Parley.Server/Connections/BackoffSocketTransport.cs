using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace Parley.Server.Connections;

/// <summary>
/// Kestrel's socket transport with one change: when accept() fails for lack of descriptors (EMFILE, ENFILE) or buffers,
/// the accept loop waits and tries again, backing off up to a second, while the connections already held are served.
/// Kestrel's own listener treats every accept error as "reset in the backlog" and retries at once: at the open-file
/// limit that is a busy loop (the pending connection stays in the backlog, so the listener stays readable and accept
/// fails again immediately), one exception per turn, which starves the process it runs in.
/// </summary>
public sealed class BackoffSocketTransport(IOptions<SocketTransportOptions> transportOptions, ILoggerFactory loggers)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Hosting);

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint or UnixDomainSocketEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var o = transportOptions.Value;
        Socket socket;
        try { socket = o.CreateBoundListenSocket(endpoint); }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // As Kestrel's own transport says it: Kestrel then names the address ("Failed to bind to address …: address already in use").
            throw new Microsoft.AspNetCore.Connections.AddressInUseException(e.Message, e);
        }
        socket.Listen(o.Backlog);
        var factory = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions
        {
            IOQueueCount = o.IOQueueCount,
            WaitForDataBeforeAllocatingBuffer = o.WaitForDataBeforeAllocatingBuffer,
            MaxReadBufferSize = o.MaxReadBufferSize,
            MaxWriteBufferSize = o.MaxWriteBufferSize,
            UnsafePreferInlineScheduling = o.UnsafePreferInlineScheduling,
        }, loggers.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"));
        return ValueTask.FromResult<IConnectionListener>(new Listener(socket, factory, o.NoDelay, _log));
    }

    sealed class Listener(Socket socket, SocketConnectionContextFactory factory, bool noDelay, ILogger log) : IConnectionListener
    {
        static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(10), MaxBackoff = TimeSpan.FromSeconds(1);
        long _lastLogTicks = -60_000;
        int _failures;

        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            var backoff = FirstBackoff;
            while (true)
            {
                try
                {
                    var accepted = await socket.AcceptAsync(cancellationToken);
                    if (accepted.LocalEndPoint is IPEndPoint) accepted.NoDelay = noDelay;
                    if (_failures > 0)
                    {
                        log.AcceptRecovered(_failures);
                        _failures = 0;
                    }
                    return factory.Create(accepted);
                }
                catch (ObjectDisposedException) { return null; }   // unbound: the server is stopping
                catch (OperationCanceledException) { return null; }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted) { return null; }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    // Out of descriptors: held connections go on; new ones wait in the backlog until one is freed.
                    _failures++;
                    if (Environment.TickCount64 - _lastLogTicks >= 10_000)
                    {
                        _lastLogTicks = Environment.TickCount64;
                        log.AcceptFailing(e.SocketErrorCode);
                    }
                    try { await Task.Delay(backoff, cancellationToken); }
                    catch (OperationCanceledException) { return null; }
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                }
                catch (SocketException)
                {
                    // reset while it waited in the backlog: take the next one
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return default;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            factory.Dispose();
            return default;
        }
    }
}
