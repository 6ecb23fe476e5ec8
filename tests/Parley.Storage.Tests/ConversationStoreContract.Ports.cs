using System.Collections.Concurrent;
using System.Collections.Immutable;
using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>The outbox lease and the directory store, as every adapter must keep them.</summary>
public abstract partial class ConversationStoreContract
{
    static readonly IReadOnlyDictionary<string, int> NoneInFlight = new Dictionary<string, int>();
    static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>A conversation whose creating commit also stores <paramref name="deliveries"/> outbox rows to one destination.</summary>
    static async Task<(Conversation Conversation, List<OutboxItem> Items)> CreateWithDeliveriesAsync(StoragePorts store, string destination,
        int deliveries, DateTimeOffset? due = null)
    {
        var session = await store.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);
        var c = ConversationMachine.Start(Id(), ChannelKind.Open, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0);
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "hello", [], null), T0);
        var items = Enumerable.Range(0, deliveries)
            .Select(i => new OutboxItem(Id(), destination, Id(), c.Id, [(byte)i], due ?? T0)).ToList();
        var committed = await store.Conversations.CommitAsync(
            new Commit(c, 0, add.Events, new SessionMove(session.Id, null, c.Id), Outbox: [.. items]), default);
        Assert.True(committed.Stored);
        return (c, items);
    }

    [ContractFact]
    public async Task Outbox_LeasesOnlyEachConversationsOldestDue_OnceUntilTheLeaseRunsOut()
    {
        var store = await CreateStoreAsync();
        var (_, x) = await CreateWithDeliveriesAsync(store, "https://a.example", 2);
        var (_, y) = await CreateWithDeliveriesAsync(store, "https://a.example", 1);
        var (_, later) = await CreateWithDeliveriesAsync(store, "https://a.example", 1, due: T0.AddMinutes(5));

        var leased = await store.Outbox.LeaseDueAsync(T0, Lease, 10, 10, NoneInFlight, default);
        Assert.Equal(new[] { x[0].Id, y[0].Id }.Order(), leased.Select(d => d.Item.Id).Order());
        Assert.Equal(x[0].Body, leased.Single(d => d.Item.Id == x[0].Id).Item.Body);
        // Leased rows are nobody else's until the lease runs out; the next of a conversation waits for its head.
        Assert.Empty(await store.Outbox.LeaseDueAsync(T0.AddSeconds(29), Lease, 10, 10, NoneInFlight, default));
        Assert.Equal(T0.AddSeconds(30), await store.Outbox.NextDueAsync(default));
        var again = await store.Outbox.LeaseDueAsync(T0.AddSeconds(30), Lease, 10, 10, NoneInFlight, default);
        Assert.Equal(leased.Select(d => d.Item.Id).Order(), again.Select(d => d.Item.Id).Order());

        await store.Outbox.MarkDeliveredAsync(x[0].Id, 200, T0.AddSeconds(31), default);
        await store.Outbox.MarkRetryAsync(y[0].Id, 1, T0.AddSeconds(90), 503, "busy", default);
        var next = await store.Outbox.LeaseDueAsync(T0.AddSeconds(31), Lease, 10, 10, NoneInFlight, default);
        Assert.Equal([x[1].Id], next.Select(d => d.Item.Id));

        var delivered = (await store.Outbox.GetDeliveryAsync(x[0].Id, default))!;
        Assert.Equal((DeliveryState.Delivered, 1, 200, T0.AddSeconds(31)), (delivered.State, delivered.Attempts, delivered.LastStatus, delivered.DeliveredAt));
        var retried = (await store.Outbox.GetDeliveryAsync(y[0].Id, default))!;
        Assert.Equal((DeliveryState.Pending, 1, 503, "busy"), (retried.State, retried.Attempts, retried.LastStatus, retried.LastError));
        Assert.Equal([later[0].Id], (await store.Outbox.LeaseDueAsync(T0.AddMinutes(5), Lease, 10, 10, NoneInFlight, default))
            .Select(d => d.Item.Id).Where(id => id == later[0].Id));
    }

    [ContractFact]
    public async Task Outbox_PerDestinationCap_CountsWhatIsInFlight()
    {
        var store = await CreateStoreAsync();
        for (var i = 0; i < 4; i++) await CreateWithDeliveriesAsync(store, "https://busy.example", 1);
        await CreateWithDeliveriesAsync(store, "https://quiet.example", 1);

        var leased = await store.Outbox.LeaseDueAsync(T0, Lease, 10, 3, new Dictionary<string, int> { ["https://busy.example"] = 2 }, default);

        Assert.Equal(1, leased.Count(d => d.Item.Destination == "https://busy.example"));
        Assert.Equal(1, leased.Count(d => d.Item.Destination == "https://quiet.example"));
        Assert.Equal(2, (await store.Outbox.LeaseDueAsync(T0, Lease, 2, 10, NoneInFlight, default)).Count);
    }

    [ContractFact]
    public async Task Outbox_LeasesRacingOnTwoStores_NeverHandTheSameRowTwice()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        var all = new List<string>();
        for (var i = 0; i < 40; i++) all.AddRange((await CreateWithDeliveriesAsync(a, $"https://d{i % 4}.example", 1)).Items.Select(o => o.Id));

        var got = new ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            var store = i % 2 == 0 ? a : b;
            for (var n = 0; n < 10; n++)
                foreach (var d in await store.Outbox.LeaseDueAsync(T0, Lease, 3, 100, NoneInFlight, default)) got.Add(d.Item.Id);
        })));

        Assert.Equal(got.Count, got.Distinct().Count());
        Assert.Equal(all.Order(), got.Order());
    }

    [ContractFact]
    public async Task Outbox_ReleasedLeases_AreLeasableAtOnce_DeliveredAndDeadRowsStayPut()
    {
        var store = await CreateStoreAsync();
        var (_, items) = await CreateWithDeliveriesAsync(store, "https://a.example", 1);
        var (_, done) = await CreateWithDeliveriesAsync(store, "https://a.example", 1);
        Assert.Equal(2, (await store.Outbox.LeaseDueAsync(T0, Lease, 10, 10, NoneInFlight, default)).Count);
        await store.Outbox.MarkDeliveredAsync(done[0].Id, 200, T0, default);

        Assert.Equal(1, await store.Outbox.ReleaseLeasesAsync(default));

        Assert.Equal([items[0].Id], (await store.Outbox.LeaseDueAsync(T0, Lease, 10, 10, NoneInFlight, default)).Select(d => d.Item.Id));
        Assert.Equal(DeliveryState.Delivered, (await store.Outbox.GetDeliveryAsync(done[0].Id, default))!.State);
    }

    [ContractFact]
    public async Task Outbox_LeasesAreNodeOwned_AnotherNodesStartFreesNone_AndAnExpiredOneIsTakenOverOnce()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        var (_, items) = await CreateWithDeliveriesAsync(a, "https://a.example", 1);

        var leased = Assert.Single(await a.Outbox.LeaseDueAsync(T0, Lease, 10, 10, NoneInFlight, default));
        Assert.Equal(items[0].Id, leased.Item.Id);
        // B cannot lease what A holds, and B's start (its release of its own leases) leaves A's lease alone.
        Assert.Empty(await b.Outbox.LeaseDueAsync(T0.AddSeconds(1), Lease, 10, 10, NoneInFlight, default));
        Assert.Equal(0, await b.Outbox.ReleaseLeasesAsync(default));
        Assert.Empty(await b.Outbox.LeaseDueAsync(T0.AddSeconds(2), Lease, 10, 10, NoneInFlight, default));

        // A dies without marking it: once its lease runs out, B takes it over, once; A (back, too late) does not get it.
        var takenOver = await Task.WhenAll(
            Task.Run(() => b.Outbox.LeaseDueAsync(T0 + Lease, Lease, 10, 10, NoneInFlight, default)),
            Task.Run(() => b.Outbox.LeaseDueAsync(T0 + Lease, Lease, 10, 10, NoneInFlight, default)));
        Assert.Equal([items[0].Id], takenOver.SelectMany(l => l).Select(d => d.Item.Id));
        Assert.Empty(await a.Outbox.LeaseDueAsync(T0 + Lease + TimeSpan.FromSeconds(1), Lease, 10, 10, NoneInFlight, default));
        // A's restart frees only its own leases: B's holds.
        Assert.Equal(0, await a.Outbox.ReleaseLeasesAsync(default));
        Assert.Empty(await a.Outbox.LeaseDueAsync(T0 + Lease + TimeSpan.FromSeconds(2), Lease, 10, 10, NoneInFlight, default));
        Assert.Equal(1, await b.Outbox.ReleaseLeasesAsync(default));
    }

    [ContractFact]
    public async Task Outbox_PerDestinationCap_CountsWhatOtherNodesHoldLeased()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        for (var i = 0; i < 5; i++) await CreateWithDeliveriesAsync(a, "https://slow.example", 1);

        Assert.Equal(3, (await a.Outbox.LeaseDueAsync(T0, Lease, 10, 4, new Dictionary<string, int> { ["https://slow.example"] = 1 }, default)).Count);
        // A holds 3 leased (and 1 more in flight of its own, which only A knows): B may add just 1 under a cap of 4.
        Assert.Single(await b.Outbox.LeaseDueAsync(T0.AddSeconds(1), Lease, 10, 4, NoneInFlight, default));
        Assert.Empty(await b.Outbox.LeaseDueAsync(T0.AddSeconds(2), Lease, 10, 4, new Dictionary<string, int> { ["https://slow.example"] = 1 }, default));
        // Expired leases no longer count.
        Assert.Equal(4, (await b.Outbox.LeaseDueAsync(T0 + Lease + Lease, Lease, 10, 4, NoneInFlight, default)).Count);
    }

    [ContractFact]
    public async Task Outbox_DeadDelivery_IsListed_AndRedeliveredOnlyOnce()
    {
        var store = await CreateStoreAsync();
        var (_, items) = await CreateWithDeliveriesAsync(store, "https://gone.example", 1);
        await store.Outbox.LeaseDueAsync(T0, Lease, 10, 10, NoneInFlight, default);
        await store.Outbox.MarkDeadAsync(items[0].Id, 5, 410, "gone", default);

        Assert.Empty(await store.Outbox.LeaseDueAsync(T0.AddHours(1), Lease, 10, 10, NoneInFlight, default));
        Assert.Null(await store.Outbox.NextDueAsync(default));
        var dead = await store.Outbox.ListDeliveriesAsync(DeliveryState.Dead, "https://gone.example", 25, 1, default);
        Assert.Equal((1L, items[0].Id, 5), (dead.Total, dead.Entities[0].Item.Id, dead.Entities[0].Attempts));
        Assert.Equal(0, (await store.Outbox.ListDeliveriesAsync(DeliveryState.Dead, "https://other.example", 25, 1, default)).Total);

        Assert.True(await store.Outbox.RedeliverAsync(items[0].Id, T0.AddHours(1), default));
        Assert.False(await store.Outbox.RedeliverAsync(items[0].Id, T0.AddHours(1), default));
        Assert.False(await store.Outbox.RedeliverAsync("no-such-delivery", T0, default));
        var back = Assert.Single(await store.Outbox.LeaseDueAsync(T0.AddHours(1), Lease, 10, 10, NoneInFlight, default));
        Assert.Equal((items[0].Id, 0), (back.Item.Id, back.Attempts));
    }

    [ContractFact]
    public async Task Directory_DeploymentsAndIntegrations_Upsert_ReadBack_Delete()
    {
        var store = await CreateStoreAsync();
        var second = await OpenSecondAsync(store);
        var deployment = new Deployment(Id(), "web", ["https://shop.example"], true, DisconnectMode.Send, false, T0, TimeSpan.FromMinutes(5), 4)
        {
            QueueId = "queue-web",
        };
        await store.Directory.UpsertDeploymentAsync(deployment, default);
        await store.Directory.UpsertDeploymentAsync(deployment with { Name = "renamed" }, default);

        var read = (await second.Directory.GetDeploymentAsync(deployment.Id, default))!;
        Assert.Equal(deployment with { Name = "renamed", AllowedOrigins = read.AllowedOrigins }, read);
        Assert.Equal<string>(deployment.AllowedOrigins, read.AllowedOrigins);
        Assert.True(await second.Directory.DeleteDeploymentAsync(deployment.Id, default));
        Assert.False(await store.Directory.DeleteDeploymentAsync(deployment.Id, default));
        Assert.Null(await store.Directory.GetDeploymentAsync(deployment.Id, default));

        var integration = new OpenIntegration(Id(), "Partner", "https://partner.example/hook", "secret-0123456789abcdef",
            ImmutableDictionary<string, string>.Empty, false, DisconnectMode.Send, T0, T0, "c", "c") { QueueId = "queue-open" };
        await store.Directory.UpsertIntegrationAsync(integration, default);
        await store.Directory.UpsertIntegrationAsync(integration with { QueueId = "queue-moved" }, default);
        var listed = await second.Directory.ListIntegrationsAsync(25, 1, default);
        Assert.Equal((1L, "Partner", false, "queue-moved"),
            (listed.Total, listed.Entities[0].Name, listed.Entities[0].DisconnectNotification, listed.Entities[0].QueueId));
        Assert.True(await store.Directory.DeleteIntegrationAsync(integration.Id, default));
        Assert.Null(await second.Directory.GetIntegrationAsync(integration.Id, default));

        var client = new OAuthClient(Id(), "bot", "hash", ["conversation:message:create"], T0);
        await store.Directory.UpsertClientAsync(client, default);
        Assert.Equal("bot", (await second.Directory.GetClientAsync(client.Id, default))!.Name);
    }

    [ContractFact]
    public async Task Directory_SigningKeyCreatedAtOnceOnTwoStores_IsOneKey()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);

        var keys = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() =>
            (i % 2 == 0 ? a : b).Directory.GetOrCreateSigningKeyAsync(() => Guid.NewGuid().ToByteArray(), default))));

        Assert.Single(keys.Select(Convert.ToBase64String).Distinct());
    }
}
