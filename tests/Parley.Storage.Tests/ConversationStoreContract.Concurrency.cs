using System.Collections.Concurrent;
using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>
/// The store contract under racing writers: sequence numbers, no message after the end, first writer wins. Every race
/// runs from parallel tasks on one store and again from two store instances on one database (two nodes).
/// </summary>
public abstract partial class ConversationStoreContract
{
    [ContractFact]
    public async Task Sequence_IsAssignedByTheCommit_DenseFromOne_AndOrdersHistoryAndActivity()
    {
        var store = await CreateStoreAsync();
        var (_, c) = await CreateConversationAsync(store, inactivity: TimeSpan.FromMinutes(1));

        // Two messages in one commit take two numbers, in the order of the commit's events.
        var first = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "two", [], null), T0.AddSeconds(30));
        var second = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "three", [], null), T0.AddSeconds(30));
        var both = first.Events.AddRange(second.Events);
        Assert.Equal(CommitResult.StoredAt(3), await store.Conversations.CommitAsync(new Commit(c, c.Version, both), default));
        // A later message with an earlier clock still goes after them: order is the commit's, not the timestamp's.
        Assert.Equal(CommitResult.StoredAt(4), await store.Conversations.CommitAsync(Append(c, "four", T0.AddSeconds(10)), default));

        var history = await store.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
        Assert.Equal([(4L, "four"), (3L, "three"), (2L, "two"), (1L, "hello")], history.Entities.Select(m => (m.Sequence, m.Text!)));
        var page2 = await store.Conversations.ListMessagesAsync(c.Id, 3, 2, default);
        Assert.Equal([1L], page2.Entities.Select(m => m.Sequence));
        Assert.Equal(3, (await store.Conversations.GetMessageAsync(history.Entities[1].Id, default))!.Sequence);
        // Activity is the latest message time, whatever its sequence (the one an end may not precede): the conversation is
        // idle a minute after it, not a minute after the last-numbered message's earlier clock.
        Assert.Equal(T0.AddSeconds(30), await store.Conversations.LastActivityAsync(c.Id, default));
        Assert.DoesNotContain(c.Id, await store.Conversations.ListIdleAsync(T0.AddSeconds(70), 100, default));
        Assert.Contains(c.Id, await store.Conversations.ListIdleAsync(T0.AddSeconds(90), 100, default));

        // The end takes no number; a state change that carries none leaves the counter where it was. Decided at T0, it is
        // stamped at the latest message's time.
        Assert.Equal(CommitResult.StoredAt(4, T0.AddSeconds(30)), await store.Conversations.CommitAsync(End(c), default));
    }

    [ContractFact]
    public Task AppendsRacingATermination_OneStore_NothingStoredAfterTheEnd_SequencesDense() => AppendsRaceTerminationAsync(twoNodes: false);

    [ContractFact]
    public Task AppendsRacingATermination_TwoStoresOnOneDatabase_NothingStoredAfterTheEnd_SequencesDense() => AppendsRaceTerminationAsync(twoNodes: true);

    /// <summary>Trials per race; PARLEY_RACE_TRIALS raises it for a longer run (the counts are in docs/storage.md).</summary>
    static readonly int RaceTrials = int.TryParse(Environment.GetEnvironmentVariable("PARLEY_RACE_TRIALS"), out var n) && n > 0 ? n : 12;
    const int Appenders = 8;

    async Task AppendsRaceTerminationAsync(bool twoNodes)
    {
        var a = await CreateStoreAsync();
        var b = twoNodes ? await OpenSecondAsync(a) : a;
        var afterEnd = 0;
        var refused = 0;
        for (var trial = 0; trial < RaceTrials; trial++)
        {
            var (_, c) = await CreateConversationAsync(a);
            var appended = new ConcurrentBag<long>();
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var someStored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            // Each appender keeps appending (decided on the live state) until the store refuses: appends are in flight
            // before, while and after the end commits.
            var appenders = Enumerable.Range(0, Appenders).Select(i => Task.Run(async () =>
            {
                await go.Task;
                var store = i % 2 == 0 ? a : b;
                // Bounded, because one instance's writer can hold the file while the other's waits: the end may come
                // late, and then some appenders finish first. Enough of them are still going when it lands (see refused).
                for (var n = 0; n < 1000; n++)
                {
                    var result = await store.Conversations.CommitAsync(Append(c, $"m{i}-{n}"), default);
                    if (!result.Stored) { Interlocked.Increment(ref refused); return; }
                    appended.Add(result.LastSequence);
                    if (appended.Count >= Appenders) someStored.TrySetResult();
                }
            })).ToList();
            var ender = Task.Run(async () =>
            {
                await someStored.Task;
                return await (trial % 2 == 0 ? b : a).Conversations.CommitAsync(End(c), default);
            });
            go.SetResult();
            await Task.WhenAll(appenders).WaitAsync(TimeSpan.FromSeconds(30));
            var end = await ender.WaitAsync(TimeSpan.FromSeconds(30));

            Assert.True(end.Stored);
            var stored = await a.Conversations.ListMessagesAsync(c.Id, 10_000, 1, default);
            var sequences = stored.Entities.Select(m => m.Sequence).OrderBy(s => s).ToList();
            // Dense and unique from 1, and each acknowledged append holds the number it was told.
            Assert.Equal(Enumerable.Range(1, sequences.Count).Select(i => (long)i), sequences);
            Assert.Equal(sequences.Skip(1), appended.OrderBy(s => s));
            // The end saw the counter at its commit: every stored message is at or below it.
            afterEnd += sequences.Count(s => s > end.LastSequence);
            Assert.Equal(end.LastSequence, sequences[^1]);
            // And once ended, nothing more goes in, on either store.
            Assert.False((await a.Conversations.CommitAsync(Append(c, "late"), default)).Stored);
            Assert.False((await b.Conversations.CommitAsync(Append(c, "late"), default)).Stored);
        }
        Console.WriteLine($"{GetType().Name} race (twoNodes={twoNodes}): {RaceTrials} trials, {refused} appends refused after the end, {afterEnd} stored after it");
        Assert.Equal(0, afterEnd);
        // The race took place: appends were in flight when the end committed, and the store refused them.
        Assert.True(refused > 0, "No append ever raced the end.");
    }

    [ContractFact]
    public Task TerminationsRacing_OneStore_ExactlyOneWins() => TerminationsRaceAsync(twoNodes: false);

    [ContractFact]
    public Task TerminationsRacing_TwoStoresOnOneDatabase_ExactlyOneWins() => TerminationsRaceAsync(twoNodes: true);

    async Task TerminationsRaceAsync(bool twoNodes)
    {
        var a = await CreateStoreAsync();
        var b = twoNodes ? await OpenSecondAsync(a) : a;
        var (_, c) = await CreateConversationAsync(a);
        var audits = Enumerable.Range(0, 8).Select(_ => new TerminationAudit(Id(), c.Id, null, EndLever.ConversationDisconnect, "x", null, T0, null)).ToList();

        var results = await Task.WhenAll(audits.Select((audit, i) => Task.Run(() =>
            (i % 2 == 0 ? a : b).Conversations.CommitAsync(End(c) with { Audit = audit }, default))));

        Assert.Single(results, r => r.Stored);
        // Only the winner's audit row was kept: the losers wrote nothing.
        Assert.Single((await a.Audit.ListAsync(c.Id, 25, 1, default)).Entities);
    }

    [ContractFact]
    public async Task SessionCreatedTwiceAtOnce_OnTwoStores_IsOneSession()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        var tokenHash = Id();

        var created = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() =>
            (i % 2 == 0 ? a : b).Sessions.CreateAsync(new GuestSession(Id(), tokenHash, "dep", null, T0), default))));

        Assert.Single(created.Select(s => s.Id).Distinct());
        Assert.Equal(created[0].Id, (await a.Sessions.FindByTokenHashAsync(tokenHash, default))!.Id);
    }

    [ContractFact]
    public async Task ConversationsStartedForOneSessionAtOnce_OnTwoStores_OnlyOneIsStored()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        var session = await a.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);

        var starts = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            var c = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", session.Id, DisconnectMode.ReadOnly,
                MessageDirection.Inbound, "Guest", "Bot", Id, T0);
            var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "hi", [], null), T0);
            var result = await (i % 2 == 0 ? a : b).Conversations.CommitAsync(
                new Commit(c, 0, add.Events, new SessionMove(session.Id, null, c.Id)), default);
            return (c.Id, result.Stored);
        })));

        var winner = Assert.Single(starts, s => s.Stored);
        Assert.Equal(winner.Id, (await b.Sessions.GetAsync(session.Id, default))!.ConversationId);
        foreach (var loser in starts.Where(s => !s.Stored)) Assert.Null(await a.Conversations.LoadAsync(loser.Id, default));
    }

    [ContractFact]
    public async Task ExternalKey_IsStoredOnce_ADuplicateFailsWholly_EvenPostedAtOnceOnTwoStores()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        var (_, c) = await CreateConversationAsync(a, ChannelKind.Open);
        var key = "ext-" + Id();

        var attempts = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
        {
            try { return (await (i % 2 == 0 ? a : b).Conversations.CommitAsync(Append(c, $"copy {i}", externalKey: key), default)).Stored; }
            catch (DuplicateMessageException e) when (e.ExternalKey == key) { return false; }
        })));

        Assert.Single(attempts, stored => stored);
        var found = (await b.Conversations.FindByExternalKeyAsync(key, default))!;
        Assert.Equal((c.Id, 2L), (found.ConversationId, found.Sequence));
        Assert.Null(await a.Conversations.FindByExternalKeyAsync("ext-unknown", default));
        // The duplicates left no trace, not even a number: the next message is 3.
        Assert.Equal(2, (await a.Conversations.ListMessagesAsync(c.Id, 25, 1, default)).Total);
        Assert.Equal(CommitResult.StoredAt(3), await a.Conversations.CommitAsync(Append(c, "next"), default));
    }

    [ContractFact]
    public async Task ListIdle_HoldsLiveConversationsPastTheirTimeoutOnly()
    {
        var store = await CreateStoreAsync();
        var minute = TimeSpan.FromMinutes(1);
        var (_, quiet) = await CreateConversationAsync(store, inactivity: minute);
        var (_, chatty) = await CreateConversationAsync(store, inactivity: minute);
        var (_, ended) = await CreateConversationAsync(store, inactivity: minute);
        var (_, untimed) = await CreateConversationAsync(store);
        await store.Conversations.CommitAsync(Append(chatty, "still here", T0.AddSeconds(50)), default);
        await store.Conversations.CommitAsync(End(ended), default);

        Assert.Empty(await store.Conversations.ListIdleAsync(T0.AddSeconds(59), 100, default));
        Assert.Equal([quiet.Id], await store.Conversations.ListIdleAsync(T0.AddSeconds(60), 100, default));
        Assert.Equal(new[] { chatty.Id, quiet.Id }.Order(), (await store.Conversations.ListIdleAsync(T0.AddSeconds(110), 100, default)).Order());
        Assert.Single(await store.Conversations.ListIdleAsync(T0.AddSeconds(110), 1, default));
        Assert.DoesNotContain(untimed.Id, await store.Conversations.ListIdleAsync(T0.AddDays(1), 100, default));
        Assert.Equal(T0.AddSeconds(50), await store.Conversations.LastActivityAsync(chatty.Id, default));
        Assert.Null(await store.Conversations.LastActivityAsync("no-such-conversation", default));
    }
}
