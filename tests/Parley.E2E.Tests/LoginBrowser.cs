using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Parley.E2E.Tests;

/// <summary>
/// What a browser does with <c>/oauth/authorize</c>, over a real socket: keeps cookies, never follows a redirect (the test
/// reads where it would go), reads the login form's hidden fields and posts it back as a browser would.
/// </summary>
sealed partial class LoginBrowser : IDisposable
{
    readonly HttpClient _http;
    public Uri BaseAddress { get; }

    /// <param name="source">The loopback address the connections leave from (the server's view of the client address).</param>
    public LoginBrowser(ParleyServer server, string source = "127.0.0.1")
    {
        BaseAddress = server.BaseAddress;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer(),
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch { socket.Dispose(); throw; }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public HttpClient Http => _http;

    /// <summary>A path put before <c>/oauth/…</c>, as the JS SDK's <c>path_params_login</c> gateway setting does.</summary>
    public string Prefix { get; init; } = "";

    /// <summary>This server's own address for a registered path (the console client's <c>/console/</c>).</summary>
    public string Own(string path) => BaseAddress.GetLeftPart(UriPartial.Authority) + path;

    public static string Query(params (string Name, string? Value)[] parameters) =>
        string.Join("&", parameters.Where(p => p.Value is not null).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}"));

    public async Task<(HttpResponseMessage Response, string Html)> OpenAsync(string query)
    {
        var response = await _http.GetAsync(Prefix + "/oauth/authorize?" + query);
        return (response, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Opens the login page for <paramref name="query"/> and posts the form with these credentials.</summary>
    public async Task<(HttpResponseMessage Response, string Html)> LoginAsync(string query, string username, string password)
    {
        var (page, html) = await OpenAsync(query);
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"login page: {(int)page.StatusCode} {html}");
        var fields = HiddenFields(html);
        fields.Add(new("username", username));
        fields.Add(new("password", password));
        // Posted where the form says, as a browser does.
        var action = WebUtility.HtmlDecode(FormAction().Match(html).Groups[1].Value);
        var response = await _http.PostAsync(action, new FormUrlEncodedContent(fields));
        return (response, await response.Content.ReadAsStringAsync());
    }

    public static List<KeyValuePair<string, string>> HiddenFields(string html) =>
        [.. Hidden().Matches(html).Select(m => KeyValuePair.Create(WebUtility.HtmlDecode(m.Groups[1].Value), WebUtility.HtmlDecode(m.Groups[2].Value)))];

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]*)\" value=\"([^\"]*)\">")]
    private static partial Regex Hidden();

    [GeneratedRegex("<form method=\"post\" action=\"([^\"]*)\">")]
    private static partial Regex FormAction();

    /// <summary>The parameters of a redirect's query (code) or fragment (token).</summary>
    public static Dictionary<string, string> Parameters(HttpResponseMessage redirect, bool fragment)
    {
        Assert.True(redirect.StatusCode == HttpStatusCode.Found, $"expected a redirect, got {(int)redirect.StatusCode}");
        var location = redirect.Headers.Location!.ToString();
        var part = fragment ? location[(location.IndexOf('#') + 1)..] : new Uri(location).Query.TrimStart('?');
        return part.Split('&', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0]), p => Uri.UnescapeDataString(p[1]));
    }

    /// <summary>A PKCE pair (RFC 7636): a 64-character verifier and its S256 challenge.</summary>
    public static (string Verifier, string Challenge) Pkce()
    {
        var verifier = Convert.ToBase64String(RandomNumberGenerator.GetBytes(48)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var challenge = Convert.ToBase64String(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return (verifier, challenge);
    }

    /// <summary>The token endpoint's code grant, as the JS SDK's <c>authorizePKCEGrant</c> posts it.</summary>
    public async Task<(HttpStatusCode Status, JsonNode? Body)> RedeemAsync(string clientId, string code, string redirectUri, string? verifier)
    {
        var fields = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "authorization_code"), new("code", code), new("redirect_uri", redirectUri), new("client_id", clientId),
        };
        if (verifier is not null) fields.Add(new("code_verifier", verifier));
        var response = await _http.PostAsync(Prefix + "/oauth/token", new FormUrlEncodedContent(fields));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public void Dispose() => _http.Dispose();
}
