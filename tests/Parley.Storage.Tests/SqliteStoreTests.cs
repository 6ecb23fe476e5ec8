using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

public sealed class SqliteStoreTests : ConversationStoreContract, IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-store-" + Guid.NewGuid().ToString("N"));
    readonly List<SqliteStore> _open = [];

    string DbPath => Path.Combine(_dir, "parley.db");

    /// <summary>The open store whose ports these are.</summary>
    SqliteStore Opened(StoragePorts ports) => _open.Single(s => ReferenceEquals(s.Ports, ports));

    async Task<SqliteStore> OpenAsync(string node = "node-a")
    {
        var store = await SqliteStore.OpenAsync(DbPath, null, node);
        _open.Add(store);
        return store;
    }

    protected override async Task<StoragePorts> CreateStoreAsync() => (await OpenAsync()).Ports;

    protected override async Task<StoragePorts> ReopenAsync(StoragePorts store)
    {
        var sqlite = Opened(store);
        await sqlite.DisposeAsync();
        _open.Remove(sqlite);
        return await CreateStoreAsync();
    }

    // Each SqliteStore has its own writer connection: two of them on one file are two writers, as two nodes would be
    // (each with its own node id, which owns its outbox leases).
    protected override async Task<StoragePorts> OpenSecondAsync(StoragePorts store) => (await OpenAsync("node-b-" + _open.Count)).Ports;

    [Fact]
    public async Task AGroupOfMessages_WithoutSavepoints_LosesOnlyTheOneThatFailsPartWay()
    {
        var sqlite = await OpenAsync();
        var store = sqlite.Ports;
        var (_, a) = await CreateConversationAsync(store);
        var (_, failing) = await CreateConversationAsync(store);
        var (_, b) = await CreateConversationAsync(store);
        var (_, other) = await CreateConversationAsync(store);
        Assert.True((await store.Conversations.CommitAsync(Append(other, "first", externalKey: "ext-taken"), default)).Stored);

        // The writer is held inside a self-contained write of its own, so that the three messages below are queued meanwhile
        // and join its group (self-contained writes: no savepoint each). The second one's conversation row is written
        // before its message, whose channel key is taken: it fails part-way, and the group is redone from its start with
        // a savepoint per write (the holding write too, which holds only once).
        using var held = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        var hold = 1;
        var runs = 0;
        var holding = sqlite.Database.WriteAsync(_ =>
        {
            Interlocked.Increment(ref runs);
            if (Interlocked.Exchange(ref hold, 0) == 1) { held.Release(); release.Wait(); }
            return Task.FromResult(true);
        }, default, selfContained: true);
        Task<CommitResult>[] writes;
        try
        {
            Assert.True(await held.WaitAsync(TimeSpan.FromSeconds(10)), "the writer did not reach its hold");
            writes = [.. new[] { Append(a, "one"), Append(failing, "copy", externalKey: "ext-taken"), Append(b, "two") }
                .Select(c => store.Conversations.CommitAsync(c, default))];
        }
        finally { release.Release(); }
        Assert.True(await holding);

        Assert.Equal(CommitResult.StoredAt(2), await writes[0]);
        await Assert.ThrowsAsync<DuplicateMessageException>(() => writes[1]);
        Assert.Equal(CommitResult.StoredAt(2), await writes[2]);
        Assert.Equal(2, Volatile.Read(ref runs));   // one group, redone once from its start
        var reopened = await ReopenAsync(store);   // newest first
        Assert.Equal(["one", "hello"], (await reopened.Conversations.ListMessagesAsync(a.Id, 25, 1, default)).Entities.Select(m => m.Text));
        Assert.Equal(["two", "hello"], (await reopened.Conversations.ListMessagesAsync(b.Id, 25, 1, default)).Entities.Select(m => m.Text));
        Assert.Equal(["hello"], (await reopened.Conversations.ListMessagesAsync(failing.Id, 25, 1, default)).Entities.Select(m => m.Text));
        // Nothing of it kept: its conversation's next message takes the next number, as if the failed one never ran.
        var next = await reopened.Conversations.CommitAsync(Append((await reopened.Conversations.LoadAsync(failing.Id, default))!, "next"), default);
        Assert.Equal(CommitResult.StoredAt(2), next);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _open) await s.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Open_SetsWalMode_AndAppliesEachMigrationOnce()
    {
        var store = await CreateStoreAsync();
        await ReopenAsync(store);

        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DbPath};Pooling=false");
        await c.OpenAsync();
        await using var mode = c.CreateCommand();
        mode.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await mode.ExecuteScalarAsync());
        await using var versions = c.CreateCommand();
        versions.CommandText = "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version";
        await using var r = await versions.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(r.GetInt64(0), r.GetInt64(1));
        Assert.True(r.GetInt64(0) >= 1);
    }

    [Fact]
    public async Task Open_KeepsTheFolderAndEveryDatabaseFile_OwnerOnly()
    {
        if (OperatingSystem.IsWindows()) return;
        await CreateStoreAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, new DirectoryInfo(_dir).UnixFileMode);
        foreach (var file in new[] { DbPath, DbPath + "-wal", DbPath + "-shm" })
            Assert.Equal((file, UnixFileMode.UserRead | UnixFileMode.UserWrite), (file, File.GetUnixFileMode(file)));
    }

    [Fact]
    public async Task Open_TightensAFolderAndFilesThatAnOlderStartLeftReadable()
    {
        if (OperatingSystem.IsWindows()) return;
        var store = await OpenAsync();
        await store.DisposeAsync();
        _open.Remove(store);
        const UnixFileMode everyoneReads = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        new DirectoryInfo(_dir).UnixFileMode = everyoneReads | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        File.SetUnixFileMode(DbPath, everyoneReads);
        File.WriteAllBytes(DbPath + "-shm", []);   // as a crashed run may leave it
        File.SetUnixFileMode(DbPath + "-shm", everyoneReads);

        await CreateStoreAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, new DirectoryInfo(_dir).UnixFileMode);
        foreach (var file in new[] { DbPath, DbPath + "-wal", DbPath + "-shm" })
            Assert.Equal((file, UnixFileMode.UserRead | UnixFileMode.UserWrite), (file, File.GetUnixFileMode(file)));
    }
    [Fact]
    public async Task SequenceMigration_NumbersExistingMessagesInCommitOrder_PerConversation_AndCountersContinue()
    {
        // Two conversations whose messages interleave in the file, as a store before the sequence held them.
        var store = await CreateStoreAsync();
        var conversations = new List<Conversation>();
        for (var i = 0; i < 2; i++)
        {
            var c = ConversationMachine.Start(Guid.NewGuid().ToString(), ChannelKind.WebMessaging, "dep", "s" + i, DisconnectMode.ReadOnly,
                MessageDirection.Inbound, "Guest", "Bot", () => Guid.NewGuid().ToString(), DateTimeOffset.UnixEpoch);
            Assert.True((await store.Conversations.CommitAsync(new Commit(c, 0, []), default)).Stored);
            conversations.Add(c);
        }
        var texts = new List<(string Conversation, string Text)>();
        for (var n = 0; n < 6; n++)
        {
            var c = conversations[n % 2 == 0 || n == 5 ? 0 : 1];
            var add = ConversationMachine.Decide(c, new AddMessage(Guid.NewGuid().ToString(), c.Customer.Id, MessageKind.Text, $"t{n}", [], null),
                DateTimeOffset.UnixEpoch.AddSeconds(100 - n));   // clocks running backwards: only commit order counts
            await store.Conversations.CommitAsync(new Commit(c, c.Version, add.Events), default);
            texts.Add((c.Id, $"t{n}"));
        }
        await RewindSchemaAsync(store, UndoBulkTerminations + UndoQueuesSql +
            "DROP INDEX messages_by_sequence; ALTER TABLE messages DROP COLUMN sequence; ALTER TABLE conversations DROP COLUMN last_sequence; " +
            "CREATE INDEX messages_by_conversation ON messages (conversation_id, version); ALTER TABLE outbox DROP COLUMN lease_owner; " +
            "ALTER TABLE conversations DROP COLUMN last_message_time; " +
            UndoUsers + "DELETE FROM schema_version WHERE version >= 8;");

        var migrated = await CreateStoreAsync();

        foreach (var c in conversations)
        {
            var history = await migrated.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
            var expected = texts.Where(t => t.Conversation == c.Id).Select((t, i) => ((long)i + 1, t.Text)).Reverse();
            Assert.Equal(expected, history.Entities.Select(m => (m.Sequence, m.Text!)));
            var next = ConversationMachine.Decide(c, new AddMessage(Guid.NewGuid().ToString(), c.Customer.Id, MessageKind.Text, "next", [], null),
                DateTimeOffset.UnixEpoch);
            Assert.Equal(CommitResult.StoredAt(history.Total + 1),
                await migrated.Conversations.CommitAsync(new Commit(c, c.Version, next.Events), default));
        }
    }

    [Fact]
    public Task LastMessageTimeMigration_BackfillsFromTheMessages() => LastMessageTimeMigrationAsync(async store =>
    {
        await RewindSchemaAsync(store, UndoBulkTerminations + UndoQueuesSql + "ALTER TABLE conversations DROP COLUMN last_message_time; " + UndoUsers + "DELETE FROM schema_version WHERE version >= 10;");
        return await CreateStoreAsync();
    });

    [Fact]
    public Task QueuesMigration_RoutesWhatExistedToTheDemoQueue() => QueuesMigrationAsync(async store =>
    {
        await RewindSchemaAsync(store, UndoBulkTerminations + UndoQueuesSql + UndoUsers + "DELETE FROM schema_version WHERE version >= 11;");
        return await CreateStoreAsync();
    });

    /// <summary>Undoes 0014_bulk_terminations.sql and the index 0018 adds on its column (its columns cannot be added twice; its indexes go before their columns).</summary>
    const string UndoBulkTerminations = "DROP INDEX conversations_live; DROP INDEX conversations_live_by_channel; DROP INDEX conversations_live_by_queue; " +
        "DROP INDEX conversations_live_by_campaign; DROP INDEX IF EXISTS conversations_live_by_session; DROP INDEX IF EXISTS conversations_by_session; " +
        "DROP INDEX guest_sessions_by_address; " +
        "ALTER TABLE conversations DROP COLUMN campaign; ALTER TABLE conversations DROP COLUMN started_by; DROP TABLE termination_jobs; ";

    /// <summary>Undoes 0012_users.sql (re-applied after a rewind to an older version).</summary>
    const string UndoUsers = "DROP TABLE users; DROP TABLE authorization_codes; ALTER TABLE oauth_clients DROP COLUMN authorized_grant_type; " +
        "ALTER TABLE oauth_clients DROP COLUMN redirect_uris; ALTER TABLE termination_audit DROP COLUMN user_id; " +
        "ALTER TABLE termination_audit DROP COLUMN user_name; ";

    /// <summary>Closes the store and undoes migrations by hand, so the next open meets a database of an older version.</summary>
    async Task RewindSchemaAsync(StoragePorts store, string undoSql)
    {
        var old = Opened(store);
        await old.DisposeAsync();
        _open.Remove(old);
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DbPath};Pooling=false");
        await c.OpenAsync();
        await using var undo = c.CreateCommand();
        undo.CommandText = undoSql;
        await undo.ExecuteNonQueryAsync();
    }
}
