using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>Termination receipts (docs/ending-sessions.md "Receipts"), as every adapter must keep them.</summary>
public abstract partial class ConversationStoreContract
{
    /// <summary>An open messaging conversation ended with its audit row and <paramref name="notices"/> end notices in one commit.</summary>
    static async Task<(Conversation Ended, TerminationAudit Audit, List<OutboxItem> Notices)> EndWithNoticesAsync(StoragePorts store, int notices)
    {
        var (c, _) = await CreateWithDeliveriesAsync(store, "https://a.example", 1);   // a message delivery: told of no termination
        var end = ConversationMachine.Decide(c, new EndConversation(new Actor("client-1"), EndLever.ConversationDisconnect, "why"), T0.AddSeconds(1));
        var audit = new TerminationAudit(Id(), c.Id, null, EndLever.ConversationDisconnect, "client-1", "why", T0.AddSeconds(1), null);
        var items = Enumerable.Range(0, notices).Select(i => new OutboxItem(Id(), "https://a.example", Id(), c.Id, [(byte)i], T0.AddSeconds(1))).ToList();
        var after = ConversationMachine.ApplyAll(c, end.Events);
        Assert.True((await store.Conversations.CommitAsync(new Commit(after, c.Version, end.Events, Audit: audit, Outbox: [.. items]), default)).Stored);
        return (after, audit, items);
    }

    [ContractFact]
    public async Task Receipts_EndNoticesAreLinkedToTheirTermination_InItsCommit_AndReadLiveFromTheOutbox()
    {
        var store = await CreateStoreAsync();
        var (ended, audit, notices) = await EndWithNoticesAsync(store, 2);

        Assert.Equal(audit, await store.Receipts.GetAuditAsync(audit.Id, default));
        Assert.Null(await store.Receipts.GetAuditAsync(Id(), default));
        var linked = await store.Receipts.ListChannelDeliveriesAsync(audit.Id, default);
        Assert.Equal(notices.Select(n => n.Id), linked.Select(d => d.Item.Id));   // oldest first
        Assert.All(linked, d => Assert.Equal((DeliveryState.Pending, 0), (d.State, d.Attempts)));
        Assert.Equal(audit.Id, await store.Receipts.TerminationOfDeliveryAsync(notices[1].Id, default));
        var message = (await store.Outbox.ListDeliveriesAsync(DeliveryState.Pending, null, 25, 1, default)).Entities
            .Single(d => d.Item.ConversationId == ended.Id && notices.All(n => n.Id != d.Item.Id));
        Assert.Null(await store.Receipts.TerminationOfDeliveryAsync(message.Item.Id, default));

        // Read live: the outbox's own outcome, as the relay records it.
        await store.Outbox.MarkDeliveredAsync(notices[0].Id, 204, T0.AddSeconds(2), default);
        await store.Outbox.MarkDeadAsync(notices[1].Id, 3, 500, "gave up", default);
        var now = await store.Receipts.ListChannelDeliveriesAsync(audit.Id, default);
        Assert.Equal((DeliveryState.Delivered, 1, 204, T0.AddSeconds(2)), (now[0].State, now[0].Attempts, now[0].LastStatus, now[0].DeliveredAt));
        Assert.Equal((DeliveryState.Dead, 3, 500, "gave up"), (now[1].State, now[1].Attempts, now[1].LastStatus, now[1].LastError));
    }

    [ContractFact]
    public async Task Receipts_ARefusedCommit_LinksNothing()
    {
        var store = await CreateStoreAsync();
        var (c, _) = await CreateWithDeliveriesAsync(store, "https://a.example", 1);
        var end = ConversationMachine.Decide(c, new EndConversation(new Actor("client-1"), EndLever.ConversationDisconnect, null), T0);
        var audit = new TerminationAudit(Id(), c.Id, null, EndLever.ConversationDisconnect, "client-1", null, T0, null);
        var notice = new OutboxItem(Id(), "https://a.example", Id(), c.Id, [1], T0);

        var refused = await store.Conversations.CommitAsync(
            new Commit(ConversationMachine.ApplyAll(c, end.Events), c.Version + 5, end.Events, Audit: audit, Outbox: [notice]), default);

        Assert.False(refused.Stored);
        Assert.Null(await store.Receipts.GetAuditAsync(audit.Id, default));
        Assert.Empty(await store.Receipts.ListChannelDeliveriesAsync(audit.Id, default));
        Assert.Null(await store.Receipts.TerminationOfDeliveryAsync(notice.Id, default));
    }

    [ContractFact]
    public async Task Receipts_SocketRows_OneBatchFromEachNode_ReadTogether_ARowRecordedTwiceKeepsTheFirst()
    {
        var store = await CreateStoreAsync();
        var other = await OpenSecondAsync(store);
        var (ended, audit, _) = await EndWithNoticesAsync(store, 0);
        var onA = Enumerable.Range(0, 500).Select(i =>
            new SocketReceipt(audit.Id, ended.Id, "node-a", $"s{i:D3}", i % 100 != 7, T0.AddMilliseconds(i), i % 100 == 7 ? "cut off" : null)).ToList();
        var onB = new[] { new SocketReceipt(audit.Id, ended.Id, "node-b", "s000", true, T0, null) };

        await Task.WhenAll(store.Receipts.RecordSocketsAsync(onA, default), other.Receipts.RecordSocketsAsync(onB, default));
        await store.Receipts.RecordSocketsAsync([onA[0] with { Delivered = false, Error = "again" }], default);
        await store.Receipts.RecordSocketsAsync([], default);

        var reopened = await ReopenAsync(store);
        var rows = await reopened.Receipts.ListSocketsAsync(audit.Id, default);
        Assert.Equal(501, rows.Count);
        Assert.Equal(onA.Concat(onB).OrderBy(r => r.NodeId).ThenBy(r => r.At).ThenBy(r => r.SocketId, StringComparer.Ordinal), rows);
        Assert.Equal(5, rows.Count(r => !r.Delivered));
        Assert.Empty(await reopened.Receipts.ListSocketsAsync(Id(), default));
    }
}
