using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>
/// The live-conversation query of bulk terminations and policies (<see cref="IConversationStore.ListLiveAsync"/>), the
/// campaign and starter columns it filters on, the bulk termination jobs and the batched audit socket counts.
/// </summary>
public abstract partial class ConversationStoreContract
{
    static async Task<Conversation> LiveAsync(StoragePorts store, string channelId = "dep", ChannelKind channel = ChannelKind.WebMessaging,
        string? queue = null, DateTimeOffset? start = null, string? campaign = null, string? startedBy = null, string? address = null)
    {
        var session = await store.Sessions.CreateAsync(new GuestSession(Id(), Id(), channelId, null, T0, channel, address), default);
        var c = ConversationMachine.Start(Id(), channel, channelId, session.Id, DisconnectMode.ReadOnly, MessageDirection.Outbound,
            "Guest", "Bot", Id, start ?? T0, null, queue) with { Campaign = campaign, StartedBy = startedBy };
        Assert.True((await store.Conversations.CommitAsync(new Commit(c, 0, [], new SessionMove(session.Id, null, c.Id)), default)).Stored);
        return c;
    }

    [ContractFact]
    public async Task Conversation_StoresItsCampaignAndStarter_AndLoadsThemBackOnAnotherStore()
    {
        var store = await CreateStoreAsync();
        var tagged = await LiveAsync(store, campaign: "spring-sale", startedBy: "bot-client");
        var plain = await LiveAsync(store);

        var other = await OpenSecondAsync(store);
        var loaded = await other.Conversations.LoadAsync(tagged.Id, default);
        var loadedPlain = await other.Conversations.LoadAsync(plain.Id, default);
        var queried = await other.Conversations.QueryAsync(new ConversationFilter(), default);

        Assert.Equal(("spring-sale", "bot-client"), (loaded!.Campaign, loaded.StartedBy));
        Assert.Equal((null, null), (loadedPlain!.Campaign, loadedPlain.StartedBy));
        Assert.Contains(queried.Entities, c => c.Id == tagged.Id && c.Campaign == "spring-sale" && c.StartedBy == "bot-client");
    }

