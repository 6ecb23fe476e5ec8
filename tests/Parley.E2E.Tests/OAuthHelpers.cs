using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>Token requests over real sockets, optionally from a chosen loopback source address (127.0.0.x).</summary>
static class OAuthHelpers
{
    /// <summary>An HttpClient whose connections leave from <paramref name="source"/>, so the server sees that client address.</summary>
    public static HttpClient From(ParleyServer server, string source = "127.0.0.1")
    {
        var handler = new SocketsHttpHandler
        {
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
        return new HttpClient(handler) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public static HttpRequestMessage TokenRequest(string clientId, string secret, bool basic = true)
    {
        var fields = new List<KeyValuePair<string, string>> { new("grant_type", "client_credentials") };
        if (!basic) { fields.Add(new("client_id", clientId)); fields.Add(new("client_secret", secret)); }
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent(fields) };
        if (basic) request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}")));
        return request;
    }

    public static async Task<HttpResponseMessage> RequestTokenAsync(HttpClient http, string clientId, string secret, bool basic = true) =>
        await http.SendAsync(TokenRequest(clientId, secret, basic));

    /// <summary>A token for the client, or a failed assertion with the answer.</summary>
    public static async Task<string> TokenAsync(HttpClient http, string clientId, string secret)
    {
        var response = await RequestTokenAsync(http, clientId, secret);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"token request: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!["access_token"]!.GetValue<string>();
    }

    public static PlatformClient Bearer(ParleyServer server, string token)
    {
        var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new PlatformClient(http);
    }

    /// <summary>Creates a client through the demo client; returns its id and secret.</summary>
    public static async Task<(string Id, string Secret)> CreateClientAsync(PlatformClient admin, string name, params string[] permissions)
    {
        var (response, body) = await admin.PostAsync("/api/v2/oauth/clients", new { name, authorizedGrantType = "CLIENT-CREDENTIALS", permissions });
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"create client: {(int)response.StatusCode} {body?.ToJsonString()}");
        return (body!["id"]!.GetValue<string>(), body["secret"]!.GetValue<string>());
    }

    public static async Task<PlatformClient> AsClientAsync(ParleyServer server, string id, string secret)
    {
        using var http = From(server);
        return Bearer(server, await TokenAsync(http, id, secret));
    }

    /// <summary>The kid named in a JWT's header (null for the original key's tokens, which carry none).</summary>
    public static string? Kid(string jwt)
    {
        var header = jwt.Split('.')[0].Replace('-', '+').Replace('_', '/');
        header = header.PadRight(header.Length + (4 - header.Length % 4) % 4, '=');
        return (string?)JsonNode.Parse(Convert.FromBase64String(header))!["kid"];
    }

    public const string DemoId = ParleyOptions.DefaultClientId;
    public const string DemoSecret = ParleyOptions.DefaultClientSecret;
}
