using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>
/// <see cref="IConversationStore.CommitManyAsync"/>, a bulk termination's chunk: each commit guarded and atomic on its own,
/// a refused one writing nothing while the others are stored, with their audit rows, and durable.
/// </summary>
public abstract partial class ConversationStoreContract
{
    [ContractFact]
    public async Task CommitMany_StoresEachEndWithItsAudit_AndRefusesAStaleOneAlone_WithNothingOfItKept()
    {
        var store = await CreateStoreAsync();
        var (_, a) = await CreateConversationAsync(store);
        var (_, stale) = await CreateConversationAsync(store);
        var (_, b) = await CreateConversationAsync(store);
        // Another writer (another node) ends one first: the chunk decided on its older version must lose it alone.
        Assert.True((await store.Conversations.CommitAsync(End(stale), default)).Stored);

        Commit Audited(Conversation c)
        {
            var end = End(c, T0.AddSeconds(1));
            return end with { Audit = new TerminationAudit(Id(), c.Id, null, EndLever.Bulk, "bulk-client", "chunk", T0.AddSeconds(1), null) };
        }
        var results = await store.Conversations.CommitManyAsync([Audited(a), Audited(stale), Audited(b)], default);

        Assert.Equal([true, false, true], results.Select(r => r.Stored));
        var reopened = await ReopenAsync(store);
        foreach (var c in new[] { a, b })
        {
            var loaded = (await reopened.Conversations.LoadAsync(c.Id, default))!;
            Assert.True(loaded.IsEnded);
            Assert.Equal(T0.AddSeconds(1), loaded.EndTime);
            Assert.All(loaded.Participants, p => Assert.Equal(ParticipantState.Disconnected, p.State));
            Assert.Equal(("bulk-client", "chunk"), Assert.Single((await reopened.Audit.ListAsync(c.Id, 25, 1, default)).Entities) is var r
                ? (r.ClientId, r.Reason) : default);
        }
        var lost = (await reopened.Conversations.LoadAsync(stale.Id, default))!;
        Assert.Equal(T0, lost.EndTime);   // the first end's, untouched
        Assert.Empty((await reopened.Audit.ListAsync(stale.Id, 25, 1, default)).Entities);
    }

    [ContractFact]
    public async Task CommitMany_OneThatFailsAfterWriting_IsLostAlone_AndTheOthersAreStored()
    {
        var store = await CreateStoreAsync();
        var (_, a) = await CreateConversationAsync(store);
        var (_, failing) = await CreateConversationAsync(store);
        var (_, b) = await CreateConversationAsync(store);
        var (_, other) = await CreateConversationAsync(store);
        Assert.True((await store.Conversations.CommitAsync(Append(other, "first", externalKey: "ext-taken"), default)).Stored);
        var failingBefore = (await store.Conversations.ListMessagesAsync(failing.Id, 25, 1, default)).Total;

        // Its conversation row is written before its message, whose channel key is taken: it fails part-way.
        var results = await store.Conversations.CommitManyAsync(
            [End(a, T0.AddSeconds(1)), Append(failing, "copy", T0.AddSeconds(1), externalKey: "ext-taken"), End(b, T0.AddSeconds(1))], default);

        Assert.Equal([true, false, true], results.Select(r => r.Stored));
        var reopened = await ReopenAsync(store);
        Assert.True((await reopened.Conversations.LoadAsync(a.Id, default))!.IsEnded);
        Assert.True((await reopened.Conversations.LoadAsync(b.Id, default))!.IsEnded);
        Assert.Equal(failingBefore, (await reopened.Conversations.ListMessagesAsync(failing.Id, 25, 1, default)).Total);
        // Nothing of it kept: the next message on it takes the next number, as if the failed one never ran.
        var next = await reopened.Conversations.CommitAsync(Append((await reopened.Conversations.LoadAsync(failing.Id, default))!, "next"), default);
        Assert.True(next.Stored);
        Assert.Equal(failingBefore + 1, next.LastSequence);
    }

    [ContractFact]
    public async Task CommitMany_AChunkOfItsFullSize_LosesTheOneThatFailsPartWay_AndKeepsTheRest()
    {
        // A chunk as a bulk termination writes it (256 ends): its pages are far more than SQLite keeps of a savepoint's
        // journal in memory by default, and the one that fails in the middle must roll back alone all the same.
        var store = await CreateStoreAsync();
        var ends = new List<Conversation>();
        for (var i = 0; i < 256; i++) ends.Add((await CreateConversationAsync(store)).Conversation);
        var (_, failing) = await CreateConversationAsync(store);
        var (_, other) = await CreateConversationAsync(store);
        Assert.True((await store.Conversations.CommitAsync(Append(other, "first", externalKey: "ext-big"), default)).Stored);
        var failingBefore = (await store.Conversations.ListMessagesAsync(failing.Id, 25, 1, default)).Total;

        List<Commit> chunk = [.. ends.Take(128).Select(c => End(c, T0.AddSeconds(1)))];
        chunk.Add(Append(failing, "copy", T0.AddSeconds(1), externalKey: "ext-big"));
        chunk.AddRange(ends.Skip(128).Select(c => End(c, T0.AddSeconds(1))));
        var results = await store.Conversations.CommitManyAsync(chunk, default);

        Assert.Equal(256, results.Count(r => r.Stored));
        Assert.False(results[128].Stored);
        var reopened = await ReopenAsync(store);
        foreach (var c in ends) Assert.True((await reopened.Conversations.LoadAsync(c.Id, default))!.IsEnded, c.Id);
        Assert.Equal(failingBefore, (await reopened.Conversations.ListMessagesAsync(failing.Id, 25, 1, default)).Total);
        Assert.False((await reopened.Conversations.LoadAsync(failing.Id, default))!.IsEnded);
    }
}
