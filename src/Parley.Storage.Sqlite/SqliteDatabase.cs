using System.Threading.Channels;

namespace Parley.Storage.Sqlite;

/// <summary>
/// The embedded database every SQLite port shares: one file in WAL mode with <c>synchronous = FULL</c>, so a commit that
/// returned survives a crash or power loss (unless a lower <see cref="Durability"/> was chosen: docs/durability.md). Writes go through one connection, one transaction at a time (SQLite has one
/// writer), grouped so that one COMMIT makes many durable; reads open pooled connections of their own and never wait for
/// the writer. It also applies the migrations at open and holds the codec of the secrets stored at rest.
/// </summary>
sealed class SqliteDatabase : IAsyncDisposable
{
    readonly string _connectionString;
    readonly SqliteConnection _writer;
    readonly Task _writerLoop;
    readonly IntervalWalSync? _walSync;
    readonly WalCheckpoints? _checkpoints;

    public SecretCodec Secrets { get; }

    /// <summary>When a commit is acknowledged (<see cref="Durability.Full"/> for a database in memory: the level does not apply).</summary>
    public Durability Durability { get; }

    /// <summary>The <c>interval</c> level's fsync of the log, or null at the other levels.</summary>
    public IntervalWalSync? WalSync => _walSync;

    /// <summary>The log's checkpoints, run by the writer between groups (null for a database in memory: it has no log).</summary>
    public WalCheckpoints? Checkpoints => _checkpoints;

    public string Path { get; }

    Exception? _writerFault;

    /// <summary>What stopped the writer's loop, or null while it runs (docs/durability.md "When the writer stops").</summary>
    public Exception? WriterFault => Volatile.Read(ref _writerFault);

    /// <summary>Test seam: runs on the writer thread after each group's answers, outside any write's own error handling.</summary>
    internal Action? AfterGroup { get; set; }

    /// <summary>How many secrets an older version had stored in plain text and this open encrypted (0 on every later open).</summary>
    public int SecretsEncryptedAtOpen { get; private init; }

