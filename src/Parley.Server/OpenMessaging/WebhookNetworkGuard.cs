using System.Net;
using System.Net.Sockets;

namespace Parley.Server.OpenMessaging;

/// <summary>Thrown while connecting when a webhook's host is, or resolves to, an address Parley does not send to.</summary>
public sealed class WebhookTargetRefusedException(string reason) : Exception(reason);

/// <summary>
/// Keeps webhooks off internal networks (server-side request forgery): an integration must not be able to make Parley
/// POST to its own loopback port, to the cloud's metadata service or to anything else inside the network, nor read
/// what those answered through the deliveries API. The address is checked when connecting — resolve, check every
/// address, connect only to a checked one — so a name that resolved to a public address when the integration was saved
/// and to 127.0.0.1 now (DNS rebinding) is refused too. <c>Parley:Webhooks:AllowPrivateNetworks=true</c> turns it off.
/// </summary>
public static class WebhookNetworkGuard
{
    /// <summary>The HTTP handler the relay sends with: no redirects, no proxy, and (unless allowed) the address check.</summary>
    public static SocketsHttpHandler CreateHandler(bool allowPrivateNetworks)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            // A proxy would be the address connected to, so the check would judge the proxy and not the target.
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
        if (!allowPrivateNetworks) handler.ConnectCallback = ConnectToPublicAddressAsync;
        return handler;
    }

    static async ValueTask<Stream> ConnectToPublicAddressAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host.Trim('[', ']');
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        if (addresses.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
        // Every address must be public: connecting to "the first public one" would still let a name that also resolves
        // to an internal address choose, through the order of its records, where Parley connects.
        foreach (var address in addresses)
            if (ForbiddenRange(address) is { } range)
                throw new WebhookTargetRefusedException(
                    $"the webhook's host {Bounded(host)} resolves to a {range} address, and Parley sends webhooks to public addresses only");
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw last!;
    }

    /// <summary>
    /// What can be known when the integration is saved: a host that is an address (in any spelling the URL parser
    /// accepts, such as <c>0x7f.1</c>) in a refused range, or a name that always means this machine. Null when fine
    /// (a name is judged again, on what it resolves to, every time Parley connects).
    /// </summary>
    public static string? ProblemWithUrl(Uri url)
    {
        var host = url.IdnHost.TrimEnd('.');
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address))
            return ForbiddenRange(address) is { } range ? $"its host is a {range} address" : null;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
            return "its host is localhost (a loopback address)";
        if (host.Equals("metadata.google.internal", StringComparison.OrdinalIgnoreCase))
            return "its host is a cloud metadata service";
        return null;
    }

    /// <summary>Which refused range the address is in ("loopback", "private", …), or null for a public address.</summary>
    public static string? ForbiddenRange(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) return ForbiddenV4(address.MapToIPv4());
        return address.AddressFamily switch
        {
            AddressFamily.InterNetwork => ForbiddenV4(address),
            AddressFamily.InterNetworkV6 => ForbiddenV6(address),
            _ => "non-IP",
        };
    }

    static readonly (uint Network, int Prefix, string Range)[] V4Ranges =
    [
        (0x00000000, 8, "unspecified (0.0.0.0/8)"),
        (0x0A000000, 8, "private (RFC 1918)"),
        (0x64400000, 10, "carrier-grade NAT (100.64.0.0/10)"),
        (0x7F000000, 8, "loopback"),
        (0xA9FE0000, 16, "link-local (169.254.0.0/16, where cloud metadata services answer)"),
        (0xAC100000, 12, "private (RFC 1918)"),
        (0xC0000000, 24, "reserved (192.0.0.0/24)"),
        (0xC0000200, 24, "reserved (documentation)"),
        (0xC0A80000, 16, "private (RFC 1918)"),
        (0xC6120000, 15, "reserved (benchmarking)"),
        (0xC6336400, 24, "reserved (documentation)"),
        (0xCB007100, 24, "reserved (documentation)"),
        (0xE0000000, 4, "multicast"),
        (0xF0000000, 4, "reserved (240.0.0.0/4, broadcast)"),
        (0xA83F8110, 32, "cloud metadata (Azure 168.63.129.16)"),
    ];

    static string? ForbiddenV4(IPAddress address)
    {
        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        var value = (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
        foreach (var (network, prefix, range) in V4Ranges)
            if ((value & (uint.MaxValue << (32 - prefix))) == network) return range;
        return null;
    }

    static string? ForbiddenV6(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        if (address.Equals(IPAddress.IPv6Any)) return "unspecified";
        if (address.Equals(IPAddress.IPv6Loopback)) return "loopback";
        if (b[..12].IndexOfAnyExcept((byte)0) < 0) return "reserved (IPv4-compatible IPv6)";
        if ((b[0] & 0xFE) == 0xFC) return "private (unique local, fc00::/7)";
        if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return "link-local (fe80::/10)";
        if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return "private (site-local, fec0::/10)";
        if (b[0] == 0xFF) return "multicast";
        // Translation prefixes carry an IPv4 address inside: judge that one.
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B)
            return b[4..12].IndexOfAnyExcept((byte)0) < 0 ? ForbiddenV4(new IPAddress(b[12..])) : "reserved (local-use NAT64)";
        if (b[0] == 0x20 && b[1] == 0x02) return ForbiddenV4(new IPAddress(b[2..6]));   // 6to4
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) return "reserved (documentation)";
        if (b[0] == 0x01 && b[1] == 0x00 && b[2..8].IndexOfAnyExcept((byte)0) < 0) return "reserved (discard-only, 100::/64)";
        return null;
    }

    static string Bounded(string host) => host.Length <= 100 ? host : host[..100] + "…";
}
