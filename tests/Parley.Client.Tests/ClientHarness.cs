using Parley.Client;
using Parley.E2E.Tests;
using Parley.Protocol;
using Parley.Server;

namespace Parley.Client.Tests;

/// <summary>Parley.Client against the in-process server of the end-to-end tests (real HTTP and WebSocket on loopback).</summary>
static class ClientHarness
{
    /// <summary>A client with the demo client's credentials (every permission).</summary>
    public static ParleyClient DemoClient(ParleyServer server, HttpClient? http = null) =>
        new(server.BaseAddress, ParleyOptions.DefaultClientId, ParleyOptions.DefaultClientSecret, http);

    /// <summary>The demo client's credentials with the given options (clock, verification).</summary>
    public static ParleyClientOptions Options(ParleyServer server) => new()
    {
        BaseAddress = server.BaseAddress, ClientId = ParleyOptions.DefaultClientId, ClientSecret = ParleyOptions.DefaultClientSecret,
    };

    /// <summary>A guest on <paramref name="deploymentId"/> with a session, and the conversation the bot starts with it through the client.</summary>
    public static async Task<(TestGuest Guest, string ConversationId)> LiveConversationAsync(ParleyServer server, ParleyClient client,
        string deploymentId = ParleyServer.DeploymentId, string? campaign = null)
    {
        var guest = await server.GuestAsync(deploymentId: deploymentId);
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var sent = await client.Conversations.SendAgentlessAsync(new AgentlessRequest
        {
            FromAddress = deploymentId, ToAddress = sessionId, ToAddressMessengerType = "webmessaging", TextBody = "Hello from the bot",
            Campaign = campaign,
        });
        await guest.NextAsync(Frames.IsOutboundText);
        return (guest, sent.ConversationId);
    }

    /// <summary>
    /// For tests that move the server's clock by days: a fake clock fires a periodic timer once per period it passes, and
    /// the sweeps' one-second period would be 172,800 ticks for two days. An hour's keeps the move cheap.
    /// </summary>
    public static ParleyOptions HourlySweeps(ParleyOptions o) => o with { TerminationSweep = TimeSpan.FromHours(1) };

    /// <summary>Waits until <paramref name="condition"/> holds, reading it every 20 ms; fails after the timeout.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }
}

/// <summary>Records the paths an HttpClient requests, and counts the token fetches.</summary>
sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    readonly System.Collections.Concurrent.ConcurrentQueue<string> _paths = new();
    int _tokens;

    public int TokenRequests => Volatile.Read(ref _tokens);

    public IReadOnlyCollection<string> Paths => _paths;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var path = request.RequestUri!.AbsolutePath;
        _paths.Enqueue(path);
        if (path.EndsWith("/oauth/token", StringComparison.Ordinal)) Interlocked.Increment(ref _tokens);
        return base.SendAsync(request, ct);
    }
}
