using System.Net;
using System.Text.RegularExpressions;

namespace Parley.E2E.Tests;

/// <summary>
/// The front end the build embeds (docs/web.md): pages revalidated at every load under a strict Content-Security-Policy,
/// hashed bundles cached for a year, the right content types, and redirects to the slashed page address.
/// </summary>
public sealed partial class WebAssetsTests
{
    [Fact]
    public async Task Messenger_IsServedNoCache_WithStrictPolicy_AndItsBundlesImmutable()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = server.BaseAddress };

        var page = await http.GetAsync("/messenger/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", page.Headers.CacheControl?.ToString());
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self';", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.Contains($"connect-src 'self' ws://{server.BaseAddress.Authority}", csp);
        Assert.Contains("frame-ancestors *", csp);   // the demo deployment allows any origin
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotMatch("<script(?![^>]*\\bsrc=)", html);   // no inline script

        var assets = AssetPattern().Matches(html).Select(m => m.Value).ToList();
        Assert.Contains(assets, a => a.EndsWith(".js", StringComparison.Ordinal));
        Assert.Contains(assets, a => a.EndsWith(".css", StringComparison.Ordinal));
        foreach (var asset in assets)
        {
            var response = await http.GetAsync(asset);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("public, max-age=31536000, immutable", response.Headers.CacheControl?.ToString());
            Assert.Equal(asset.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript" : "text/css", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        }

        // Revalidation: the page's ETag answers 304 without a body.
        var again = new HttpRequestMessage(HttpMethod.Get, "/messenger/");
        again.Headers.IfNoneMatch.Add(page.Headers.ETag!);
        var notModified = await http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("/messenger", "/messenger/")]
    [InlineData("/messenger?deploymentId=abc", "/messenger/?deploymentId=abc")]
    [InlineData("/console", "/console/")]
    public async Task PageWithoutSlash_RedirectsKeepingTheQuery(string path, string location)
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = server.BaseAddress };
        var response = await http.GetAsync(path);
        Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);
        Assert.Equal(location, response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Console_CannotBeFramed_AndAnUnknownAssetIsThePlatforms404()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var console = await http.GetAsync("/console/");
        Assert.Equal(HttpStatusCode.OK, console.StatusCode);
        Assert.Contains("frame-ancestors 'none'", console.Headers.GetValues("Content-Security-Policy").Single());

        var missing = await http.GetAsync("/assets/nothing-ABCDEFGH.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("not.found", (await missing.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>())!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task GuestLibrary_HasAStableAddress_ThatAnyOriginMayLoad()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var request = new HttpRequestMessage(HttpMethod.Get, "/guest/parley-guest.js");
        request.Headers.Add("Origin", "https://shop.example");
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("export", await response.Content.ReadAsStringAsync());
    }

    [GeneratedRegex("/assets/[A-Za-z0-9._-]+")]
    private static partial Regex AssetPattern();
}

/// <summary>
/// A browser sees a refused WebSocket upgrade only as a failure; the guest library then asks <c>GET /v1</c> over plain HTTP
/// why (docs/messenger.md): 503 with Retry-After when the server is full, 403 for an origin the deployment refuses.
/// </summary>
public sealed class GuestProbeTests
{
    [Fact]
    public async Task PlainGet_TellsAFullServer_AndARefusedOrigin_FromAnyPage()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { MaxGuestSockets = 1 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "shop", allowedOrigins = new[] { "https://shop.example" } });
        var shop = (string)deployment!["id"]!;

        var room = await http.GetAsync($"/v1?deploymentId={ParleyServer.DeploymentId}");
        Assert.Equal(HttpStatusCode.BadRequest, room.StatusCode);   // a place is free: only "open a WebSocket here"
        Assert.Equal("*", room.Headers.GetValues("Access-Control-Allow-Origin").Single());

        var refused = await http.GetAsync($"/v1?deploymentId={shop}&origin={Uri.EscapeDataString("https://evil.example")}");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("origin.not.allowed", (string?)(await refused.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>())!["code"]);
        var allowed = await http.GetAsync($"/v1?deploymentId={shop}&origin={Uri.EscapeDataString("https://shop.example")}");
        Assert.Equal(HttpStatusCode.BadRequest, allowed.StatusCode);

        await using var occupant = await server.GuestAsync();
        await occupant.ConfigureAsync();
        var full = await http.GetAsync($"/v1?deploymentId={ParleyServer.DeploymentId}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, full.StatusCode);
        Assert.Equal("5", full.Headers.GetValues("Retry-After").Single());
        Assert.Equal("service.unavailable", (string?)(await full.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>())!["code"]);
    }
}
