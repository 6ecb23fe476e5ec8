using System.Collections.Frozen;
using System.Security.Cryptography;
using Parley.Core;

namespace Parley.Server.Web;

/// <summary>
/// Serves the front end the build embedded (web/, docs/web.md): each page at <c>/{page}/</c> (<c>/messenger/</c>,
/// <c>/console/</c>; without the slash, a redirect), the bundles at <c>/assets/{name}-{hash}.js</c>, the guest library
/// under its stable name at <c>/guest/parley-guest.js</c>. Hashed files never change, so browsers keep them a year
/// without asking; pages and the stable library are revalidated at every use (<c>no-cache</c> with an ETag), so a new
/// server version reaches every browser at the next load. Pages carry a strict Content-Security-Policy.
/// </summary>
public static class WebAssets
{
    const string Prefix = "web/";
    const string Immutable = "public, max-age=31536000, immutable";
    const string Revalidate = "no-cache";

    /// <summary>The embedded files by their path under web/dist (assets/…, messenger/index.html, …); read once, on first use.</summary>
    static readonly Lazy<FrozenDictionary<string, WebFile>> Files = new(Load);

    public static void MapWebAssets(this IEndpointRouteBuilder app)
    {
        string[] methods = ["GET", "HEAD"];
        foreach (var page in Pages())
            app.MapMethods("/" + page, methods, (HttpContext http, IDirectoryStore directory, ParleyOptions options) =>
                PageAsync(http, page, directory, options)).ExcludeFromDescription();
        app.MapMethods("/assets/{name}", methods, (HttpContext http, string name) => Serve(http, "assets/" + name, Immutable))
            .ExcludeFromDescription();
        app.MapMethods("/guest/{name}", methods, (HttpContext http, string name) => Serve(http, "guest/" + name, Revalidate))
            .ExcludeFromDescription();
    }

    /// <summary>The pages this build carries: every folder with an index.html.</summary>
    public static IEnumerable<string> Pages() => Files.Value.Keys
        .Where(k => k.EndsWith("/index.html", StringComparison.Ordinal) && k.Count(c => c == '/') == 1)
        .Select(k => k[..k.IndexOf('/')]).Order(StringComparer.Ordinal);

    static async Task PageAsync(HttpContext http, string page, IDirectoryStore directory, ParleyOptions options)
    {
        // Routing matches /messenger and /messenger/ alike; relative URLs in the page need the slash.
        if (!(http.Request.Path.Value ?? "").EndsWith('/'))
        {
            http.Response.Redirect($"{http.Request.PathBase}/{page}/{http.Request.QueryString}", permanent: true);
            return;
        }
        var (_, socket) = PublicAddress.Of(http);
        var frameAncestors = page == "messenger" ? await MessengerAncestorsAsync(http, directory, options) : "'none'";
        http.Response.Headers.ContentSecurityPolicy =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
            $"connect-src 'self' {socket}; base-uri 'none'; form-action 'self'; frame-ancestors {frameAncestors}";
        http.Response.Headers["Referrer-Policy"] = "no-referrer";
        await Serve(http, page + "/index.html", Revalidate).ExecuteAsync(http);
    }

    /// <summary>
    /// The messenger may be framed by the sites its deployment lets open guest sockets (its allowed origins; the demo
    /// deployment allows any); any other page of Parley is never framed.
    /// </summary>
    static async Task<string> MessengerAncestorsAsync(HttpContext http, IDirectoryStore directory, ParleyOptions options)
    {
        var id = http.Request.Query["deploymentId"].ToString();
        if (id.Length is 0 or > 200) id = options.DemoDeploymentId;
        if (await directory.GetDeploymentAsync(id, http.RequestAborted) is not { } deployment) return "'self'";
        if (deployment.AllowedOrigins.Contains("*")) return "*";
        // Only well-formed origins become CSP sources: nothing a deployment stores can add a directive.
        var origins = deployment.AllowedOrigins
            .Where(o => Uri.TryCreate(o, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" && o.All(c => c > ' ' && c is not (';' or ',' or '\'')))
            .Select(o => o.TrimEnd('/'));
        return string.Join(' ', ["'self'", .. origins]);
    }

    static IResult Serve(HttpContext http, string path, string cacheControl)
    {
        if (!Files.Value.TryGetValue(path, out var file)) return Results.NotFound();
        var headers = http.Response.Headers;
        headers.CacheControl = cacheControl;
        headers.ETag = file.ETag;
        headers.XContentTypeOptions = "nosniff";
        // Scripts load as modules, which browsers fetch with CORS: a customer's site may load the guest library from here.
        if (!path.EndsWith(".html", StringComparison.Ordinal)) headers.AccessControlAllowOrigin = "*";
        if (http.Request.Headers.IfNoneMatch.ToString() is { Length: > 0 } match && match.Split(',').Any(m => m.Trim() == file.ETag))
            return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(file.Content, file.ContentType);
    }

    static FrozenDictionary<string, WebFile> Load()
    {
        var assembly = typeof(WebAssets).Assembly;
        var files = new Dictionary<string, WebFile>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 12)) + "\"";
            files[name[Prefix.Length..]] = new WebFile(content, ContentType(name), etag);
        }
        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" or ".mjs" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".json" or ".map" => "application/json",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".ico" => "image/x-icon",
        ".woff2" => "font/woff2",
        ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };

    sealed record WebFile(byte[] Content, string ContentType, string ETag);
}
