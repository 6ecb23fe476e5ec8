using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

/// <summary>
/// Parley:Storage:Durability reaches SQLite (docs/durability.md): the writer connection's <c>PRAGMA synchronous</c> read
/// back at each level, and at <c>interval</c> the fsync of the log that follows a commit.
/// </summary>
public sealed class SqliteDurabilityTests : IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-durability-" + Guid.NewGuid().ToString("N"));
    readonly List<SqliteStore> _open = [];
    static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_000);
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    string DbPath => Path.Combine(_dir, "parley.db");

    async Task<SqliteStore> OpenAsync(Durability durability)
    {
        var store = await SqliteStore.OpenAsync(DbPath, null, SqliteStore.DefaultNodeId, durability);
        _open.Add(store);
        return store;
    }

    async Task CloseAsync(SqliteStore store)
    {
        _open.Remove(store);
        await store.DisposeAsync();
    }

    static string Id() => Guid.NewGuid().ToString();

    /// <summary>A conversation with its first guest message, committed.</summary>
    static async Task<Conversation> StartConversationAsync(StoragePorts store, string text)
    {
        var session = await store.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);
        var c = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0, null);
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, text, [], null), T0);
        var after = ConversationMachine.ApplyAll(c, add.Events);
        Assert.True((await store.Conversations.CommitAsync(new Commit(after, 0, add.Events, new SessionMove(session.Id, null, after.Id)), default)).Stored);
        return after;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _open) await s.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Full_IsTheDefault_AndRunsTheWriterWithSynchronousFull()
    {
        var store = await SqliteStore.OpenAsync(DbPath);
        _open.Add(store);

        Assert.Equal(DurabilityLevel.Full, store.Durability.Level);
        Assert.Equal(2, await store.ReadSynchronousAsync());   // FULL: the WAL fsynced at every COMMIT
        Assert.Equal(2, await store.ReadTempStoreAsync());     // MEMORY: a savepoint's journal never spills to a file
        await StartConversationAsync(store.Ports, "hello");
        Assert.Equal(0, store.IntervalFsyncs);
        await store.WhenCommitsOnDiskAsync().WaitAsync(Timeout);   // each commit already is
    }

    [Theory]
    [InlineData(DurabilityLevel.Full)]
    [InlineData(DurabilityLevel.Os)]
    public async Task TheWriterCheckpointsTheLogBetweenGroups_NotInsideACommit_AndRestartsIt(DurabilityLevel level)
    {
        var store = await OpenAsync(new Durability(level, Durability.DefaultFsyncInterval));
        Assert.Equal(0, await store.ReadAutoCheckpointAsync());   // SQLite's own, inside the COMMIT past 1,000 pages, is off

        // Past the threshold (each conversation's commit logs a few pages).
        var started = new List<(Conversation Conversation, string Text)>();
        while (store.WalCheckpoints == 0 && started.Count < 5_000)
        {
            var text = $"message {started.Count}";
            started.Add((await StartConversationAsync(store.Ports, text), text));
        }
        Assert.True(store.WalCheckpoints >= 1, $"no checkpoint after {started.Count} commits (log at {store.WalPages} pages)");
        // The checkpoint ran as soon as a group took the log past the threshold. (Read from the store: a size sampled here
        // after each commit can miss the crossing one, when the checkpoint has already run behind it.)
        Assert.InRange(store.WalPagesAtLastCheckpoint, 1000, 1200);

        // The next commit restarted the log from its start (the checkpoint copied every page: no reader held one back).
        started.Add((await StartConversationAsync(store.Ports, "after the checkpoint"), "after the checkpoint"));
        Assert.InRange(store.WalPages, 1, 100);

        // Everything acknowledged is there for the next open, whichever of log and database holds it.
        await CloseAsync(store);
        var again = await OpenAsync(Durability.Full);
        foreach (var (c, text) in started)
            Assert.Equal(text, (await again.Ports.Conversations.ListMessagesAsync(c.Id, 25, 1, default)).Entities.Single().Text);
    }

    [Fact]
    public async Task AWriterLoopThatStops_FailsTheQueuedAndEveryLaterWrite_AsUnavailable_AndKeepsWhatItCommitted()
    {
        var store = await OpenAsync(Durability.Full);
        var before = await StartConversationAsync(store.Ports, "before the defect");
        Assert.Null(store.Ports.WriteFault());

        // A defect outside any write's own error handling, once a group has its answers: the loop ends there.
        using var entered = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        var armed = 0;
        store.AfterWriterGroup = () =>
        {
            if (Interlocked.Exchange(ref armed, 0) == 0) return;
            entered.Release();
            release.Wait();
            throw new InvalidOperationException("a defect in the writer's loop");
        };
        Volatile.Write(ref armed, 1);
        var last = new GuestSession(Id(), Id(), "dep", null, T0);
        var lastWrite = store.Ports.Sessions.CreateAsync(last, default);
        Assert.True(await entered.WaitAsync(Timeout));
        var queued = store.Ports.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);   // waits behind the defect
        release.Release();

        await lastWrite.WaitAsync(Timeout);   // its group had committed and answered before the loop ended
        var fault = await Assert.ThrowsAsync<StoreUnavailableException>(() => queued.WaitAsync(Timeout));
        Assert.Contains("writer stopped", fault.Message);
        Assert.IsType<InvalidOperationException>(fault.InnerException);
        // A later write fails at once rather than queueing for ever, and the ports say why (the readiness check reads it).
        await Assert.ThrowsAsync<StoreUnavailableException>(() => StartConversationAsync(store.Ports, "after").WaitAsync(Timeout));
        Assert.Equal("a defect in the writer's loop", store.Ports.WriteFault()?.Message);

        // Reads still answer; what was committed is in the file for the next open.
        Assert.NotNull(await store.Ports.Sessions.GetAsync(last.Id, default));
        await CloseAsync(store);
        var again = await OpenAsync(Durability.Full);
        Assert.Null(again.Ports.WriteFault());
        Assert.NotNull(await again.Ports.Sessions.GetAsync(last.Id, default));
        Assert.Equal("before the defect", (await again.Ports.Conversations.ListMessagesAsync(before.Id, 25, 1, default)).Entities.Single().Text);
        await StartConversationAsync(again.Ports, "after a restart");
    }

    [Fact]
    public async Task Os_RunsTheWriterWithSynchronousNormal_AndNeverFsyncsACommitOnItsOwn()
    {
        var store = await OpenAsync(new Durability(DurabilityLevel.Os, Durability.DefaultFsyncInterval));

        Assert.Equal(1, await store.ReadSynchronousAsync());   // NORMAL: the WAL fsynced before checkpoints only
        var c = await StartConversationAsync(store.Ports, "kept by the OS");
        Assert.Equal(0, store.IntervalFsyncs);
        await Assert.ThrowsAsync<InvalidOperationException>(() => store.WhenCommitsOnDiskAsync());

        // What was acknowledged is in the file for the next open (the process ended, the OS did not).
        await CloseAsync(store);
        var again = await OpenAsync(Durability.Full);
        Assert.Equal(2, await again.ReadSynchronousAsync());
        var history = await again.Ports.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
        Assert.Equal("kept by the OS", Assert.Single(history.Entities).Text);
    }

    [Fact]
    public async Task Interval_RunsTheWriterWithSynchronousNormal_AndFsyncsTheWalAfterACommit()
    {
        var store = await OpenAsync(new Durability(DurabilityLevel.Interval, TimeSpan.FromMilliseconds(10)));

        Assert.Equal(1, await store.ReadSynchronousAsync());
        await StartConversationAsync(store.Ports, "fsynced within the interval");
        await store.WhenCommitsOnDiskAsync().WaitAsync(Timeout);
        var afterFirst = store.IntervalFsyncs;
        Assert.True(afterFirst >= 1, $"{afterFirst} fsyncs");

        // Each later commit is followed by another fsync.
        await StartConversationAsync(store.Ports, "and the next");
        await store.WhenCommitsOnDiskAsync().WaitAsync(Timeout);
        Assert.True(store.IntervalFsyncs > afterFirst, $"{store.IntervalFsyncs} fsyncs after {afterFirst}");
    }

    [Fact]
    public async Task InMemory_IgnoresTheLevel()
    {
        await using var store = await SqliteStore.OpenInMemoryAsync(null);
        Assert.Equal(DurabilityLevel.Full, store.Durability.Level);
        Assert.Equal(0, store.IntervalFsyncs);
    }
}
