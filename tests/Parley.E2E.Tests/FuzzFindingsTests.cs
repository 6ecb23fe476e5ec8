using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

/// <summary>What the fuzzer (FuzzTests) found, each as the attack that found it: fixed, and held here.</summary>
public sealed class FuzzFindingsTests
{
    /// <summary>An escaped lone surrogate is valid JSON but no valid text; reading it as a string threw, and the guest got 5000.</summary>
    [Theory]
    [InlineData("""{"customer":{"id":"\udc00","idType":"\ud800"}}""")]
    [InlineData("""{"customer":{"id":"c-1"},"\udfff\ud800":1}""")]
    public async Task ConfigureSession_WithALoneSurrogateInTheJourneyContext_IsServedNotFailed(string journeyContext)
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await server.GuestAsync();
        await guest.SendRawAsync("{\"action\":\"configureSession\",\"token\":\"" + guest.Token + "\",\"deploymentId\":\"" + guest.DeploymentId +
                                 "\",\"tracingId\":\"c1\",\"journeyContext\":" + journeyContext + "}");
        var answer = await guest.NextAsync(f => (string?)f["tracingId"] == "c1");
        Assert.Equal("SessionResponse", (string?)answer["class"]);
        Assert.Equal(200, (int)answer["code"]!);
        Assert.Equal("StructuredMessage", (string?)(await guest.EchoAsync())["class"]);   // and the socket serves on
    }

    /// <summary>A JSON object reads its properties lazily: a duplicate key or an invalid string threw outside the parse, a 500.</summary>
    [Theory]
    [InlineData("""[{"id":"v2.users.x.presence","id":true}]""")]
    [InlineData("""[{"id":"x","\ud800":1}]""")]
    public async Task Subscriptions_WithDuplicateKeysOrInvalidText_Are400NotA500(string body)
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var (_, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        var response = await platform.Http.PostAsync($"/api/v2/notifications/channels/{(string)channel!["id"]!}/subscriptions",
            new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(400, (int)error["status"]!);
        Assert.Equal("bad.request", (string?)error["code"]);
    }
}
