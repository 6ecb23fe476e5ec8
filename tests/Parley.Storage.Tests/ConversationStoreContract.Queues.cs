using System.Collections.Immutable;
using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>Routing queues in the directory, the queue a conversation records, and the migration that routes what existed.</summary>
public abstract partial class ConversationStoreContract
{
    /// <summary>Undoes the queues migration by hand (SQLite 0011, PostgreSQL 0003): what a store looked like before it.</summary>
    protected const string UndoQueuesSql =
        "DROP TABLE queues; ALTER TABLE deployments DROP COLUMN queue_id; ALTER TABLE open_integrations DROP COLUMN queue_id; " +
        "ALTER TABLE conversations DROP COLUMN queue_id; ";

    /// <summary>ParleyOptions.DefaultQueueId: where the migration routes what existed.</summary>
    const string DefaultDemoQueueId = "d1e2a3b4-0000-4000-8000-000000000002";

    static Queue NewQueue(string name, int second = 0) =>
        new(Id(), name, $"about {name}", T0.AddSeconds(second), T0.AddSeconds(second), "creator", "creator");

    [ContractFact]
    public async Task Queues_Upsert_ReadBackOnAnotherStore_AndAnUpdateKeepsTheCreation()
    {
        var store = await CreateStoreAsync();
        var second = await OpenSecondAsync(store);
        var queue = NewQueue("Sales");
        await store.Directory.UpsertQueueAsync(queue, default);
        var renamed = queue with { Name = "Sales EMEA", Description = null, DateModified = T0.AddMinutes(1), ModifiedBy = "editor",
            DateCreated = T0.AddDays(1), CreatedBy = "someone else" };
        await store.Directory.UpsertQueueAsync(renamed, default);

        var read = await second.Directory.GetQueueAsync(queue.Id, default);

        // Creation (time and author) is kept by an update; the rest is replaced.
        Assert.Equal(renamed with { DateCreated = T0, CreatedBy = "creator" }, read);
        Assert.Null(await second.Directory.GetQueueAsync(Id(), default));
    }

    [ContractFact]
    public async Task Queues_ListSortsByNameIgnoringCase_Pages_AndReverses()
    {
        var directory = (await CreateStoreAsync()).Directory;
        foreach (var name in new[] { "support", "Billing", "sales", "Returns", "billing desk" })
            await directory.UpsertQueueAsync(NewQueue(name), default);

        var first = await directory.ListQueuesAsync(new QueueFilter(PageSize: 2, PageNumber: 1), default);
        var third = await directory.ListQueuesAsync(new QueueFilter(PageSize: 2, PageNumber: 3), default);
        var descending = await directory.ListQueuesAsync(new QueueFilter(Descending: true, PageSize: 5), default);

        Assert.Equal((5L, 3), (first.Total, first.PageCount));
        Assert.Equal(["Billing", "billing desk"], first.Entities.Select(q => q.Name));
        Assert.Equal(["support"], third.Entities.Select(q => q.Name));
        Assert.Equal(["support", "sales", "Returns", "billing desk", "Billing"], descending.Entities.Select(q => q.Name));
    }

    [ContractFact]
    public async Task Queues_NameFilter_IsWholeNameIgnoringCase_WithLeadingAndTrailingWildcards()
    {
        var directory = (await CreateStoreAsync()).Directory;
        foreach (var name in new[] { "Sales", "Sales EMEA", "Inside sales", "Support", "50% off_deals", "50X offXdeals", "Ünïcode Queue" })
            await directory.UpsertQueueAsync(NewQueue(name), default);

        async Task<string[]> Names(string filter) =>
            [.. (await directory.ListQueuesAsync(new QueueFilter(filter), default)).Entities.Select(q => q.Name)];

        Assert.Equal(["Sales"], await Names("sales"));
        Assert.Equal(["Sales", "Sales EMEA"], await Names("SALES*"));
        Assert.Equal(["Inside sales", "Sales"], await Names("*Sales"));
        Assert.Equal(["Inside sales", "Sales", "Sales EMEA"], await Names("*ales*"));
        Assert.Empty(await Names("ales"));
        // The caller's % and _ are themselves, not SQL wildcards; a '*' inside the name is a character, not a wildcard.
        Assert.Equal(["50% off_deals"], await Names("50% off_deals"));
        Assert.Empty(await Names("50%"));
        Assert.Empty(await Names("S*s"));
        // Letters beyond ASCII are folded alike in both adapters.
        Assert.Equal(["Ünïcode Queue"], await Names("üNÏCODE*"));
        var counted = await directory.ListQueuesAsync(new QueueFilter("*a*", PageSize: 1), default);
        Assert.Equal((5L, 1), (counted.Total, counted.Entities.Count));
    }

