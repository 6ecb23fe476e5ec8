using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

public sealed class SqliteStoreTests : ConversationStoreContract, IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-store-" + Guid.NewGuid().ToString("N"));
    readonly List<SqliteStore> _open = [];

    string DbPath => Path.Combine(_dir, "parley.db");

    protected override async Task<object> CreateStoreAsync()
    {
        var store = await SqliteStore.OpenAsync(DbPath);
        _open.Add(store);
        return store;
    }

    protected override async Task<object> ReopenAsync(object store)
    {
        await ((SqliteStore)store).DisposeAsync();
        _open.Remove((SqliteStore)store);
        return await CreateStoreAsync();
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
        var store = (SqliteStore)await CreateStoreAsync();
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
        var store = (SqliteStore)await CreateStoreAsync();
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
}
