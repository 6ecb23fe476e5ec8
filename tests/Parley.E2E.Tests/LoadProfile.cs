using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// The one place where the load generators (fault injection, race at scale, fuzzing) raise the server's default limits
/// for their own servers, as an operator would for a load test: nothing here changes a default. When a new limit is
/// added to Parley, its setting goes here (process environment, in-process options, or the deployment).
/// </summary>
public static class LoadProfile
{
    /// <summary>Settings for a Parley started as its own process (<see cref="Parley.Testing.ParleyProcess"/>).</summary>
    public static readonly IReadOnlyDictionary<string, string> ProcessEnvironment = new Dictionary<string, string>
    {
        // The tests' webhook receiver listens on loopback.
        ["Parley__Webhooks__AllowPrivateNetworks"] = "true",
        // Guest limits (docs/guest-limits.md): messages per session (the demo deployment's) and per client address.
        ["Parley__Demo__GuestMessagesPerSecond"] = GuestMessagesPerSecond.ToString(),
        ["Parley__Limits__GuestMessagesPerAddressPerSecond"] = "0",
        // Connection limits (docs/connection-limits.md): new sessions per address and per deployment, connections per address.
        ["Parley__Limits__NewSessionsPerAddressPerMinute"] = Plenty.ToString(),
        ["Parley__Limits__NewSessionsPerDeploymentPerMinute"] = Plenty.ToString(),
        ["Parley__Limits__MaxConnectionsPerAddress"] = "100000",
    };

    /// <summary>A rate no load generator here reaches (the settings take no "off").</summary>
    const int Plenty = 1_000_000;

    /// <summary>The same for an in-process server (<see cref="ParleyServer.StartAsync"/>).</summary>
    public static ParleyOptions Options(ParleyOptions o) => o with
    {
        WebhooksAllowPrivateNetworks = true,
        DemoGuestMessagesPerSecond = GuestMessagesPerSecond,
        GuestMessagesPerAddressPerSecond = 0,
        NewSessionsPerAddressPerMinute = Plenty,
        NewSessionsPerDeploymentPerMinute = Plenty,
        MaxConnectionsPerAddress = 100_000,
    };

    /// <summary>Guest messages per second per session that the load generators' deployment allows (the API's maximum).</summary>
    public const int GuestMessagesPerSecond = 10_000;

    /// <summary>Raises the deployment's own limits through the Platform API, keeping everything else it has.</summary>
    public static async Task RaiseDeploymentLimitsAsync(PlatformClient platform, string deploymentId = ParleyServer.DeploymentId)
    {
        var (got, deployment) = await platform.GetAsync($"/api/v2/parley/deployments/{deploymentId}");
        Assert.Equal(200, (int)got.StatusCode);
        var body = deployment!.AsObject();
        body["guestMessagesPerSecond"] = GuestMessagesPerSecond;
        var (put, _) = await platform.SendAsync(HttpMethod.Put, $"/api/v2/parley/deployments/{deploymentId}", body);
        Assert.Equal(200, (int)put.StatusCode);
    }

    /// <summary>Loopback source addresses the generators spread their connections over (127.0.0.2 … 127.0.0.251).</summary>
    public const int Addresses = 250;

    static readonly HttpMessageInvoker?[] Invokers = new HttpMessageInvoker?[Addresses];

    public static IPAddress Address(int index) => new([127, 0, 0, (byte)(2 + (uint)index % Addresses)]);

    /// <summary>A handler whose connections leave from the given loopback address, as separate clients' would.</summary>
    public static SocketsHttpHandler HandlerFrom(IPAddress local, int maxConnections = int.MaxValue) => new()
    {
        MaxConnectionsPerServer = maxConnections,
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(local, 0));
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    /// <summary>For guest WebSockets: one invoker per source address, shared (an upgrade never pools its connection).</summary>
    public static HttpMessageInvoker GuestInvoker(int index)
    {
        var i = (int)((uint)index % Addresses);
        return Volatile.Read(ref Invokers[i]) ?? Interlocked.CompareExchange(ref Invokers[i], new HttpMessageInvoker(HandlerFrom(Address(i))), null)
            ?? Invokers[i]!;
    }

    /// <summary>A guest connected from source address <paramref name="index"/>.</summary>
    public static Task<TestGuest> GuestAsync(Uri baseAddress, int index, string? token = null, string deploymentId = ParleyServer.DeploymentId) =>
        TestGuest.ConnectAsync(baseAddress, token ?? Guid.NewGuid().ToString(), null, deploymentId, invoker: GuestInvoker(index));

    public static JsonObject Json(object o) => System.Text.Json.JsonSerializer.SerializeToNode(o)!.AsObject();
}