    [ContractFact]
    public async Task Queues_IdFilter_ListsOnlyThoseQueues_WithTheNameFilter()
    {
        var directory = (await CreateStoreAsync()).Directory;
        var queues = new[] { NewQueue("One"), NewQueue("Two"), NewQueue("Three") };
        foreach (var q in queues) await directory.UpsertQueueAsync(q, default);

        var byIds = await directory.ListQueuesAsync(new QueueFilter(Ids: [queues[0].Id, queues[2].Id, Id()]), default);
        var both = await directory.ListQueuesAsync(new QueueFilter("t*", [queues[0].Id, queues[2].Id]), default);

        Assert.Equal(["One", "Three"], byIds.Entities.Select(q => q.Name));
        Assert.Equal(["Three"], both.Entities.Select(q => q.Name));
    }

    [ContractFact]
    public async Task Conversation_RecordsItsQueue_AndTheQueryFiltersOnIt()
    {
        var store = await CreateStoreAsync();
        var session = await store.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);
        var routed = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0, queueId: "queue-a");
        Assert.True((await store.Conversations.CommitAsync(new Commit(routed, 0, []), default)).Stored);
        await CreateConversationAsync(store);   // no queue: as stored before queues existed

        var loaded = await (await OpenSecondAsync(store)).Conversations.LoadAsync(routed.Id, default);
        Assert.True((await store.Conversations.CommitAsync(End(routed), default)).Stored);
        var onQueue = await store.Conversations.QueryAsync(new ConversationFilter(QueueId: "queue-a"), default);

        Assert.Equal("queue-a", loaded!.QueueId);
        Assert.Equal("queue-a", Assert.Single(onQueue.Entities).QueueId);
        Assert.Equal(routed.Id, onQueue.Entities[0].Id);
        Assert.Empty((await store.Conversations.QueryAsync(new ConversationFilter(QueueId: "queue-b"), default)).Entities);
        Assert.Equal(2, (await store.Conversations.QueryAsync(new ConversationFilter(), default)).Total);
    }

    [ContractFact]
    public async Task QueuesMigration_OnAnEmptyStore_CreatesNoQueue()
    {
        var store = await CreateStoreAsync();
        Assert.Equal(0, (await store.Directory.ListQueuesAsync(new QueueFilter(), default)).Total);
    }

    /// <summary>
    /// A store from before queues, with a deployment, an integration and a conversation: the migration routes each to the
    /// demo queue at its default id, and creates that queue.
    /// </summary>
    protected async Task QueuesMigrationAsync(Func<StoragePorts, Task<StoragePorts>> reopenFromBefore)
    {
        var store = await CreateStoreAsync();
        var deployment = new Deployment(Id(), "web", ["*"], true, DisconnectMode.ReadOnly, true, T0) { QueueId = "to-be-undone" };
        var integration = new OpenIntegration(Id(), "Partner", "https://partner.example/hook", "secret-0123456789abcdef",
            ImmutableDictionary<string, string>.Empty, false, DisconnectMode.Send, T0, T0, "c", "c") { QueueId = "to-be-undone" };
        await store.Directory.UpsertDeploymentAsync(deployment, default);
        await store.Directory.UpsertIntegrationAsync(integration, default);
        var (_, conversation) = await CreateConversationAsync(store);

        var migrated = await reopenFromBefore(store);

        Assert.Equal(DefaultDemoQueueId, (await migrated.Directory.GetDeploymentAsync(deployment.Id, default))!.QueueId);
        Assert.Equal(DefaultDemoQueueId, (await migrated.Directory.GetIntegrationAsync(integration.Id, default))!.QueueId);
        Assert.Equal(DefaultDemoQueueId, (await migrated.Conversations.LoadAsync(conversation.Id, default))!.QueueId);
        var demo = Assert.Single((await migrated.Directory.ListQueuesAsync(new QueueFilter(), default)).Entities);
        Assert.Equal((DefaultDemoQueueId, "Parley demo queue"), (demo.Id, demo.Name));
    }
}
