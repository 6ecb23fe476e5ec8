using Parley.E2E.Tests;
using Parley.Protocol;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>The client on Parley's termination extensions: bulk terminations and their jobs, policies, receipts (once each).</summary>
public sealed class TerminationExtensionTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Every reading a job's wait reported, in order (synchronously: <see cref="Progress{T}"/> would post them later).</summary>
    sealed class Readings : IProgress<BulkTerminationWire>
    {
        public List<BulkTerminationWire> All { get; } = [];
        public void Report(BulkTerminationWire value) { lock (All) All.Add(value); }
    }

    static async Task<(DeploymentWire A, DeploymentWire B)> TwoDeploymentsAsync(ParleyClient client) =>
        (await client.Deployments.CreateAsync(new DeploymentWire { Name = "A" }), await client.Deployments.CreateAsync(new DeploymentWire { Name = "B" }));

    static async Task<bool> IsLiveAsync(ParleyClient client, string conversationId) =>
        (await client.Conversations.GetMessageConversationAsync(conversationId)).Participants.Single(p => p.Purpose == "customer").State == "connected";

    [Fact]
    public async Task ABulkTermination_EndsTheFilteredSetAtOnce_AndOnlyThatSet()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (a, b) = await TwoDeploymentsAsync(client);
        var inA = new[] { await LiveConversationAsync(server, client, a.Id!), await LiveConversationAsync(server, client, a.Id!) };
        var (outsider, outsiderId) = await LiveConversationAsync(server, client, b.Id!);
        await using var _ = outsider;

        var done = await client.BulkTerminations.RunAsync(new TerminationFilter { DeploymentId = a.Id }, "deployment A retired");

        Assert.Equal(TerminationJobStates.Fulfilled, done.State);
        Assert.Equal(2, done.Ended);
        Assert.Equal(0, done.AlreadyEnded);
        Assert.Equal(2, done.SocketsNotified);
        Assert.Equal("deployment A retired", done.Reason);
        foreach (var (guest, id) in inA)
        {
            Assert.False(await IsLiveAsync(client, id));
            await guest.NextAsync(Frames.IsDisconnect);
            await guest.DisposeAsync();
        }
        Assert.True(await IsLiveAsync(client, outsiderId));
        Assert.Equal("Bulk", Assert.Single((await client.Audit.ListTerminationsAsync(inA[0].ConversationId)).Entities).Lever);

        var empty = await Assert.ThrowsAsync<ParleyApiException>(() => client.BulkTerminations.StartAsync(new TerminationFilter()));
        Assert.Equal(400, empty.Status);
    }

    [Fact]
    public async Task ALargeBulkTermination_IsAJob_AndWaitReportsItsProgressToTheEnd()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { TerminationAnswerAtOnceMax = 1 });
        using var client = DemoClient(server);
        var guests = new List<TestGuest>();
        for (var i = 0; i < 3; i++) guests.Add((await LiveConversationAsync(server, client, campaign: "autumn")).Guest);

        var job = await client.BulkTerminations.StartAsync(new TerminationFilter { Campaign = "autumn" }, "campaign closed");
        Assert.Equal(TerminationJobStates.Pending, job.State);
        var readings = new Readings();
        var done = await client.BulkTerminations.WaitAsync(job, readings, TimeSpan.FromMilliseconds(20)).WaitAsync(Timeout);

        Assert.Equal(TerminationJobStates.Fulfilled, done.State);
        Assert.Equal(3, done.Ended);
        Assert.Equal(TerminationJobStates.Pending, readings.All[0].State);
        Assert.Same(done, readings.All[^1]);
        Assert.Contains((await client.BulkTerminations.ListAsync()).Entities, j => j.Id == job.Id);
        Assert.Equal(3, (await client.BulkTerminations.GetAsync(job.Id)).Ended);
        foreach (var guest in guests) await guest.DisposeAsync();
    }

    /// <summary>A campaign policy: its dry run names exactly the campaign's conversations; applying it ends those, and the audit names the policy.</summary>
    [Fact]
    public async Task APolicy_PreviewedThenApplied_EndsWhatThePreviewSaid()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (spring, springId) = await LiveConversationAsync(server, client, campaign: "spring");
        var (other, otherId) = await LiveConversationAsync(server, client, campaign: "summer");
        await using var _ = spring;
        await using var __ = other;

        var request = new TerminationPolicyRequest
        {
            Name = "End spring", Type = TerminationPolicyTypes.Campaign, Campaign = "spring", DeploymentId = ParleyServer.DeploymentId,
            Enabled = false, Reason = "spring campaign over",
        };
        var unsaved = await client.Policies.PreviewAsync(request);
        Assert.Equal([springId], unsaved.Entities.Select(e => e.ConversationId));
        var policy = await client.Policies.CreateAsync(request);
        Assert.Equal("End spring", (await client.Policies.GetAsync(policy.Id)).Name);
        Assert.Contains((await client.Policies.ListAsync(deploymentId: ParleyServer.DeploymentId)).Entities, p => p.Id == policy.Id);
        var preview = await client.Policies.PreviewAsync(policy.Id);
        Assert.Equal([springId], preview.Entities.Select(e => e.ConversationId));

        var applied = await client.BulkTerminations.WaitAsync(await client.Policies.ApplyAsync(policy.Id));

        Assert.Equal(1, applied.Ended);
        Assert.False(await IsLiveAsync(client, springId));
        Assert.True(await IsLiveAsync(client, otherId));
        var row = Assert.Single((await client.Audit.ListTerminationsAsync(springId)).Entities);
        Assert.Equal("Policy", row.Lever);
        Assert.Equal($"parley:policy:{policy.Id}", row.Client.Id);
        var renamed = await client.Policies.UpdateAsync(policy.Id, request with { Name = "End spring (renamed)" });
        Assert.Equal("End spring (renamed)", renamed.Name);
        await client.Policies.DeleteAsync(policy.Id);
        Assert.Equal(404, (await Assert.ThrowsAsync<ParleyApiException>(() => client.Policies.GetAsync(policy.Id))).Status);
    }

    /// <summary>The recipe's termination id names a receipt: read, listed by conversation, and pushed on its topic.</summary>
    [Fact]
    public async Task TheRecipesTerminationId_NamesItsReceipt_ReadListedAndPushed()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;
        await using var stream = await client.Notifications.OpenAsync(["v2.parley.terminations.receipts"]);

        var result = await client.TerminateAsync(conversationId, "receipt please");
        var terminationId = result.Evidence.TerminationId!;

        TerminationReceiptWire? receipt = null;
        await EventuallyAsync(() =>
        {
            receipt = client.Receipts.GetAsync(terminationId).GetAwaiter().GetResult();
            return receipt.State != ReceiptStates.Pending;
        }, "the receipt settled");
        Assert.Equal(ReceiptStates.Delivered, receipt!.State);
        Assert.Equal(conversationId, receipt.ConversationId);
        Assert.Equal("delivered", Assert.Single(receipt.Sockets).State);
        Assert.Equal(result.Evidence.ReceiptUri, receipt.SelfUri);
        Assert.Contains((await client.Receipts.ListAsync(conversationId)).Entities, r => r.Id == terminationId);
        await foreach (var e in stream.WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            var pushed = e.BodyAs(ParleyJson.Wire.TerminationReceiptWire)!;
            if (pushed.Id == terminationId) break;
        }
        Assert.Equal(404, (await Assert.ThrowsAsync<ParleyApiException>(() => client.Receipts.GetAsync("no-such-termination"))).Status);
    }
}
