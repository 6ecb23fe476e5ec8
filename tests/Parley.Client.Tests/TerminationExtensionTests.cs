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
}