    SqliteDatabase(string path, string connectionString, SqliteConnection writer, SecretCodec secrets, Durability durability,
        WalCheckpoints? checkpoints)
    {
        _checkpoints = checkpoints;
        Path = path;
        Secrets = secrets;
        Durability = durability;
        _connectionString = connectionString;
        _writer = writer;
        if (durability.Level == DurabilityLevel.Interval) _walSync = new IntervalWalSync(path, durability.FsyncInterval);
        // A thread of its own, not a pool thread: the loop blocks in every COMMIT's fsync, and waking it must not wait
        // behind the pool's queue of socket work (measured: +15 % messages/s in the bench's closed loop, BENCHMARKS.md).
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { RunWriter(); }
            catch (Exception e) { WriterStopped(e); }
            stopped.TrySetResult();
        }) { IsBackground = true, Name = "SQLite writer" }.Start();
        _writerLoop = stopped.Task;
    }

    /// <summary>
    /// Opens the database; with a <paramref name="cipher"/>, secrets are encrypted at rest, those stored in plain text by an
    /// older version are encrypted now, and <see cref="SecretsUnreadableException"/> says the cipher cannot read the ones stored.
    /// </summary>
    public static Task<SqliteDatabase> OpenAsync(string path, ISecretCipher? cipher, Durability durability, CancellationToken ct)
    {
        OwnerOnly.PrepareDatabase(path);
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path, Pooling = true, DefaultTimeout = 5, ForeignKeys = true, Mode = SqliteOpenMode.ReadWriteCreate,
        }.ToString();
        return OpenAsync(path, cs, cipher, durability, ct);
    }

    /// <summary>
    /// A database that lives in this process's memory only (nothing written to disk), for CI runs: SQLite's <c>memdb</c>
    /// VFS under a name of its own, which every connection of this process opening that name shares, with ordinary
    /// locking (unlike shared-cache mode, readers do not fail while a write is open). The writer connection stays open
    /// for the store's life, which keeps the database alive; it is gone when the store is disposed.
    /// </summary>
    public static Task<SqliteDatabase> OpenInMemoryAsync(ISecretCipher? cipher, CancellationToken ct)
    {
        var name = $"/parley-{Guid.NewGuid():N}";
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = $"file:{name}?vfs=memdb", Pooling = true, DefaultTimeout = 5, ForeignKeys = true,
        }.ToString();
        return OpenAsync(InMemoryPath, cs, cipher, durability: null, ct);
    }

    const string TempStoreMemory = "PRAGMA temp_store = MEMORY;";

    /// <summary>What <see cref="Path"/> says of a database opened in memory.</summary>
    public const string InMemoryPath = ":memory:";

    /// <param name="durability">Null: a database in memory (no file, no fsync).</param>
    static async Task<SqliteDatabase> OpenAsync(string path, string cs, ISecretCipher? cipher, Durability? durability, CancellationToken ct)
    {
        var onFile = durability is not null;
        var writer = new SqliteConnection(cs);
        await writer.OpenAsync(ct);
        // WAL and fsync are for a file; an in-memory database keeps its rollback journal in memory too. FULL fsyncs the
        // WAL at every COMMIT; NORMAL (the lower levels) only before a checkpoint, which keeps the file consistent.
        if (onFile) await ExecAsync(writer, $"PRAGMA journal_mode = WAL; PRAGMA synchronous = {Synchronous(durability!)};", ct);
        // The sub-journal (the pages a savepoint may roll back: each write of a group, a bulk chunk) stays in memory: by
        // default it spills to a temporary file past 64 KiB and then costs two pwrite calls per page, 11,000 a second
        // while 10,000 conversations start (strace) and a third of a bulk termination's time (BENCHMARKS.md, round two).
        // Nor does an in-memory database spill a temporary table, index or sort to a file in TMPDIR.
        await ExecAsync(writer, TempStoreMemory, ct);
        await Migrations.ApplyAsync(writer, ct);
        var secrets = new SecretCodec(cipher);
        int encrypted;
        try { encrypted = await secrets.MigrateAsync(writer, ct); }
        catch { await writer.DisposeAsync(); throw; }
        if (onFile) OwnerOnly.RestrictDatabaseFiles(path);   // the -wal and -shm SQLite has just created (or an older start left)
        var checkpoints = onFile ? WalCheckpoints.Attach(writer) : null;
        return new SqliteDatabase(path, cs, writer, secrets, durability ?? Durability.Full, checkpoints) { SecretsEncryptedAtOpen = encrypted };
    }

    /// <summary>The writer connection's <c>PRAGMA synchronous</c> for a level.</summary>
    static string Synchronous(Durability d) => d.Level == DurabilityLevel.Full ? "FULL" : "NORMAL";

    /// <summary>The writer connection's <c>PRAGMA synchronous</c> as SQLite reads it back (2 FULL, 1 NORMAL).</summary>
    public Task<long> ReadSynchronousAsync(CancellationToken ct) => ReadWriterPragmaAsync("PRAGMA synchronous", ct);

    /// <summary>The writer connection's <c>PRAGMA temp_store</c> as SQLite reads it back (2 MEMORY).</summary>
    public Task<long> ReadTempStoreAsync(CancellationToken ct) => ReadWriterPragmaAsync("PRAGMA temp_store", ct);

    /// <summary>The writer connection's <c>PRAGMA wal_autocheckpoint</c> as SQLite reads it back (0: SQLite's own is off).</summary>
    public Task<long> ReadAutoCheckpointAsync(CancellationToken ct) => ReadWriterPragmaAsync("PRAGMA wal_autocheckpoint", ct);

    Task<long> ReadWriterPragmaAsync(string pragma, CancellationToken ct) => WriteAsync(async tx =>
    {
        await using var cmd = Command(tx, pragma);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }, ct);

    public async ValueTask DisposeAsync()
    {
        _writes.Writer.TryComplete();
        await _writerLoop;
        if (_walSync is not null) await _walSync.DisposeAsync();
        _checkpoints?.Dispose();
        foreach (var cmd in _prepared.Values) await cmd.DisposeAsync();
        foreach (var statement in _statements.Values) statement.Dispose();
        await _writer.DisposeAsync();
        SqliteConnection.ClearAllPools();
    }

    /// <summary>A pooled connection of its own for a read (the caller disposes it).</summary>
    public async Task<SqliteConnection> ReadAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct);
        // Per connection (a pooled one keeps it; setting the same value again is a no-op): no temporary file in TMPDIR.
        if (Path == InMemoryPath)
        {
            try { await ExecAsync(c, TempStoreMemory, ct); }
            catch { await c.DisposeAsync(); throw; }
        }
        return c;
    }

    /// <summary>The row of <paramref name="table"/> with this id, or null.</summary>
    public async Task<T?> GetByIdAsync<T>(string table, string columns, string id, Func<SqliteDataReader, T> read, CancellationToken ct)
        where T : class
    {
        await using var c = await ReadAsync(ct);
        await using var cmd = Command(c, $"SELECT {columns} FROM {table} WHERE id = $id", ("$id", id));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? read(r) : null;
    }

    /// <summary>One page of every row of <paramref name="table"/> in <paramref name="order"/>, with the table's row count.</summary>
    public async Task<Page<T>> ListPageAsync<T>(string table, string columns, string order, Func<SqliteDataReader, T> read,
        int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        long total;
        await using (var count = Command(c, $"SELECT COUNT(*) FROM {table}"))
            total = (long)(await count.ExecuteScalarAsync(ct))!;
        var list = new List<T>();
        await using var cmd = Command(c, $"SELECT {columns} FROM {table} ORDER BY {order} LIMIT $limit OFFSET $offset",
            ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(read(r));
        return new Page<T>(list, pageSize, pageNumber, total);
    }

    static async Task ExecAsync(SqliteConnection c, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(ct);
    }

    readonly Dictionary<string, SqliteCommand> _prepared = [];
    readonly Dictionary<string, WriterStatement> _statements = [];

    /// <summary>A hot statement of the writer on SQLite's own API, compiled once (<see cref="WriterStatement"/>); only the writer loop runs it.</summary>
    public WriterStatement Statement(string sql)
    {
        if (!_statements.TryGetValue(sql, out var statement)) _statements[sql] = statement = new WriterStatement(_writer, sql);
        return statement;
    }

    /// <summary>
    /// A writer command kept prepared across writes (only the writer loop runs these, one at a time): the hot statements
    /// of a commit are compiled by SQLite once, not once per message.
    /// </summary>
    public SqliteCommand Prepared(SqliteTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        if (!_prepared.TryGetValue(sql, out var cmd))
        {
            cmd = _writer.CreateCommand();
            cmd.CommandText = sql;
            _prepared[sql] = cmd;
        }
        cmd.Transaction = tx;
        var parameters = cmd.Parameters;
        if (!SameNames(parameters, args))
        {
            parameters.Clear();
            foreach (var (name, value) in args) parameters.AddWithValue(name, value ?? DBNull.Value);
            return cmd;
        }
        // The same statement with the same names (every call but the first): its parameter objects take the new values.
        for (var i = 0; i < args.Length; i++) parameters[i].Value = args[i].Value ?? DBNull.Value;
        return cmd;
    }

    static bool SameNames(SqliteParameterCollection parameters, (string Name, object? Value)[] args)
    {
        if (parameters.Count != args.Length) return false;
        for (var i = 0; i < args.Length; i++)
            if (!string.Equals(parameters[i].ParameterName, args[i].Name, StringComparison.Ordinal)) return false;
        return true;
    }

    /// <summary>Savepoint statements, prepared once: every write of a group runs three of them.</summary>
    void Savepoint(SqliteTransaction tx, string sql) => Prepared(tx, sql).ExecuteNonQuery();

    public static SqliteCommand Command(SqliteConnection c, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    /// <summary>A one-off command inside a write's transaction (on the writer connection that transaction belongs to).</summary>
    public static SqliteCommand Command(SqliteTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = Command(tx.Connection!, sql, args);
        cmd.Transaction = tx;
        return cmd;
    }

    /// <summary>
    /// Every write goes through here. Writes queued while the previous transaction was committing are applied together
    /// and made durable by one COMMIT (one fsync): group commit. A write whose work returns false (or a refused
    /// <see cref="CommitResult"/>) or throws is rolled back alone (to its savepoint, or by redoing its group: see
    /// <paramref name="selfContained"/>); the others in the group still commit. The caller's task
    /// completes only after the COMMIT, so nothing is acknowledged before it is stored.
    /// </summary>
    /// <param name="urgent">
    /// A write someone is waiting on before anything else (a termination: its guest sockets are told only after it): it
    /// goes ahead of the ordinary writes queued, and the group it joins takes no further ordinary write, so it waits for
    /// at most the commit under way and its own short one, never for a full group of messages.
    /// </param>
    /// <param name="selfContained">
    /// The work writes nothing when it refuses (its guard is its first statement), and only writes through the
    /// transaction, so it may be run again: it needs no savepoint of its own while every write before it in its group is
    /// self-contained too. Should one throw part-way, the group so far is rolled back and run again, each write under a
    /// savepoint, and the one that threw is lost alone as before. A guest message's commit is one (BENCHMARKS.md, round
    /// two, ninth run: two statements and a journal copy of each page fewer per message).
    /// </param>
    public async Task<T> WriteAsync<T>(Func<SqliteTransaction, Task<T>> work, CancellationToken ct, bool urgent = false,
        bool selfContained = false)
    {
        if (WriterFault is { } fault) throw Unavailable(fault);
        var request = new WriteRequest(async tx => await work(tx), ct, selfContained);
        if (urgent) _urgent.Enqueue(request);
        // An urgent write wakes the loop with a placeholder (the loop waits on the channel, and skips placeholders).
        if (!_writes.Writer.TryWrite(urgent ? WakeUp : request))
            throw WriterFault is { } stopped ? Unavailable(stopped) : new ObjectDisposedException(nameof(SqliteStore));
        // Not cancellable once queued: a caller is never told "failed" about a write that then commits. Cancellation
        // stops a write only before it runs (the writer checks the token first).
        return (T)(await request.Done.Task)!;
    }

    sealed class WriteRequest(Func<SqliteTransaction, Task<object?>> work, CancellationToken ct, bool selfContained = false)
    {
        public Func<SqliteTransaction, Task<object?>> Work => work;
        public CancellationToken Cancellation => ct;
        public bool SelfContained => selfContained;
        public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    static StoreUnavailableException Unavailable(Exception fault) =>
        new($"The store takes no writes: its writer stopped ({fault.GetType().Name}); restart the node.", fault);

    /// <summary>
    /// The writer's loop ended with an error no write's own handling caught (a defect): nothing queued may wait for ever.
    /// Every write queued, and every later one, fails as the store being unavailable (a 503), and the readiness check
    /// reports the node unready. What was committed stays committed; what was queued was never applied.
    /// </summary>
    void WriterStopped(Exception e)
    {
        Volatile.Write(ref _writerFault, e);
        _writes.Writer.TryComplete();   // from here a new write fails at once instead of queueing
        var unavailable = Unavailable(e);
        while (_urgent.TryDequeue(out var urgent)) urgent.Done.TrySetException(unavailable);
        while (_writes.Reader.TryRead(out var queued)) queued.Done.TrySetException(unavailable);
    }

    /// <summary>Most writes one transaction takes; bounds how long the first write of a group waits for the last.</summary>
    const int MaxGroup = 256;

    readonly Channel<WriteRequest> _writes = Channel.CreateUnbounded<WriteRequest>(new UnboundedChannelOptions { SingleReader = true });
    readonly System.Collections.Concurrent.ConcurrentQueue<WriteRequest> _urgent = new();
    static readonly WriteRequest WakeUp = new(_ => Task.FromResult<object?>(null), CancellationToken.None);

    /// <summary>The next write of a group: an urgent one first; an ordinary one only while the group holds no urgent one.</summary>
    bool TryTake(ref bool urgentTaken, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out WriteRequest? request)
    {
        while (true)
        {
            // Checked again after each placeholder: an urgent write is queued before its placeholder is, so it is never
            // left behind in its queue while the loop waits on an empty channel.
            if (_urgent.TryDequeue(out request)) { urgentTaken = true; return true; }
            if (urgentTaken || !_writes.Reader.TryRead(out request)) { request = null; return false; }
            if (!ReferenceEquals(request, WakeUp)) return true;
        }
    }

    /// <summary>Blocks the writer thread until a write is queued; false once the store is closing and nothing is left.</summary>
    bool WaitForWrites()
    {
        var ready = _writes.Reader.WaitToReadAsync();
        return ready.IsCompletedSuccessfully ? ready.Result : ready.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// The writer thread's loop. Synchronous: Microsoft.Data.Sqlite runs every statement synchronously anyway, and a
    /// write's work completes on this thread (it is awaited here only in case one ever does not).
    /// </summary>
    void RunWriter()
    {
        var group = new List<(WriteRequest Request, object? Result, Exception? Error)>(MaxGroup);
        while (WaitForWrites())
        {
            group.Clear();
            WriteRequest? current = null;
            var urgentTaken = false;
            SqliteTransaction? tx = null;
            try
            {
                tx = _writer.BeginTransaction();
                // Without a savepoint per write while every write of the group is self-contained (see WriteAsync).
                var bare = true;
                while (group.Count < MaxGroup && TryTake(ref urgentTaken, out current))
                {
                    if (current.Cancellation.IsCancellationRequested)
                    {
                        group.Add((current, null, new OperationCanceledException(current.Cancellation)));
                        continue;
                    }
                    bare &= current.SelfContained;
                    if (!bare) { group.Add(RunIsolated(tx, current)); continue; }
                    try
                    {
                        group.Add((current, current.Work(tx).GetAwaiter().GetResult(), null));
                    }
                    catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 13 or 10 or 7 })   // not FULL, IOERR, NOMEM
                    {
                        // It may have written part of itself: the group so far again from the start, each write under a savepoint.
                        tx.Rollback();
                        tx.Dispose();
                        tx = _writer.BeginTransaction();
                        for (var i = 0; i < group.Count; i++)
                            if (group[i].Error is null) group[i] = RunIsolated(tx, group[i].Request);   // not the cancelled, never run
                        group.Add(RunIsolated(tx, current));
                        bare = false;
                    }
                }
                current = null;
                tx.Commit();
            }
            catch (Exception e)
            {
                // The transaction is lost (a failed COMMIT, or an error that made SQLite roll it all back): nothing of
                // the group is stored, and every caller — the one whose write was running too — hears so.
                current?.Done.TrySetException(e);
                foreach (var (request, _, _) in group) request.Done.TrySetException(e);
                continue;
            }
            finally { tx?.Dispose(); }
            // Outside the try: once COMMIT has returned, nothing may tell a caller its write failed.
            _walSync?.Committed();
            ParleyDiagnostics.CommitGroupSize.Record(group.Count);
            foreach (var (request, result, error) in group)
                if (error is null) request.Done.TrySetResult(result);
                else request.Done.TrySetException(error);
            // The log's checkpoint, once the group has its answers: no write waits for it but one queued meanwhile, and an
            // end queued meanwhile goes first (unless the log has grown far past the threshold).
            if (_checkpoints is { IsDue: true } due && (_urgent.IsEmpty || due.Pages >= 4 * WalCheckpoints.Threshold)) due.Run();
            AfterGroup?.Invoke();
        }
    }

    /// <summary>One write under a savepoint of its own: refused (false, or a refused <see cref="CommitResult"/>) or failed, it is rolled back alone.</summary>
    (WriteRequest Request, object? Result, Exception? Error) RunIsolated(SqliteTransaction tx, WriteRequest request)
    {
        Savepoint(tx, "SAVEPOINT w");
        try
        {
            var result = request.Work(tx).GetAwaiter().GetResult();
            if (result is false or CommitResult { Stored: false }) Savepoint(tx, "ROLLBACK TO w");
            Savepoint(tx, "RELEASE w");
            return (request, result, null);
        }
        catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 13 or 10 or 7 })   // not FULL, IOERR, NOMEM
        {
            Savepoint(tx, "ROLLBACK TO w");
            Savepoint(tx, "RELEASE w");
            return (request, null, e);
        }
    }

    /// <summary>One statement as a write of its own; answers its row count.</summary>
    public async Task<int> WriteAsync(string sql, CancellationToken ct, params (string, object?)[] args) =>
        await WriteAsync(async tx =>
        {
            await using var cmd = Command(tx, sql, args);
            return await cmd.ExecuteNonQueryAsync(ct);
        }, ct);
}

/// <summary>How the SQLite ports store values the engine has no type for: times as Unix milliseconds, enums by name.</summary>
static class SqliteValues
{
    public static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();
    public static long? Ms(DateTimeOffset? t) => t?.ToUnixTimeMilliseconds();
    public static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
    public static DateTimeOffset? TimeOrNull(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : Time(r.GetInt64(i));
    public static string? StringOrNull(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    public static T Parse<T>(string s) where T : struct, Enum => Enum.Parse<T>(s);
}