    [ContractFact]
    public async Task ListLive_EachFilterField_AloneAndCombined_SelectsExactlyTheMatchingLiveConversations()
    {
        var store = await CreateStoreAsync();
        var later = T0.AddMinutes(10);
        var a = await LiveAsync(store, "dep-a", queue: "q1", start: T0, campaign: "spring", startedBy: "bot-1", address: "cust-1");
        var b = await LiveAsync(store, "dep-a", queue: "q2", start: later, campaign: "autumn", startedBy: "bot-2", address: "cust-2");
        var c = await LiveAsync(store, "dep-b", queue: "q1", start: later, address: "cust-1");
        var d = await LiveAsync(store, "int-1", ChannelKind.Open, queue: "q1", start: T0.AddMinutes(5), campaign: "spring", address: "cust-3");
        // Matches every filter below that a selects, but ended: never listed.
        var ended = await LiveAsync(store, "dep-a", queue: "q1", start: T0, campaign: "spring", startedBy: "bot-1", address: "cust-1");
        Assert.True((await store.Conversations.CommitAsync(End(ended), default)).Stored);

        async Task<string[]> Ids(LiveFilter f) =>
            [.. (await store.Conversations.ListLiveAsync(f, 100, null, default)).Select(x => x.Id).Order(StringComparer.Ordinal)];
        string[] Expect(params Conversation[] cs) => [.. cs.Select(x => x.Id).Order(StringComparer.Ordinal)];

        Assert.Equal(Expect(a, b, c, d), await Ids(new LiveFilter()));
        Assert.Equal(Expect(a, b), await Ids(new LiveFilter(ChannelId: "dep-a")));
        Assert.Equal(Expect(d), await Ids(new LiveFilter(Channel: ChannelKind.Open)));
        Assert.Equal(Expect(a, b, c), await Ids(new LiveFilter(Channel: ChannelKind.WebMessaging)));
        Assert.Equal(Expect(a, c, d), await Ids(new LiveFilter(QueueId: "q1")));
        Assert.Equal(Expect(a, d), await Ids(new LiveFilter(StartedBefore: later)));            // exclusive: b and c started at it
        Assert.Equal(Expect(b, c), await Ids(new LiveFilter(StartedAfter: T0.AddMinutes(5))));  // exclusive: d started at it
        Assert.Equal(Expect(a, d), await Ids(new LiveFilter(Campaign: "spring")));
        Assert.Equal(Expect(b), await Ids(new LiveFilter(StartedBy: "bot-2")));
        Assert.Equal(Expect(a, c), await Ids(new LiveFilter(CustomerId: "cust-1")));
        Assert.Empty(await Ids(new LiveFilter(CustomerId: "nobody")));

        Assert.Equal(Expect(a), await Ids(new LiveFilter(ChannelId: "dep-a", QueueId: "q1")));
        Assert.Equal(Expect(c), await Ids(new LiveFilter(CustomerId: "cust-1", StartedAfter: T0)));
        Assert.Equal(Expect(d), await Ids(new LiveFilter(Campaign: "spring", Channel: ChannelKind.Open, StartedAfter: T0, StartedBefore: later)));
        Assert.Equal(Expect(a), await Ids(new LiveFilter(ChannelId: "dep-a", Campaign: "spring", StartedBy: "bot-1", CustomerId: "cust-1",
            QueueId: "q1", StartedBefore: T0.AddMinutes(1), Channel: ChannelKind.WebMessaging)));
        Assert.Empty(await Ids(new LiveFilter(ChannelId: "dep-b", Campaign: "spring")));

        var row = Assert.Single(await store.Conversations.ListLiveAsync(new LiveFilter(StartedBy: "bot-1"), 10, null, default));
        Assert.Equal(new LiveConversation(a.Id, ChannelKind.WebMessaging, "dep-a", T0, "q1", "spring", "bot-1"), row);
    }

