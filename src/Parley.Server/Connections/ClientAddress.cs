using System.Net;

namespace Parley.Server.Connections;

/// <summary>The key per-client limits count by: an IPv4 address, or an IPv6 client's /64 (one subscriber's whole prefix).</summary>
public static class ClientAddress
{
    public static IPAddress Key(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) return address.MapToIPv4();
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) return address;
        // One host is given a whole /64 and may use any address in it: counting single addresses would not limit it.
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }
}
