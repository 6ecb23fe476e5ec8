using Microsoft.AspNetCore.HttpOverrides;
using Parley.Server.Protocol;

namespace Parley.Server;

/// <summary>
/// What a deployment beyond localhost needs, in one place: HTTPS from Kestrel's certificate configuration, forwarded
/// headers from configured trusted proxies only, host filtering (AllowedHosts), one body limit for every endpoint, and
/// the refusal to serve the well-known demo secret on a public address. docs/production.md explains each.
/// </summary>
public static class ServerHosting
{
    /// <summary>Refuses the start when Parley would listen beyond loopback with the built-in demo secret.</summary>
    public static void RefuseDemoSecretBeyondLoopback(IConfiguration config, ParleyOptions options)
    {
        ListenAddresses.RefuseMalformed(config);   // first: an unreadable address is not "beyond loopback", it is wrong
        if (options.DemoClientSecret != ParleyOptions.DefaultClientSecret) return;
        if (ListenAddresses.FirstBeyondLoopback(ListenAddresses.Configured(config)) is not { } url) return;
        throw new StartupRefused(
            $"Parley listens on {ParleyOptions.Clip(url)}, beyond this machine, and its OAuth client still has the well-known demo secret: " +
            "set PARLEY_DEMO_CLIENT_SECRET (or Parley:Demo:ClientSecret) to a secret of your own, or listen on localhost only.");
    }

    public static void AddServerHosting(this WebApplicationBuilder builder, ParleyOptions options)
    {
        // The slim builder leaves HTTPS out: this reads Kestrel:Certificates:Default and Kestrel:Endpoints:*:Certificate.
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);

        builder.Services.AddSingleton(options.TrustedProxies);   // for connection limiters that exempt the proxies
        builder.Services.Configure<ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
            o.ForwardLimit = null;   // walk back through every trusted proxy in the chain, stop at the first other address
        });
        // After every other configuration (ASPNETCORE_FORWARDEDHEADERS_ENABLED would trust anybody): only the configured proxies.
        builder.Services.PostConfigure<ForwardedHeadersOptions>(o =>
        {
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var network in options.TrustedProxies.Networks) o.KnownIPNetworks.Add(network);
            if (AllowedHosts(builder.Configuration) is { } hosts) o.AllowedHosts = hosts;
        });
        if (AllowedHosts(builder.Configuration) is { } allowed)
            builder.Services.AddHostFiltering(o => { o.AllowedHosts = allowed; o.IncludeFailureMessage = false; });
    }

    /// <summary>The pipeline's first steps: forwarded headers (trusted proxies only), host filtering, the body limit.</summary>
    public static void UseServerHosting(this WebApplication app, ParleyOptions options)
    {
        if (!options.TrustedProxies.IsEmpty) app.UseForwardedHeaders();
        if (AllowedHosts(app.Configuration) is not null) app.UseHostFiltering();
        var limit = options.MaxRequestBodyBytes;
        app.Use((http, next) =>
        {
            // A declared length over the limit is answered at once, unread; a chunked body meets the same limit while read.
            if (http.Request.ContentLength > limit) return TooLarge(http, limit);
            return next(http);
        });
    }

    /// <summary>413 in the form of the surface asked: RFC 6749's for the token endpoint, the platform's everywhere else.</summary>
    public static Task TooLarge(HttpContext http, long limit)
    {
        if (http.Request.Path.Value?.EndsWith("/oauth/token", StringComparison.Ordinal) == true)
        {
            http.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            var text = $"The request body is larger than {limit} bytes.";
            return http.Response.WriteAsJsonAsync(new Parley.Protocol.OAuthError("invalid_request", text, text), Parley.Protocol.ParleyJson.Wire.OAuthError);
        }
        return PlatformRequest.TooLarge(limit).ExecuteAsync(http);
    }

    /// <summary>ASP.NET's AllowedHosts setting ("example.com;*.example.com"); null when unset or "*" (any host).</summary>
    internal static string[]? AllowedHosts(IConfiguration config)
    {
        var hosts = (config["AllowedHosts"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return hosts.Length == 0 || hosts.Contains("*") ? null : hosts;
    }
}
