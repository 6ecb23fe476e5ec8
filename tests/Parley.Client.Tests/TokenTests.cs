using Microsoft.Extensions.Time.Testing;
using Parley.E2E.Tests;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>The client's own client-credentials tokens: fetched once, renewed before they expire, renewed when refused.</summary>
public sealed class TokenTests
{
    [Fact]
    public async Task ATokenIsFetchedOnce_ThenRenewedBeforeItExpires()
    {
        // One clock for the server (which issues and checks the tokens) and the client (which ages them).
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(HourlySweeps, clock: clock);
        using var handler = new CountingHandler();
        using var http = new HttpClient(handler);
        using var client = new ParleyClient(Options(server) with { Clock = clock }, http);

        await client.Deployments.ListAsync();
        await client.Deployments.ListAsync();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.Conversations.ListLiveAsync()));
        Assert.Equal(1, handler.TokenRequests);

        // The server's tokens live 86399 s; one minute before that the client takes a new one of its own accord.
        clock.Advance(TimeSpan.FromSeconds(86399) - TimeSpan.FromSeconds(30));
        await client.Deployments.ListAsync();
        Assert.Equal(2, handler.TokenRequests);
        clock.Advance(TimeSpan.FromHours(2));   // the first token has expired by now; the second has not
        await client.Deployments.ListAsync();
        Assert.Equal(2, handler.TokenRequests);
    }

    [Fact]
    public async Task ATokenTheServerRefuses_IsRenewedOnce_AndTheCallSucceeds()
    {
        // Only the server's clock moves: to the client the token looks fresh, the server says 401.
        var serverClock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(HourlySweeps, clock: serverClock);
        using var handler = new CountingHandler();
        using var http = new HttpClient(handler);
        using var client = new ParleyClient(Options(server), http);
        await client.Deployments.ListAsync();
        Assert.Equal(1, handler.TokenRequests);

        serverClock.Advance(TimeSpan.FromDays(2));
        var deployments = await client.Deployments.ListAsync();

        Assert.NotEmpty(deployments.Entities);
        Assert.Equal(2, handler.TokenRequests);
    }

    /// <summary>Behind a gateway (the SDKs' setGateway): the base address's path prefix stays on every call, the token's too.</summary>
    [Fact]
    public async Task AGatewayPathPrefixOnTheBaseAddress_IsKept_OnEveryCall()
    {
        await using var server = await ParleyServer.StartAsync();
        using var handler = new CountingHandler();
        using var http = new HttpClient(handler);
        using var client = new ParleyClient(Options(server) with { BaseAddress = new Uri(server.BaseAddress, "/api-gw/") }, http);

        Assert.NotEmpty((await client.Deployments.ListAsync()).Entities);

        Assert.Equal(["/api-gw/oauth/token", "/api-gw/api/v2/parley/deployments"], handler.Paths);
    }
}
