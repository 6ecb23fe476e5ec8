using System.Net;

namespace Parley.Server;

/// <summary>
/// Where Parley is configured to listen, read the way Kestrel reads it (<c>--urls</c>, ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS /
/// HTTPS_PORTS, <c>Kestrel:Endpoints:*:Url</c>), so that the start can be refused before a socket is bound.
/// </summary>
public static class ListenAddresses
{
    /// <summary>Every configured listen URL; Kestrel's default (http://localhost:5000) when none is.</summary>
    public static IReadOnlyList<string> Configured(IConfiguration config)
    {
        var urls = new List<string>();
        static IEnumerable<string> Split(string? v) => (v ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        urls.AddRange(Split(config["urls"]));
        // ASPNETCORE_HTTP_PORTS / HTTPS_PORTS (the container images set 8080) bind every interface.
        urls.AddRange(Split(config["http_ports"]).Select(p => $"http://*:{p}"));
        urls.AddRange(Split(config["https_ports"]).Select(p => $"https://*:{p}"));
        urls.AddRange(config.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>());
        return urls.Count > 0 ? urls : ["http://localhost:5000"];
    }

    /// <summary>
    /// Refuses the start, in one line, when a configured listen address is not one Kestrel can read (a missing scheme, a
    /// port that is not a number): Kestrel would throw it later, with a stack trace.
    /// </summary>
    public static void RefuseMalformed(IConfiguration config)
    {
        foreach (var url in Configured(config))
        {
            string? problem;
            try
            {
                var address = BindingAddress.Parse(url);
                problem = address.IsNamedPipe || address.IsUnixPipe ? null
                    : address.Scheme is not ("http" or "https") ? "the scheme must be http or https"
                    // BindingAddress takes "127.0.0.1:port" as a host; Kestrel then fails on it.
                    : address.Host is "*" or "+" || Uri.CheckHostName(address.Host.Trim('[', ']')) != UriHostNameType.Unknown ? null
                    : $"'{ParleyOptions.Clip(address.Host, 60)}' is not a host name or address, or its port is not a number";
            }
            catch (FormatException e) { problem = e.Message.Split('\n')[0].Trim(); }
            if (problem is not null)
                throw new StartupRefused($"'{ParleyOptions.Clip(url)}' is not a listen address ({ParleyOptions.Clip(problem, 120)}): give one such as " +
                    "http://localhost:5000 or http://0.0.0.0:8080 (--urls, --port, ASPNETCORE_URLS).");
        }
    }

    /// <summary>
    /// The first URL that listens beyond this machine: any address but loopback, the wildcards (*, +, 0.0.0.0, [::]) and
    /// host names other than localhost (Kestrel binds those on every interface). Null when all are loopback or Unix sockets.
    /// </summary>
    public static string? FirstBeyondLoopback(IEnumerable<string> urls)
    {
        foreach (var url in urls)
        {
            BindingAddress address;
            try { address = BindingAddress.Parse(url); }
            catch (FormatException) { return url; }   // unreadable: Kestrel will refuse it; do not call it local
            if (address.IsNamedPipe || address.IsUnixPipe) continue;
            var host = address.Host.Trim('[', ']');
            if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) continue;
            if (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip)) continue;
            return url;
        }
        return null;
    }
}
