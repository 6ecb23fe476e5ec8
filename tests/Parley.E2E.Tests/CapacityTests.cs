using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

public sealed class CapacityTests
{
    /// <summary>Past its guest-socket cap the server refuses the upgrade with a clear 503 and goes on serving.</summary>
    [Fact]
    public async Task PastTheCap_NewGuestsGet503_ExistingOnesAndTheApiKeepWorking()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { MaxGuestSockets = 2 });
        await using var first = await server.GuestAsync();
        await using var second = await server.GuestAsync();
        await first.ConfigureAsync();

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => server.GuestAsync());
        Assert.Contains("503", refused.Message);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var upgrade = new HttpRequestMessage(HttpMethod.Get, $"/v1?deploymentId={ParleyServer.DeploymentId}");
        foreach (var (name, value) in new[] { ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                     ("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray())) })
            upgrade.Headers.Add(name, value);
        var response = await http.SendAsync(upgrade);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("service.unavailable", (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["code"]);
        Assert.NotNull(response.Headers.RetryAfter);

        Assert.Equal("StructuredMessage", (string?)(await first.SendTextAsync("still served"))["class"]);
        using var platform = await server.PlatformAsync();
        Assert.Equal(HttpStatusCode.OK, (await platform.GetAsync("/api/v2/conversations/messages")).Response.StatusCode);

        await second.DisposeAsync();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        TestGuest? third = null;
        while (third is null)
        {
            try { third = await server.GuestAsync(); }
            catch (WebSocketException) when (DateTime.UtcNow < deadline) { await Task.Delay(50); }   // the closed socket's place frees asynchronously
        }
        await using (third) Assert.True((await third.ConfigureAsync())["body"]!["connected"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Shutdown_ClosesGuestSocketsAsGoingAway_AndTheyResumeAfterTheRestart()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();

        var restart = server.RestartAsync();
        await guest.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await restart.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, guest.CloseStatus);
        await using var again = await server.GuestAsync(guest.Token);
        Assert.False((await again.ConfigureAsync())["body"]!["newSession"]!.GetValue<bool>());
    }
}