    [ContractFact]
    public async Task ListLive_PagesByIdAfterTheLastOne_EachConversationOnce()
    {
        var store = await CreateStoreAsync();
        var all = new List<string>();
        for (var i = 0; i < 7; i++) all.Add((await LiveAsync(store, "paged")).Id);
        await LiveAsync(store, "elsewhere");

        var seen = new List<string>();
        string? after = null;
        var pages = 0;
        while (true)
        {
            var page = await store.Conversations.ListLiveAsync(new LiveFilter(ChannelId: "paged"), 3, after, default);
            if (page.Count == 0) break;
            pages++;
            Assert.True(page.Count <= 3);
            seen.AddRange(page.Select(p => p.Id));
            after = page[^1].Id;
        }

        Assert.Equal(3, pages);
        Assert.Equal(all.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.Equal(seen.Count, seen.Distinct().Count());
    }

    [ContractFact]
    public async Task TerminationJobs_CreateUpdateRead_OnlyAPendingJobMoves_AndAStartFailsOnlyItsOwnNodesPendingJobs()
    {
        var store = await CreateStoreAsync();
        var by = new Actor("client-1", "user-1", "Ada");
        var first = new TerminationJob(Id(), "PENDING", """{"campaign":"x"}""", "compliance", default, null, by, "node-a", T0);
        var second = first with { Id = Id(), CreatedAt = T0.AddSeconds(1), Reason = null, CreatedBy = new Actor("client-2") };
        var onB = first with { Id = Id(), CreatedAt = T0.AddSeconds(2), NodeId = "node-b" };
        foreach (var j in new[] { first, second, onB }) await store.TerminationJobs.CreateAsync(j, default);

        var counts = new BulkCounts(10, 7, 2, 1, 9, 3);
        Assert.True(await store.TerminationJobs.UpdateAsync(first.Id, "PENDING", counts with { Ended = 5 }, null, null, default));
        Assert.True(await store.TerminationJobs.UpdateAsync(first.Id, "FULFILLED", counts, null, T0.AddSeconds(5), default));
        Assert.False(await store.TerminationJobs.UpdateAsync(first.Id, "FAILED", default, "late", T0.AddSeconds(6), default));
        Assert.Equal(1, await store.TerminationJobs.FailPendingAsync("node-a", "node stopped", T0.AddSeconds(7), default));

        var other = await OpenSecondAsync(store);
        Assert.Equal(first with { State = "FULFILLED", Counts = counts, CompletedAt = T0.AddSeconds(5) }, await other.TerminationJobs.GetAsync(first.Id, default));
        Assert.Equal(second with { State = "FAILED", ErrorMessage = "node stopped", CompletedAt = T0.AddSeconds(7) },
            await other.TerminationJobs.GetAsync(second.Id, default));
        Assert.Equal("PENDING", (await other.TerminationJobs.GetAsync(onB.Id, default))!.State);
        Assert.Null(await other.TerminationJobs.GetAsync(Id(), default));

        var page = await other.TerminationJobs.ListAsync(2, 1, default);
        Assert.Equal(3, page.Total);
        Assert.Equal([onB.Id, second.Id], page.Entities.Select(j => j.Id));
        Assert.Equal([first.Id], (await other.TerminationJobs.ListAsync(2, 2, default)).Entities.Select(j => j.Id));
    }

    [ContractFact]
    public async Task TerminationJobs_AStartWithoutANodeId_FailsEveryPendingJob_AndNoFinishedOne()
    {
        var store = await CreateStoreAsync();
        var by = new Actor("client-1");
        var onA = new TerminationJob(Id(), "PENDING", """{"campaign":"x"}""", null, new BulkCounts(9, 4, 0, 0, 4, 0), null, by, "host-101", T0);
        var onB = onA with { Id = Id(), NodeId = "host-202" };
        var done = onA with { Id = Id(), State = "FULFILLED", CompletedAt = T0.AddSeconds(1) };
        foreach (var j in new[] { onA, onB, done }) await store.TerminationJobs.CreateAsync(j, default);

        Assert.Equal(2, await store.TerminationJobs.FailPendingAsync(null, "server stopped", T0.AddSeconds(7), default));

        foreach (var j in new[] { onA, onB })
            Assert.Equal(j with { State = "FAILED", ErrorMessage = "server stopped", CompletedAt = T0.AddSeconds(7) },
                await store.TerminationJobs.GetAsync(j.Id, default));
        Assert.Equal(done, await store.TerminationJobs.GetAsync(done.Id, default));
    }

    [ContractFact]
    public async Task Audit_SocketCountsOfManyRows_AreWrittenTogether()
    {
        var store = await CreateStoreAsync();
        var ids = new List<string>();
        for (var i = 0; i < 450; i++)   // more than one SQLite statement's worth
        {
            var c = await LiveAsync(store, "audited");
            var end = ConversationMachine.Decide(c, new EndConversation(new Actor("bulk"), EndLever.Bulk, "r"), T0);
            var audit = new TerminationAudit(Id(), c.Id, null, EndLever.Bulk, "bulk", "r", T0, null);
            Assert.True((await store.Conversations.CommitAsync(new Commit(ConversationMachine.ApplyAll(c, end.Events), c.Version, end.Events, Audit: audit), default)).Stored);
            ids.Add(audit.Id);
        }

        await store.Audit.SetSocketsNotifiedAsync([.. ids.Select((id, i) => (id, i % 3))], default);

        var rows = (await store.Audit.ListAsync(null, 500, 1, default)).Entities.ToDictionary(a => a.Id, a => a.SocketsNotified);
        Assert.Equal(ids.Select((_, i) => (int?)(i % 3)), ids.Select(id => rows[id]));
        Assert.Empty(await store.Conversations.ListLiveAsync(new LiveFilter(ChannelId: "audited"), 10, null, default));
    }
}
