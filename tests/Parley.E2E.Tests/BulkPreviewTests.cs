using System.Net;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// The bulk termination's dry run (docs/ending-sessions.md "Bulk terminations"): <c>POST /api/v2/parley/terminations/preview</c>
/// lists exactly the set the same request would end, ends nothing, and refuses what a start refuses, in the same words.
/// </summary>
public sealed class BulkPreviewTests
{
    const string Terminations = "/api/v2/parley/terminations";
    const string Preview = Terminations + "/preview";

    static async Task<TestGuest> GuestAsync(ParleyServer server, string deploymentId)
    {
        var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, deploymentId);
        var t = guest.NextTracingId();
        await guest.RequestAsync(new { action = "configureSession", token = guest.Token, deploymentId, tracingId = t }, t);
        return guest;
    }

    static async Task<string> StartAsync(PlatformClient platform, string deploymentId, string campaign, TestGuest guest)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = deploymentId, toAddress = await guest.SessionIdAsync(), toAddressMessengerType = "webmessaging",
            textBody = "Hello from the campaign", campaign,
        });
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"agentless: {(int)response.StatusCode} {body?.ToJsonString()}");
        await guest.NextAsync(Frames.IsOutboundText);
        return body!["conversationId"]!.GetValue<string>();
    }

    [Fact]
    public async Task ThePreview_ListsExactlyWhatTheBulkThenEnds_EndsNothing_AndRefusesWhatItRefuses()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var demo = ParleyServer.DeploymentId;
        var (created, other) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "other shop" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        await using var first = await GuestAsync(server, demo);
        await using var second = await GuestAsync(server, demo);
        await using var otherCampaign = await GuestAsync(server, demo);
        await using var otherDeployment = await GuestAsync(server, (string)other!["id"]!);
        var inSet = new[] { await StartAsync(platform, demo, "spring", first), await StartAsync(platform, demo, "spring", second) };
        var kept = await StartAsync(platform, demo, "autumn", otherCampaign);
        await StartAsync(platform, (string)other["id"]!, "spring", otherDeployment);
        var request = new { filter = new { deploymentId = demo, campaign = "spring" }, reason = "recall" };

        var (response, preview) = await platform.PostAsync(Preview, request);

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {preview?.ToJsonString()}");
        Assert.Equal(2, (long)preview!["total"]!);
        Assert.Null(preview["policyId"]);
        var entries = preview["entities"]!.AsArray();
        Assert.Equal(inSet.Order(StringComparer.Ordinal), entries.Select(e => (string)e!["conversationId"]!).Order(StringComparer.Ordinal));
        var starts = entries.Select(e => DateTimeOffset.Parse((string)e!["startTime"]!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(starts.Order(), starts);   // soonest started first
        Assert.All(entries, e => Assert.Equal((string?)preview["evaluatedAt"], (string?)e!["endsAt"]));
        Assert.All(entries, e => Assert.Equal("spring", (string?)e!["campaign"]));
        // Nothing ended: no job stored, the guests still talk.
        Assert.Equal(0, (int)(await platform.GetAsync(Terminations)).Body!["total"]!);
        foreach (var guest in new[] { first, second })
        {
            var echo = await guest.SendTextAsync("still here?");
            Assert.True(Frames.IsInboundEcho(echo), echo.ToJsonString());
        }

        // The real bulk ends exactly the previewed set.
        var (ran, job) = await platform.PostAsync(Terminations, request);
        Assert.Equal(HttpStatusCode.OK, ran.StatusCode);
        Assert.Equal((2, 2), ((int)job!["matched"]!, (int)job["ended"]!));
        foreach (var id in inSet) Assert.Equal("disconnected", (string?)(await platform.ConversationAsync(id))["state"]);
        Assert.Equal("connected", (string?)(await platform.ConversationAsync(kept))["state"]);
        var (_, after) = await platform.PostAsync(Preview, request);
        Assert.Equal(0, (long)after!["total"]!);
        Assert.Empty(after["entities"]!.AsArray());

        // What a start refuses, the preview refuses, in the same words.
        object[] bad =
        [
            new { }, new { filter = new { } }, new { filter = new { deployment = demo } }, new { filter = new { startedBefore = "yesterday" } },
            new { filter = new { deploymentId = Guid.NewGuid().ToString() } }, new { filter = new { campaign = "spring" }, reason = new string('r', 501) },
        ];
        foreach (var body in bad)
        {
            var (refused, answer) = await platform.PostAsync(Preview, body);
            var (started, startAnswer) = await platform.PostAsync(Terminations, body);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{(int)refused.StatusCode} {answer?.ToJsonString()}");
            Assert.Equal(HttpStatusCode.BadRequest, started.StatusCode);
            Assert.Equal((string?)startAnswer!["message"], (string?)answer!["message"]);
        }
        Assert.Equal(1, (int)(await platform.GetAsync(Terminations)).Body!["total"]!);
    }
}
