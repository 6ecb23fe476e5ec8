using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Parley.E2E.Tests;
using Parley.Protocol;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>
/// <see cref="ParleyClient.TerminateAsync"/>: the recipe that works on Genesys Cloud too (customer participant PATCH,
/// verify conversation and analytics, fall back to POST …/disconnect), against a live server.
/// </summary>
public sealed class TerminateTests
{
    /// <summary>
    /// As the platform ships a deployment: no disconnect notice for the guest. The recipe cannot rely on the guest being
    /// told; it verifies the conversation and the analytics instead.
    /// </summary>
    [Fact]
    public async Task OnADeploymentWithTheDisconnectNoticeOff_TheRecipeEndsTheConversation_AndProvesIt()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var deployment = await client.Deployments.CreateAsync(new DeploymentWire
        {
            Name = "As the platform ships it", ConversationDisconnect = new ConversationDisconnectConfig(false, "Send"),
        });
        Assert.False(deployment.ConversationDisconnect!.Enabled);
        var (guest, conversationId) = await LiveConversationAsync(server, client, deployment.Id!);
        await using var _ = guest;

        var result = await client.TerminateAsync(conversationId, "compliance: retention window reached");

        Assert.Equal(TerminationStatus.Ended, result.Status);
        Assert.Equal(TerminationLever.ParticipantDisconnect, result.Lever);
        Assert.Equal(conversationId, result.ConversationId);
        var e = result.Evidence;
        Assert.Equal("disconnected", e.CustomerState);
        Assert.NotNull(e.CustomerEndTime);
        Assert.Equal("disconnected", e.ConversationState);
        Assert.NotNull(e.AnalyticsConversationEnd);
        Assert.Contains(e.Calls, c => c.Method == "PATCH" && c.Path.EndsWith($"/participants/{e.CustomerParticipantId}") && c.Status == 202);
        Assert.DoesNotContain(e.Calls, c => c.Path.EndsWith("/disconnect"));   // the first lever sufficed: no teardown
        Assert.NotNull(e.SocketsNotified);

        // What the server says independently: the audit row is this termination, with the reason given, and the guest
        // (notice off) was not sent a Disconnect before the call answered.
        var audit = await client.Audit.ListTerminationsAsync(conversationId);
        var row = Assert.Single(audit.Entities);
        Assert.Equal(row.Id, e.TerminationId);
        Assert.Equal($"/api/v2/parley/receipts/{row.Id}", e.ReceiptUri);
        Assert.Equal("compliance: retention window reached", row.Reason);
        Assert.Equal(e.CustomerParticipantId, row.ParticipantId);
        var echo = guest.NextTracingId();
        await guest.SendAsync(new { action = "echo", token = guest.Token, tracingId = echo, message = new { type = "Text", text = "ping" } });
        var frame = await guest.NextAsync(f => (string?)f["tracingId"] == echo || Frames.IsDisconnect(f));
        Assert.Equal(echo, (string?)frame["tracingId"]);
        var analytics = await client.Analytics.GetDetailsAsync(conversationId);
        Assert.Equal(e.AnalyticsConversationEnd, analytics.ConversationEnd);
    }

    [Fact]
    public async Task OnAReadOnlyDeployment_TheGuestIsToldBeforeTheResult_AndCannotWriteAfter()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var deployment = await client.Deployments.GetAsync(ParleyServer.DeploymentId);
        Assert.Equal(new ConversationDisconnectConfig(true, "ReadOnly"), deployment.ConversationDisconnect);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;

        var result = await client.TerminateAsync(conversationId, "Fermé: délai dépassé");   // not ASCII: travels in the body

        Assert.Equal(TerminationStatus.Ended, result.Status);
        Assert.Equal(TerminationLever.ParticipantDisconnect, result.Lever);
        Assert.Equal(1, result.Evidence.SocketsNotified);
        var disconnect = await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(1));   // already there: told before the answer
        Assert.Equal("true", (string?)disconnect["body"]!["metadata"]!["readOnly"]);
        var refused = await guest.SendTextAsync("still there?");
        Assert.Equal(409, (int)refused["code"]!);
        Assert.Equal("Fermé: délai dépassé", Assert.Single((await client.Audit.ListTerminationsAsync(conversationId)).Entities).Reason);
    }

    [Fact]
    public async Task AnAlreadyEndedConversation_IsAlreadyEnded_AndNothingIsSent()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;
        Assert.Equal(TerminationStatus.Ended, (await client.TerminateAsync(conversationId)).Status);

        var again = await client.TerminateAsync(conversationId, "twice");

        Assert.Equal(TerminationStatus.AlreadyEnded, again.Status);
        Assert.Null(again.Lever);
        Assert.All(again.Evidence.Calls, c => Assert.Equal("GET", c.Method));   // read, never a lever
        Assert.Equal("disconnected", again.Evidence.CustomerState);
        Assert.NotNull(again.Evidence.AnalyticsConversationEnd);
        Assert.Single((await client.Audit.ListTerminationsAsync(conversationId)).Entities);   // no second termination
    }

    [Fact]
    public async Task AnUnknownConversation_IsNotFound()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var id = Guid.NewGuid().ToString();

        var result = await client.TerminateAsync(id);

        Assert.Equal(TerminationStatus.NotFound, result.Status);
        Assert.Null(result.Lever);
        var call = Assert.Single(result.Evidence.Calls);
        Assert.Equal(new ObservedCall("GET", $"/api/v2/conversations/messages/{id}", 404, "not.found"), call);
    }

    /// <summary>
    /// When the participant lever answers but the end does not show, the recipe tears the conversation down with
    /// POST …/disconnect. Here the customer PATCH is made to answer 202 without doing anything (as a platform that
    /// accepts and ignores it would), by a middleware in front of the real server.
    /// </summary>
    [Fact]
    public async Task WhenTheParticipantLeverDoesNotShow_TheRecipeFallsBackToTheTeardown()
    {
        await using var server = await ParleyServer.StartAsync(beforeStart: app => app.Use(async (HttpContext http, RequestDelegate next) =>
        {
            if (http.Request.Method == "PATCH" && http.Request.Path.Value!.Contains("/participants/"))
            {
                http.Response.StatusCode = 202;
                return;
            }
            await next(http);
        }));
        using var client = new ParleyClient(Options(server) with
        {
            Verification = new TerminationVerification { Attempts = 2, FirstDelay = TimeSpan.FromMilliseconds(10) },
        });
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;

        var result = await client.TerminateAsync(conversationId, "fallback");

        Assert.Equal(TerminationStatus.Ended, result.Status);
        Assert.Equal(TerminationLever.ConversationDisconnect, result.Lever);
        var calls = result.Evidence.Calls.Select(c => $"{c.Method} {c.Status}").ToList();
        Assert.Equal(["GET 200", "PATCH 202", "GET 200", "GET 200", "POST 202"], calls.Take(5));
        Assert.Equal("disconnected", result.Evidence.CustomerState);
        Assert.NotNull(result.Evidence.AnalyticsConversationEnd);
        Assert.Equal("ConversationDisconnect", Assert.Single((await client.Audit.ListTerminationsAsync(conversationId)).Entities).Lever);
    }
}
