namespace Parley.Storage.Sqlite;

/// <summary>
/// The embedded SQLite store: one port class for each storage port, all over one <see cref="SqliteDatabase"/> (one file,
/// one writer with group commit), opened together and closed together. <see cref="Ports"/> is what the server registers.
/// </summary>
public sealed class SqliteStore : IAsyncDisposable
{
    readonly SqliteDatabase _database;

    SqliteStore(SqliteDatabase database, string nodeId)
    {
        _database = database;
        var credentials = new SqliteCredentialStore(database);
        Ports = new StoragePorts(new SqliteConversationStore(database), new SqliteGuestSessionStore(database), new SqliteAuditLog(database),
            new SqliteDirectoryStore(database, credentials), credentials, new SqliteOutbox(database, nodeId), this)
        {
            Users = new SqliteUserStore(database, credentials),
            NotificationChannels = new SqliteNotificationChannelStore(database),
            TerminationPolicies = new SqliteTerminationPolicyStore(database),
            TerminationJobs = new SqliteTerminationJobStore(database),
            Receipts = new SqliteReceiptStore(database),
            WriteFault = () => database.WriterFault,
        };
    }

    /// <summary>Every port, with this store as their lifetime.</summary>
    public StoragePorts Ports { get; }

    public string Path => _database.Path;

    /// <summary>How many secrets an older version had stored in plain text and this open encrypted (0 on every later open).</summary>
    public int SecretsEncryptedAtOpen => _database.SecretsEncryptedAtOpen;

    /// <summary>The node id that owns the outbox leases of a store opened without one (one process on the file).</summary>
    public const string DefaultNodeId = "local";

    /// <summary>Opens the store with secrets kept as they are written (tests of the store itself).</summary>
    public static Task<SqliteStore> OpenAsync(string path, CancellationToken ct = default) => OpenAsync(path, null, ct);

    /// <summary>Opens the store as <see cref="DefaultNodeId"/>.</summary>
    public static Task<SqliteStore> OpenAsync(string path, ISecretCipher? cipher, CancellationToken ct = default) =>
        OpenAsync(path, cipher, DefaultNodeId, ct);

    /// <summary>
    /// Opens the store; with a <paramref name="cipher"/>, secrets are encrypted at rest, those stored in plain text by an
    /// older version are encrypted now, and <see cref="SecretsUnreadableException"/> says the cipher cannot read the ones stored.
    /// </summary>
    /// <param name="nodeId">Owns the outbox leases this store takes (<see cref="IOutbox.ReleaseLeasesAsync"/> frees only those).</param>
    public static Task<SqliteStore> OpenAsync(string path, ISecretCipher? cipher, string nodeId, CancellationToken ct = default) =>
        OpenAsync(path, cipher, nodeId, Durability.Full, ct);

    /// <summary>
    /// Opens the store at a <paramref name="durability"/> level: <see cref="Durability.Full"/> (fsync per commit) unless
    /// the operator chose a lower one (docs/durability.md).
    /// </summary>
    public static async Task<SqliteStore> OpenAsync(string path, ISecretCipher? cipher, string nodeId, Durability durability,
        CancellationToken ct = default) =>
        new(await SqliteDatabase.OpenAsync(path, cipher, durability, ct), nodeId);

    /// <summary>When this store acknowledges a commit (<see cref="Durability.Full"/> in memory, where it does not apply).</summary>
    public Durability Durability => _database.Durability;

    /// <summary>The writer connection's <c>PRAGMA synchronous</c> as SQLite reads it back: 2 (FULL) or 1 (NORMAL).</summary>
    public Task<long> ReadSynchronousAsync(CancellationToken ct = default) => _database.ReadSynchronousAsync(ct);

    /// <summary>The writer connection's <c>PRAGMA temp_store</c> as SQLite reads it back: 2 (MEMORY).</summary>
    public Task<long> ReadTempStoreAsync(CancellationToken ct = default) => _database.ReadTempStoreAsync(ct);

    /// <summary>The writer connection's <c>PRAGMA wal_autocheckpoint</c> as SQLite reads it back: 0 while the writer checkpoints itself.</summary>
    public Task<long> ReadAutoCheckpointAsync(CancellationToken ct = default) => _database.ReadAutoCheckpointAsync(ct);

    /// <summary>Checkpoints of the log the writer has run between groups (0 in memory: no log).</summary>
    public long WalCheckpoints => _database.Checkpoints?.Count ?? 0;

    /// <summary>The log's size in pages after the last commit.</summary>
    public int WalPages => _database.Checkpoints?.Pages ?? 0;

    /// <summary>The log's size in pages when the writer last checkpointed it (0 before the first, and in memory).</summary>
    public int WalPagesAtLastCheckpoint => _database.Checkpoints?.PagesAtLastCheckpoint ?? 0;

    /// <summary>At the <c>interval</c> level, how many fsyncs of the log the store has made (0 at the others).</summary>
    public long IntervalFsyncs => _database.WalSync?.Syncs ?? 0;

    /// <summary>
    /// At the <c>interval</c> level, completes once every commit acknowledged before the call is fsynced; at
    /// <c>full</c>, at once (each already is). At <c>os</c> nothing fsyncs a commit: this refuses.
    /// </summary>
    public Task WhenCommitsOnDiskAsync(CancellationToken ct = default) => Durability.Level switch
    {
        DurabilityLevel.Interval when _database.WalSync is { } sync => sync.WhenSyncedAsync(ct),
        DurabilityLevel.Os => throw new InvalidOperationException("At durability 'os' commits are never fsynced on their own (only by checkpoints)."),
        _ => Task.CompletedTask,
    };

    /// <summary>
    /// Opens a store that lives in this process's memory only: nothing is written to disk, everything is lost when it is
    /// disposed (the server's <c>--in-memory</c> mode, for CI runs).
    /// </summary>
    public static async Task<SqliteStore> OpenInMemoryAsync(ISecretCipher? cipher, string nodeId = DefaultNodeId, CancellationToken ct = default) =>
        new(await SqliteDatabase.OpenInMemoryAsync(cipher, ct), nodeId);

    public bool InMemory => _database.Path == SqliteDatabase.InMemoryPath;

    /// <summary>Test seam: the database every port writes through.</summary>
    internal SqliteDatabase Database => _database;

    /// <summary>Test seam: runs on the writer thread after each group (a throwing one stops the writer's loop).</summary>
    internal Action? AfterWriterGroup { set => _database.AfterGroup = value; }

    public ValueTask DisposeAsync() => _database.DisposeAsync();
}
