using Npgsql;
using Parley.Core;

namespace Parley.Storage.Postgres;

/// <summary>
/// Opens every storage port on one PostgreSQL database: one <see cref="NpgsqlDataSource"/> (one connection pool) shared
/// by a class per port. Opening applies the migrations (safe when several nodes start at once) and checks the stored
/// secrets against the cipher. docs/storage.md, "PostgreSQL".
/// </summary>
public sealed class PostgresStorage : IAsyncDisposable
{
    readonly NpgsqlDataSource _source;

    PostgresStorage(NpgsqlDataSource source, PostgresDatabase db)
    {
        _source = source;
        Ports = new StoragePorts(new PostgresConversationStore(db), new PostgresGuestSessionStore(db), new PostgresAuditLog(db),
            new PostgresDirectoryStore(db), new PostgresCredentialStore(db), new PostgresOutbox(db), this)
        {
            Users = new PostgresUserStore(db),
            NotificationChannels = new PostgresNotificationChannelStore(db),
            TerminationPolicies = new PostgresTerminationPolicyStore(db),
            TerminationJobs = new PostgresTerminationJobStore(db),
            Receipts = new PostgresReceiptStore(db),
        };
    }

    /// <summary>Every port, as the server registers them; disposing <see cref="StoragePorts.Lifetime"/> closes the pool.</summary>
    public StoragePorts Ports { get; }

    /// <summary>Migration versions this open applied (empty when the schema was already current).</summary>
    public IReadOnlyList<long> MigrationsApplied { get; private init; } = [];

    /// <summary>How many secrets stored in plain text this open encrypted.</summary>
    public int SecretsEncryptedAtOpen { get; private init; }

    /// <summary>Host, port and database the connection string names (never its password), for the banner and logs.</summary>
    public static string Describe(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{b.Host}:{b.Port}/{b.Database}";
    }

    /// <summary>
    /// Opens the store. <paramref name="nodeId"/> owns the outbox leases this store takes. With a <paramref name="cipher"/>
    /// secrets are encrypted at rest (<see cref="SecretsUnreadableException"/> when it cannot read those stored). Engine
    /// failures surface as <see cref="StoreUnavailableException"/>.
    /// </summary>
    public static async Task<PostgresStorage> OpenAsync(string connectionString, string nodeId, ISecretCipher? cipher = null, CancellationToken ct = default)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        var cs = builder.ConnectionStringBuilder;
        // Hot statements (a commit's, a lease's) are prepared on each pooled connection after their second use.
        if (cs.MaxAutoPrepare == 0) cs.MaxAutoPrepare = 64;
        if (string.IsNullOrEmpty(cs.ApplicationName)) cs.ApplicationName = $"parley {nodeId}";
        // Npgsql's default pool of 100 lets one busy node take every connection a default PostgreSQL has (max_connections
        // 100); a commit is one short round trip, so a few connections per core serve a node. The string may set its own.
        if (!Names(connectionString, "Maximum Pool Size", "Max Pool Size", "MaxPoolSize")) cs.MaxPoolSize = DefaultMaxPoolSize;
        var source = builder.Build();
        try
        {
            IReadOnlyList<long> applied;
            var codec = new SecretCodec(cipher);
            int encrypted;
            try
            {
                applied = await PostgresMigrations.ApplyAsync(source, ct);
                encrypted = await codec.MigrateAsync(source, ct);
            }
            catch (Exception e) when (PostgresDatabase.Unavailable(e) is { } unavailable) { throw unavailable; }
            return new PostgresStorage(source, new PostgresDatabase(source, codec, nodeId))
            {
                MigrationsApplied = applied, SecretsEncryptedAtOpen = encrypted,
            };
        }
        catch
        {
            await source.DisposeAsync();
            throw;
        }
    }

    /// <summary>Connections one node's pool opens at most unless the connection string says otherwise.</summary>
    public const int DefaultMaxPoolSize = 20;

    static bool Names(string connectionString, params string[] keys)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        return keys.Any(k => given.Keys.Cast<string>().Any(g => string.Equals(g.Replace(" ", ""), k.Replace(" ", ""), StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>One round trip, for health checks: true when the database answers.</summary>
    public async Task<bool> PingAsync(CancellationToken ct)
    {
        await using var cmd = _source.CreateCommand("SELECT 1");
        return await cmd.ExecuteScalarAsync(ct) is 1;
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
