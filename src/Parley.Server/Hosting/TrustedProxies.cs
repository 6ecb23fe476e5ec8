using System.Net;

namespace Parley.Server;

/// <summary>
/// The reverse proxies whose forwarded headers Parley believes (<c>Parley:Proxy:TrustedProxies</c>: IP addresses and
/// CIDR networks). A connection limiter can ask <see cref="Contains"/> to exempt them: a proxy carries many clients.
/// </summary>
public sealed class TrustedProxies
{
    public static readonly TrustedProxies None = new([]);

    public IReadOnlyList<IPNetwork> Networks { get; }

    TrustedProxies(IReadOnlyList<IPNetwork> networks) => Networks = networks;

    public bool IsEmpty => Networks.Count == 0;

    /// <summary>Whether the address is one of the trusted proxies (an IPv4-mapped IPv6 address counts as its IPv4 form).</summary>
    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var n in Networks)
            if (n.Contains(address)) return true;
        return false;
    }

    /// <summary>Parses "10.0.0.5", "10.0.0.0/8", "2001:db8::/32"; anything else refuses the start, naming the entry.</summary>
    public static TrustedProxies Parse(IEnumerable<string> entries)
    {
        var networks = new List<IPNetwork>();
        foreach (var entry in entries)
        {
            if (IPAddress.TryParse(entry, out var address) && !entry.Contains('/'))
            {
                if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
                networks.Add(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            else if (IPNetwork.TryParse(entry, out var network)) networks.Add(network);
            else throw new StartupRefused(
                $"Parley:Proxy:TrustedProxies: '{ParleyOptions.Clip(entry)}' is neither an IP address nor a CIDR network (such as 10.0.0.0/8).");
        }
        return networks.Count == 0 ? None : new TrustedProxies(networks);
    }

    public override string ToString() => IsEmpty ? "(none)" : string.Join(", ", Networks);
}
