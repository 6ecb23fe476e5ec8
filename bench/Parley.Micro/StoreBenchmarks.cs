using BenchmarkDotNet.Attributes;
using Parley.Storage.Sqlite;

namespace Parley.Micro;

/// <summary>
/// A writer benchmark's SQLite store, by <see cref="Storage"/>: <c>memory</c> leaves out the disk (the CPU and
/// allocations only); <c>file</c> is a folder of its own in the temp folder with the shipped durability (WAL, fsync per
/// group commit), removed afterwards.
/// </summary>
public abstract class StoreBenchmarks
{
    [Params("memory", "file")] public string Storage = "memory";

    string? _dir;

    protected SqliteStore Store { get; private set; } = null!;

    [GlobalSetup]
    public async Task OpenStore()
    {
        if (Storage == "file")
        {
            _dir = Path.Combine(Path.GetTempPath(), "parley-micro-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(_dir);
            Store = await SqliteStore.OpenAsync(Path.Combine(_dir, "parley.db"));
        }
        else Store = await SqliteStore.OpenInMemoryAsync(null);
        await SetUpAsync();
    }

    /// <summary>What the benchmark puts in the store before it is measured.</summary>
    protected virtual Task SetUpAsync() => Task.CompletedTask;

    [GlobalCleanup]
    public async Task CloseStore()
    {
        await Store.DisposeAsync();
        if (_dir is not null) Directory.Delete(_dir, recursive: true);
    }
}
