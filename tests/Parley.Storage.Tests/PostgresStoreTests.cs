using Npgsql;
using Parley.Core;
using Parley.Storage.Postgres;

namespace Parley.Storage.Tests;

/// <summary>The storage contract on PostgreSQL: each test on a fresh schema of its own in the class's own database, two stores on it as two nodes.</summary>
[RequiresEngine(PostgresTestDatabase.Variable)]
public sealed class PostgresStoreTests(PostgresTestDatabase database) : ConversationStoreContract, IAsyncLifetime, IClassFixture<PostgresTestDatabase>
{
    string? _schema;
    readonly List<PostgresStorage> _open = [];
    readonly Dictionary<IConversationStore, (PostgresStorage Storage, string Node)> _stores = [];

    async Task<string> DatabaseAsync() => _schema ??= await database.NewSchemaAsync();

    async Task<StoragePorts> OpenAsync(string node)
    {
        var storage = await PostgresStorage.OpenAsync(await DatabaseAsync(), node);
        _open.Add(storage);
        _stores[storage.Ports.Conversations] = (storage, node);
        return storage.Ports;
    }

    protected override Task<StoragePorts> CreateStoreAsync() => OpenAsync("node-a");

    protected override async Task<StoragePorts> ReopenAsync(StoragePorts store)
    {
        var (storage, node) = _stores[store.Conversations];
        await storage.DisposeAsync();
        _open.Remove(storage);
        return await OpenAsync(node);
    }

    protected override Task<StoragePorts> OpenSecondAsync(StoragePorts store) => OpenAsync("node-b-" + _open.Count);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _open) await s.DisposeAsync();
    }

    [ContractFact]
    public async Task NodesStartingAtOnceOnAnEmptyDatabase_AllStart_AndTheSchemaIsAppliedOnce()
    {
        var database = await DatabaseAsync();

        var opened = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() => PostgresStorage.OpenAsync(database, $"node-{i}"))));
        _open.AddRange(opened);

        // One open applied every migration; the others, let in after it by the advisory lock, found nothing to do.
        Assert.Single(opened, s => s.MigrationsApplied.Count > 0);
        Assert.All(opened.Where(s => s.MigrationsApplied.Count == 0), s => Assert.Empty(s.MigrationsApplied));
        await using var c = new NpgsqlConnection(database);
        await c.OpenAsync();
        await using var versions = new NpgsqlCommand("SELECT COUNT(*), COUNT(DISTINCT version), MIN(version) FROM schema_version", c);
        await using (var r = await versions.ExecuteReaderAsync())
        {
            Assert.True(await r.ReadAsync());
            Assert.Equal(r.GetInt64(0), r.GetInt64(1));
            Assert.Equal(1L, r.GetInt64(2));
            Assert.Equal(opened.Single(s => s.MigrationsApplied.Count > 0).MigrationsApplied.Count, r.GetInt64(0));
        }
        // And every node works on the one schema.
        var key = await Task.WhenAll(opened.Select(s => s.Ports.Directory.GetOrCreateSigningKeyAsync(() => Guid.NewGuid().ToByteArray(), default)));
        Assert.Single(key.Select(Convert.ToBase64String).Distinct());
    }

    [ContractFact]
    public Task LastMessageTimeMigration_BackfillsFromTheMessages() => LastMessageTimeMigrationAsync(store =>
        ReopenFromBeforeAsync(store, UndoQueuesSql + "ALTER TABLE conversations DROP COLUMN last_message_time; DELETE FROM schema_version WHERE version >= 2;"));

    [ContractFact]
    public Task QueuesMigration_RoutesWhatExistedToTheDemoQueue() => QueuesMigrationAsync(store =>
        ReopenFromBeforeAsync(store, UndoQueuesSql + "DELETE FROM schema_version WHERE version >= 3;"));

    /// <summary>Closes the store and undoes migrations by hand, so the next open meets a database of an older version.</summary>
    async Task<StoragePorts> ReopenFromBeforeAsync(StoragePorts store, string undoSql)
    {
        var (storage, node) = _stores[store.Conversations];
        await storage.DisposeAsync();
        _open.Remove(storage);
        await using (var c = new NpgsqlConnection(await DatabaseAsync()))
        {
            await c.OpenAsync();
            await using var undo = new NpgsqlCommand(undoSql, c);
            await undo.ExecuteNonQueryAsync();
        }
        return await OpenAsync(node);
    }
}
