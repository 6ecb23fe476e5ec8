using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Parley.Storage.Sqlite;

/// <summary>
/// When the writer checkpoints the write-ahead log. By default SQLite checkpoints inside the COMMIT that takes the log
/// past 1,000 pages, so that write (a termination, and its guest's Disconnect behind it) waits for the log's pages to be
/// copied into the database and the database fsynced: one termination in a hundred here, which made the p99
/// (BENCHMARKS.md, round two, fifth run). This takes the automatic checkpoint over through the writer connection's WAL
/// hook (<c>sqlite3_wal_hook</c>, which Microsoft.Data.Sqlite does not expose; it replaces SQLite's own), which only
/// records the log's size after each commit; the writer checkpoints between groups, once the group's callers have their
/// answers (<see cref="IsDue"/>). A checkpoint on a connection of its own, beside the writer, was tried and not kept: the
/// log never restarts while the writer appends, and the database's fsync beside the log's slowed every commit.
/// Durability is unchanged: a checkpoint copies pages the log already holds.
/// </summary>
sealed unsafe class WalCheckpoints : IDisposable
{
    /// <summary>The log's size in pages past which a checkpoint is due: SQLite's own automatic checkpoint's default.</summary>
    public const int Threshold = 1000;

    readonly SqliteConnection _writer;
    readonly SqliteCommand _checkpoint;
    readonly GCHandle _self;
    int _pages;
    int _pagesAtLastCheckpoint;
    long _checkpoints;

    WalCheckpoints(SqliteConnection writer)
    {
        _writer = writer;
        _checkpoint = writer.CreateCommand();
        _checkpoint.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
        _self = GCHandle.Alloc(this);
        sqlite3_wal_hook(writer.Handle!.DangerousGetHandle(), &OnCommit, GCHandle.ToIntPtr(_self));
    }

    /// <summary>Takes over <paramref name="writer"/>'s automatic checkpoint (a database in WAL mode).</summary>
    public static WalCheckpoints Attach(SqliteConnection writer) => new(writer);

    /// <summary>The log's size in pages after the last commit.</summary>
    public int Pages => Volatile.Read(ref _pages);

    /// <summary>The log's size in pages when the last checkpoint ran (0 before the first).</summary>
    public int PagesAtLastCheckpoint => Volatile.Read(ref _pagesAtLastCheckpoint);

    /// <summary>Checkpoints run so far.</summary>
    public long Count => Interlocked.Read(ref _checkpoints);

    /// <summary>Whether the log has grown past <see cref="Threshold"/> since the last checkpoint.</summary>
    public bool IsDue => Pages >= Threshold;

    /// <summary>
    /// Copies the log into the database on the writer connection, between transactions (PASSIVE: a reader still on an
    /// older snapshot keeps its pages in the log; the next one gets them). The writer then restarts the log at its next
    /// transaction. A failure loses nothing: the log still holds every page, and the next commit makes it due again.
    /// </summary>
    public void Run()
    {
        try
        {
            var pages = Pages;
            _checkpoint.ExecuteNonQuery();
            Volatile.Write(ref _pagesAtLastCheckpoint, pages);
            Volatile.Write(ref _pages, 0);
            Interlocked.Increment(ref _checkpoints);
        }
        // Whatever it is, it must not end the writer's loop (every write after would wait for ever): the log stays as it is.
        catch (Exception) { }
    }

    /// <summary>SQLite calls this on the committing thread after each commit with the log's size in pages.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    static int OnCommit(IntPtr self, IntPtr db, IntPtr schema, int pages)
    {
        Volatile.Write(ref ((WalCheckpoints)GCHandle.FromIntPtr(self).Target!)._pages, pages);
        return 0;   // SQLITE_OK: anything else would fail the statement whose commit has happened
    }

    /// <summary>Gives the writer connection SQLite's automatic checkpoint back (before it closes).</summary>
    public void Dispose()
    {
        sqlite3_wal_autocheckpoint(_writer.Handle!.DangerousGetHandle(), Threshold);
        _self.Free();
        _checkpoint.Dispose();
    }

    [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
    static extern IntPtr sqlite3_wal_hook(IntPtr db, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, int, int> callback, IntPtr arg);

    [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
    static extern int sqlite3_wal_autocheckpoint(IntPtr db, int pages);
}
