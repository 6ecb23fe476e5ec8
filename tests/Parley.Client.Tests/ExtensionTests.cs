using Microsoft.AspNetCore.Http;
using Parley.E2E.Tests;
using Parley.Protocol;
using Parley.Testing;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>The client's typed access to deployments, sessions, open messaging integrations, deliveries and the audit, once each.</summary>
public sealed class ExtensionTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Deployments_CreateReadUpdateDelete()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);

        var created = await client.Deployments.CreateAsync(new DeploymentWire { Name = "Support", InactivityTimeoutSeconds = 600 });
        Assert.Equal("Support", created.Name);
        Assert.Equal(600, (await client.Deployments.GetAsync(created.Id!)).InactivityTimeoutSeconds);
        var updated = await client.Deployments.UpdateAsync(created.Id!, created with { Name = "Support (EU)" });
        Assert.Equal("Support (EU)", updated.Name);
        Assert.Contains((await client.Deployments.ListAsync(pageSize: 100)).Entities, d => d.Id == created.Id);
        await client.Deployments.DeleteAsync(created.Id!);
        Assert.Equal(404, (await Assert.ThrowsAsync<ParleyApiException>(() => client.Deployments.GetAsync(created.Id!))).Status);
    }

    [Fact]
    public async Task GuestSessionsAndLiveConversations_ListWhatIsConnected()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;
        var sessionId = await guest.SessionIdAsync();

        var session = Assert.Single((await client.GuestSessions.ListAsync(ParleyServer.DeploymentId)).Entities, s => s.Id == sessionId);
        Assert.Equal(conversationId, session.ConversationId);
        var live = new List<MessageConversation>();
        await foreach (var c in client.Conversations.ListAllLiveAsync(pageSize: 1)) live.Add(c);
        Assert.Contains(live, c => c.Id == conversationId);
        var generic = await client.Conversations.GetAsync(conversationId);
        Assert.Contains(generic.Participants, p => p.Purpose == "customer");

        await client.TerminateAsync(conversationId);
        Assert.DoesNotContain((await client.Conversations.ListLiveAsync()).Entities, c => c.Id == conversationId);
    }

    /// <summary>
    /// An open messaging integration whose webhook fails: its message is dead-lettered after one attempt, listed as Dead,
    /// and redelivered on request (the webhook is really called again).
    /// </summary>
    [Fact]
    public async Task Integrations_AndDeadLetteredDeliveries_ListedAndRedelivered()
    {
        var calls = 0;
        var secondCall = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (receiver, url) = await LoopbackWebhook.StartAsync(http =>
        {
            if (Interlocked.Increment(ref calls) == 2) secondCall.TrySetResult();
            http.Response.StatusCode = StatusCodes.Status500InternalServerError;
            return Task.CompletedTask;
        });
        await using var _ = receiver;
        await using var server = await ParleyServer.StartAsync(o => o with { WebhooksAllowPrivateNetworks = true, WebhookMaxAttempts = 1 });
        using var client = DemoClient(server);

        var integration = await client.Integrations.CreateAsync(new OpenIntegrationRequest
        {
            Name = "Partner", OutboundNotificationWebhookUrl = url, OutboundNotificationWebhookSignatureSecretToken = "a-signature-secret-of-some-length",
        });
        Assert.Equal("Partner", (await client.Integrations.GetAsync(integration.Id)).Name);
        Assert.Equal("Partner v2", (await client.Integrations.UpdateAsync(integration.Id, new OpenIntegrationRequest { Name = "Partner v2" })).Name);
        Assert.Contains((await client.Integrations.ListAsync()).Entities, i => i.Id == integration.Id);

        var sent = await client.Conversations.SendAgentlessAsync(new AgentlessRequest
        {
            FromAddress = integration.Id, ToAddress = "+4930123456", ToAddressMessengerType = "open", TextBody = "Your order shipped",
        });
        DeliveryWire? dead = null;
        await EventuallyAsync(() =>
        {
            dead = client.Deliveries.ListAsync(DeliveryStates.Dead, integration.Id).GetAwaiter().GetResult().Entities.SingleOrDefault();
            return dead is not null;
        }, "the delivery dead-lettered");
        Assert.Equal(sent.ConversationId, dead!.ConversationId);
        Assert.Equal(1, dead.Attempts);
        Assert.Equal(500, dead.LastStatus);

        var again = await client.Deliveries.RedeliverAsync(dead.Id);
        Assert.Equal(DeliveryStates.Pending, again.State);
        await secondCall.Task.WaitAsync(Timeout);
        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.Deliveries.RedeliverAsync("no-such-delivery"));
        Assert.Equal(404, e.Status);

        await client.Integrations.DeleteAsync(integration.Id);
        Assert.Equal(404, (await Assert.ThrowsAsync<ParleyApiException>(() => client.Integrations.GetAsync(integration.Id))).Status);
    }

    /// <summary>The recipe on an open messaging conversation (the platform's other channel): the same verified end.</summary>
    [Fact]
    public async Task TheRecipe_EndsAnOpenMessagingConversation_Too()
    {
        var (receiver, url) = await LoopbackWebhook.StartAsync(http => Task.CompletedTask);
        await using var _ = receiver;
        await using var server = await ParleyServer.StartAsync(o => o with { WebhooksAllowPrivateNetworks = true });
        using var client = DemoClient(server);
        var integration = await client.Integrations.CreateAsync(new OpenIntegrationRequest
        {
            Name = "Partner", OutboundNotificationWebhookUrl = url, OutboundNotificationWebhookSignatureSecretToken = "a-signature-secret-of-some-length",
        });
        var sent = await client.Conversations.SendAgentlessAsync(new AgentlessRequest
        {
            FromAddress = integration.Id, ToAddress = "+4930123456", ToAddressMessengerType = "open", TextBody = "Hello", Campaign = "spring-sale",
        });

        var result = await client.TerminateAsync(sent.ConversationId, "campaign over");

        Assert.Equal(TerminationStatus.Ended, result.Status);
        Assert.Equal(TerminationLever.ParticipantDisconnect, result.Lever);
        Assert.NotNull(result.Evidence.AnalyticsConversationEnd);
        var row = Assert.Single((await client.Audit.ListTerminationsAsync(sent.ConversationId)).Entities);
        Assert.Equal("ParticipantPatch", row.Lever);
        Assert.Equal("campaign over", row.Reason);
        Assert.Equal(result.Evidence.TerminationId, row.Id);
    }
}
