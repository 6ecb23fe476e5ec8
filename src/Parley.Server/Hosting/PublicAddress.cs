namespace Parley.Server;

/// <summary>
/// The address clients reach Parley at, for the URLs it hands out (config.json's endpoints, a channel's connectUri):
/// <see cref="ParleyOptions.PublicUrl"/> when set; otherwise the request's scheme and Host, which a trusted proxy's
/// X-Forwarded-Proto/-Host have already replaced and host filtering (AllowedHosts) has checked.
/// </summary>
public static class PublicAddress
{
    /// <summary>The HTTP base (https://chat.example.com) and the WebSocket base (wss://chat.example.com), without a trailing slash.</summary>
    public static (string Http, string WebSocket) Of(HttpContext http)
    {
        if (http.RequestServices.GetRequiredService<ParleyOptions>().PublicUrl is { } url)
        {
            var root = url.GetLeftPart(UriPartial.Path).TrimEnd('/');
            return (root, (url.Scheme == "https" ? "wss" : "ws") + root[url.Scheme.Length..]);
        }
        var secure = http.Request.IsHttps;
        var host = http.Request.Host.ToString();
        return ($"{(secure ? "https" : "http")}://{host}", $"{(secure ? "wss" : "ws")}://{host}");
    }
}
