using System.Diagnostics;
using System.Threading.Channels;

namespace Parley.Storage.Sqlite;

/// <summary>
/// The <c>interval</c> durability level's fsync (docs/durability.md): commits run with <c>synchronous = NORMAL</c> (no
/// fsync of their own), and this fsyncs the <c>-wal</c> file through a handle of its own at most once per interval, and
/// only after a commit. On Linux an fsync through any descriptor of a file flushes all of that file's written pages, so
/// it covers what the writer connection wrote before it started.
/// </summary>
sealed class IntervalWalSync : IAsyncDisposable
{
    readonly string _walPath;
    readonly TimeSpan _interval;
    readonly Channel<bool> _committed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    readonly Task _loop;
    FileStream? _wal;
    long _commits, _syncedThrough, _syncs;
    TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IntervalWalSync(string databasePath, TimeSpan interval)
    {
        _walPath = databasePath + "-wal";
        _interval = interval;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>How many fsyncs of the log this has made.</summary>
    public long Syncs => Interlocked.Read(ref _syncs);

    /// <summary>How many commits the writer has made; <see cref="SyncedThrough"/> of them are known to be on disk.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    public long SyncedThrough => Interlocked.Read(ref _syncedThrough);

    /// <summary>The writer calls this after each COMMIT: the next fsync is due.</summary>
    public void Committed()
    {
        Interlocked.Increment(ref _commits);
        _committed.Writer.TryWrite(true);
    }

    /// <summary>Completes once every commit made before the call is fsynced.</summary>
    public async Task WhenSyncedAsync(CancellationToken ct)
    {
        var target = Commits;
        while (SyncedThrough < target)
        {
            var next = Volatile.Read(ref _synced).Task;
            if (SyncedThrough >= target) break;
            await next.WaitAsync(ct);
        }
    }

    async Task RunAsync()
    {
        while (await _committed.Reader.WaitToReadAsync())
        {
            _committed.Reader.TryRead(out _);
            var started = Stopwatch.GetTimestamp();
            Sync();
            var wait = _interval - Stopwatch.GetElapsedTime(started);
            if (wait > TimeSpan.Zero) await Task.Delay(wait);
        }
    }

    void Sync()
    {
        var through = Commits;
        try
        {
            // Opened on first use: SQLite creates the -wal file with the first write. It keeps the same file while the
            // writer connection is open (a checkpoint rewrites it from the start, never replaces it).
            _wal ??= new FileStream(_walPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 1);
            _wal.Flush(flushToDisk: true);
        }
        catch (IOException) { return; }   // not there yet, or a failed fsync: the next commit tries again (COMMIT's own errors are the writer's)
        Interlocked.Increment(ref _syncs);
        Interlocked.Exchange(ref _syncedThrough, through);
        Interlocked.Exchange(ref _synced, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        _committed.Writer.TryComplete();
        await _loop;
        if (Commits > SyncedThrough) Sync();
        if (_wal is not null) await _wal.DisposeAsync();
    }
}
