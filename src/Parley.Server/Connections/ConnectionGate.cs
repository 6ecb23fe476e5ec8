using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Parley.Server.Connections;

/// <summary>
/// Counts every client connection for as long as it is open, plain HTTP and upgraded WebSockets alike, and closes a new
/// one at once when the process holds <see cref="ParleyOptions.MaxConnections"/> (its share of the open-file limit) or
/// its client address holds <see cref="ParleyOptions.MaxConnectionsPerAddress"/>. It runs as Kestrel connection
/// middleware, before any byte is read, so a refused connection costs one accept and one close.
/// </summary>
public sealed class ConnectionGate(ParleyOptions options, ILogger<ConnectionGate> log)
{
    readonly Dictionary<IPAddress, int> _perAddress = [];
    int _open;
    long _refusedTotal, _refusedAddress, _lastLogTicks;

    /// <summary>
    /// Addresses the per-address limit does not apply to (a trusted reverse proxy carries many clients). None by default;
    /// the process-wide budget still applies to them.
    /// </summary>
    public Func<IPAddress, bool> Exempt { get; set; } = static _ => false;

    /// <summary>Client connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    public ConnectionDelegate Wrap(ConnectionDelegate next) => async connection =>
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address is { } remote ? ClientAddress.Key(remote) : null;
        if (!TryEnter(address, out var perAddress, out var reason))
        {
            Refused(reason);
            connection.Abort(new ConnectionAbortedException(reason));
            return;
        }
        try
        {
            await next(connection);
        }
        finally
        {
            Leave(perAddress);
        }
    };

    /// <param name="perAddress">The address whose count this connection took (null: none, e.g. an exempt proxy).</param>
    bool TryEnter(IPAddress? address, out IPAddress? perAddress, out string reason)
    {
        reason = "";
        perAddress = null;
        if (Interlocked.Increment(ref _open) > options.MaxConnections)
        {
            Interlocked.Decrement(ref _open);
            Interlocked.Increment(ref _refusedTotal);
            reason = $"the server holds its maximum of {options.MaxConnections} connections";
            return false;
        }
        if (address is null || Exempt(address)) return true;
        lock (_perAddress)
        {
            _perAddress.TryGetValue(address, out var held);
            if (held < options.MaxConnectionsPerAddress)
            {
                _perAddress[address] = held + 1;
                perAddress = address;
                return true;
            }
        }
        Interlocked.Decrement(ref _open);
        Interlocked.Increment(ref _refusedAddress);
        reason = $"the client address holds its maximum of {options.MaxConnectionsPerAddress} connections";
        return false;
    }

    void Leave(IPAddress? address)
    {
        Interlocked.Decrement(ref _open);
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
        log.LogWarning("Refusing connections: {Reason}. Refused so far: {Total} at the process limit, {PerAddress} at the per-address limit",
            reason, Volatile.Read(ref _refusedTotal), Volatile.Read(ref _refusedAddress));
    }
}
