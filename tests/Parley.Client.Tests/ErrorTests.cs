using Microsoft.Extensions.Time.Testing;
using Parley.E2E.Tests;
using Parley.Protocol;
using Parley.Server;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>Every error path comes back as one <see cref="ParleyApiException"/> carrying the server's status, code, message and correlation id.</summary>
public sealed class ErrorTests
{
    [Fact]
    public async Task AnUnknownConversation_Is404_WithThePlatformsErrorBody()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);

        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.Conversations.GetMessageConversationAsync("no-such-conversation"));

        Assert.Equal(404, e.Status);
        Assert.Equal("not.found", e.Code);
        Assert.Contains("no-such-conversation", e.ServerMessage);
        Assert.False(string.IsNullOrEmpty(e.ContextId));
        Assert.Equal(e.ContextId, e.Body!.ContextId);
        Assert.Equal("GET", e.Method);
        Assert.Equal("/api/v2/conversations/messages/no-such-conversation", e.Path);
        Assert.Contains("404", e.Message);
        Assert.Contains(e.ContextId!, e.Message);
    }

    [Fact]
    public async Task TheRawLeverOnAnEndedConversation_Is409_AlreadyDisconnected()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;
        var customer = (await client.Conversations.GetMessageConversationAsync(conversationId)).Participants.Single(p => p.Purpose == "customer");
        var first = await client.Conversations.DisconnectParticipantAsync(conversationId, customer.Id, "first");
        Assert.Equal(202, first.Status);
        Assert.Equal(1, first.SocketsNotified);
        Assert.Equal(Assert.Single((await client.Audit.ListTerminationsAsync(conversationId)).Entities).Id, first.TerminationId);

        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.Conversations.DisconnectParticipantAsync(conversationId, customer.Id));

        Assert.Equal(409, e.Status);
        Assert.Equal("conversation.already.disconnected", e.Code);
        Assert.NotNull(e.ContextId);
    }

    [Fact]
    public async Task AgentlessOntoALiveConversationWithoutUseExisting_Is409_ConversationActive()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (guest, _) = await LiveConversationAsync(server, client);
        await using var __ = guest;
        var sessionId = await guest.SessionIdAsync();

        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.Conversations.SendAgentlessAsync(new AgentlessRequest
        {
            FromAddress = ParleyServer.DeploymentId, ToAddress = sessionId, ToAddressMessengerType = "webmessaging", TextBody = "again",
        }));

        Assert.Equal(409, e.Status);
        Assert.Equal("conversation.active", e.Code);
        Assert.Contains("useExistingActiveConversation", e.ServerMessage);
    }

    [Fact]
    public async Task AWrongSecret_Is401_FromTheTokenEndpoint_InTheOAuthForm()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = new ParleyClient(server.BaseAddress, ParleyOptions.DefaultClientId, "not-the-secret");

        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.TerminateAsync(Guid.NewGuid().ToString()));

        Assert.Equal(401, e.Status);
        Assert.Equal("invalid_client", e.Code);
        Assert.Equal("/oauth/token", e.Path);
        Assert.DoesNotContain("not-the-secret", e.Message);
    }

    [Fact]
    public async Task AClientWithoutTheDisconnectPermission_Gets403_Thrown_NotAnOutcome()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, admin);
        await using var _ = guest;
        using var platform = await server.PlatformAsync();
        var (id, secret) = await OAuthHelpers.CreateClientAsync(platform, "viewer", "conversation:message:view", "analytics:conversationDetail:view");
        using var viewer = new ParleyClient(server.BaseAddress, id, secret);

        var e = await Assert.ThrowsAsync<ParleyApiException>(() => viewer.TerminateAsync(conversationId, "not mine to end"));

        Assert.Equal(403, e.Status);
        Assert.Equal("PATCH", e.Method);
        Assert.NotNull(e.Code);
        Assert.Empty((await admin.Audit.ListTerminationsAsync(conversationId)).Entities);   // nothing ended
        var customer = (await admin.Conversations.GetMessageConversationAsync(conversationId)).Participants.Single(p => p.Purpose == "customer");
        Assert.Equal("connected", customer.State);
    }

    [Fact]
    public async Task AFixedTokenThatIsNoLongerValid_Is401_AndIsNotRetried()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(HourlySweeps, clock: clock);
        using var http = OAuthHelpers.From(server);
        var token = await OAuthHelpers.TokenAsync(http, ParleyOptions.DefaultClientId, ParleyOptions.DefaultClientSecret);
        using var client = ParleyClient.WithToken(server.BaseAddress, token);
        Assert.NotEmpty((await client.Deployments.ListAsync()).Entities);

        clock.Advance(TimeSpan.FromDays(2));
        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.Deployments.ListAsync());

        Assert.Equal(401, e.Status);
    }
}
