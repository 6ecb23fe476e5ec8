using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.Server;

/// <summary>
/// <c>GET /</c>: what a person opening Parley's address finds. A small HTML page, or JSON when the request asks for
/// <c>application/json</c>: the version, health and readiness, metrics when this build has them, the token endpoint, the
/// demo deployment's guest socket and configuration. Only endpoints that exist are linked; no secret is shown.
/// </summary>
public static class IndexPage
{
    public static void MapIndexPage(this IEndpointRouteBuilder app) => app.MapGet("/", Answer);

    static IResult Answer(HttpContext http, ParleyOptions options, EndpointDataSource endpoints, IConfiguration config)
    {
        var (web, socket) = PublicAddress.Of(http);
        var deployment = Uri.EscapeDataString(options.DemoDeploymentId);
        var links = new List<(string Name, string Href, string What)>
        {
            ("health", "/healthz", "liveness: the process answers"),
            ("ready", "/readyz", "readiness: the store (and backplane) answer, not draining"),
        };
        // The scrape endpoint, where this build maps one (Parley:Metrics:Path, /metrics by default; absent when disabled).
        var metrics = "/" + (config["Parley:Metrics:Path"] is { Length: > 0 } path ? path : "/metrics").TrimStart('/');
        if (Exists(endpoints, metrics)) links.Add(("metrics", metrics, "Prometheus metrics"));
        links.Add(("token", "/oauth/token", "OAuth client credentials (POST, HTTP Basic)"));
        // The pages this build carries (docs/web.md): the guest messenger, the operations console.
        foreach (var page in Web.WebAssets.Pages())
            links.Add((page, $"/{page}/", page == "messenger" ? "the guest messenger of the demo deployment" : $"the {page}"));
        links.Add(("apiReference", Platform.PlatformOpenApi.ReferencePath + "/", "the Platform API's interactive reference"));
        links.Add(("openApi", Platform.PlatformOpenApi.DocumentPath, "the Platform API's OpenAPI document"));
        links.Add(("deploymentConfig", $"/webdeployments/v1/deployments/{deployment}/config.json", "the demo deployment's configuration"));
        var guestSocket = $"{socket}/v1?deploymentId={deployment}";
        const string docs = "docs/ in the repository: configuration.md (every setting), compatibility.md, production.md";

        if (WantsJson(http.Request))
        {
            var json = new JsonObject
            {
                ["name"] = "Parley",
                ["version"] = ParleyCommandLine.Version,
                ["links"] = new JsonObject(links.Select(l => KeyValuePair.Create(l.Name, (JsonNode?)(web + l.Href)))),
                ["guestSocket"] = guestSocket,
                ["demoDeploymentId"] = options.DemoDeploymentId,
                ["docs"] = docs,
            };
            return Results.Text(json.ToJsonString(), "application/json", Encoding.UTF8);
        }
        var html = new StringBuilder();
        html.Append($"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Parley</title>
            <style>body{"{"}font:15px/1.5 system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em{"}"}code{"{"}background:#f3f3f3;padding:0 .2em{"}"}</style></head>
            <body><h1>Parley {E(ParleyCommandLine.Version)}</h1>
            <p>A self-hosted web messaging server that speaks the Genesys Cloud messaging protocol.</p>
            <ul>

            """);
        foreach (var (_, href, what) in links)
            html.Append($"<li><a href=\"{E(href)}\"><code>{E(href)}</code></a>: {E(what)}</li>\n");
        html.Append($"""
            </ul>
            <p>Guest socket of the demo deployment: <code>{E(guestSocket)}</code></p>
            <p>Documentation: {E(docs)}.</p>
            </body></html>

            """);
        return Results.Content(html.ToString(), "text/html", Encoding.UTF8);
    }

    /// <summary>JSON when the client lists application/json and not text/html (a browser lists text/html; curl lists */*).</summary>
    static bool WantsJson(HttpRequest request)
    {
        var accept = request.Headers.Accept.ToString();
        return accept.Contains("application/json", StringComparison.OrdinalIgnoreCase) && !accept.Contains("text/html", StringComparison.OrdinalIgnoreCase);
    }

    static bool Exists(EndpointDataSource endpoints, string path) => endpoints.Endpoints.OfType<RouteEndpoint>()
        .Any(e => string.Equals("/" + e.RoutePattern.RawText?.TrimStart('/'), path, StringComparison.OrdinalIgnoreCase));

    static string E(string text) => WebUtility.HtmlEncode(ParleyOptions.Clip(text, 300));
}
