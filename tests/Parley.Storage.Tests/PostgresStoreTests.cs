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

    async Task<StorePorts> OpenAsync(string node)
    {
        var storage = await PostgresStorage.OpenAsync(await DatabaseAsync(), node);
        _open.Add(storage);
        _stores[storage.Conversations] = (storage, node);
        return new StorePorts(storage.Conversations, storage.Sessions, storage.Audit, storage.Directory, storage.Outbox);
    }

    protected override Task<StorePorts> CreateStoreAsync() => OpenAsync("node-a");

    protected override async Task<StorePorts> ReopenAsync(StorePorts store)
    {
        var (storage, node) = _stores[store.Conversations];
        await storage.DisposeAsync();
        _open.Remove(storage);
        return await OpenAsync(node);
    }

    protected override Task<StorePorts> OpenSecondAsync(StorePorts store) => OpenAsync("node-b-" + _open.Count);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _open) await s.DisposeAsync();
    }
}
