using Parley.Core;
using Parley.Server.GuestApi;
using Parley.Storage.Sqlite;

namespace Parley.Server;

/// <summary>The durable store behind the storage ports (<c>Parley:Storage:Provider</c>).</summary>
public enum StorageProvider { Sqlite, Postgres }

/// <summary>How committed conversation events reach guest sockets (<c>Parley:Backplane:Provider</c>).</summary>
public enum BackplaneProvider { Local, Redis }

/// <summary>
/// The composition root's adapters: each provider registers itself with its own extension method, chosen by
/// configuration. A provider Parley does not have stops the start in one line naming the setting and what is supported.
/// </summary>
public static class Adapters
{
    /// <summary>Providers the project plans (issue 11) but this version does not have: named as such when asked for.</summary>
    public static readonly string[] PlannedStorage = [];
    /// <summary>Other names a provider answers to (any case): PostgreSQL is Postgres.</summary>
    static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase) { ["PostgreSQL"] = nameof(StorageProvider.Postgres) };
    public static readonly string[] PlannedBackplanes = [];

    /// <summary>The provider named by <paramref name="value"/> (any case); unset: <paramref name="fallback"/>.</summary>
    public static T Choose<T>(string? value, string key, T fallback, string[] planned) where T : struct, Enum
    {
        if (value is null) return fallback;
        var name = value.Trim();
        if (Aliases.TryGetValue(name, out var alias) && Enum.TryParse<T>(alias, out var aliased)) return aliased;
        foreach (var provider in Enum.GetValues<T>())
            if (provider.ToString().Equals(name, StringComparison.OrdinalIgnoreCase)) return provider;
        var supported = $"supported: {string.Join(", ", Enum.GetNames<T>())} (unset: {fallback})";
        throw new StartupRefused(planned.Contains(name, StringComparer.OrdinalIgnoreCase)
            ? $"{key}={ParleyOptions.Clip(name)} is not available in this version of Parley; {supported}."
            : $"{key}={ParleyOptions.Clip(name)} is not a provider Parley has; {supported}.");
    }

    /// <summary>
    /// Opens the store <see cref="ParleyOptions.StorageProvider"/> names and registers it as every storage port. The
    /// store is returned for the start-up steps that run before the container is built (signing key, demo seed).
    /// </summary>
    public static Task<StoragePorts> AddStorageAsync(this IServiceCollection services, ParleyOptions options) => options.StorageProvider switch
    {
        StorageProvider.Sqlite => services.AddSqliteStorageAsync(options),
        StorageProvider.Postgres => services.AddPostgresStorageAsync(options),
        var other => throw new StartupRefused($"Parley:Storage:Provider={other} has no registration."),
    };

    public static IServiceCollection AddBackplane(this IServiceCollection services, ParleyOptions options) => options.BackplaneProvider switch
    {
        BackplaneProvider.Local => services.AddLocalBackplane(),
        BackplaneProvider.Redis => services.AddRedisBackplane(options),
        var other => throw new StartupRefused($"Parley:Backplane:Provider={other} has no registration."),
    };

    /// <summary>
    /// The embedded SQLite store (one file in the data folder, which this process locks), its secrets encrypted at rest;
    /// in memory with <see cref="ParleyOptions.InMemory"/>.
    /// </summary>
    public static async Task<StoragePorts> AddSqliteStorageAsync(this IServiceCollection services, ParleyOptions options)
    {
        if (options.InMemory)
        {
            var memory = await SqliteStore.OpenInMemoryAsync(SecretsAtRest.Open(options), options.SqliteLeaseOwner);
            return services.AddStoragePorts(memory.Ports);
        }
        var folderLock = options.LockDataFolder ? DataFolderLock.Take(options.DataDir) : null;
        try
        {
            var store = await OpenSqliteAsync(options);
            // The lock is released when the store closes (the host's ApplicationStopped), so a restart in this process can take it again.
            return services.AddStoragePorts(folderLock is null ? store.Ports : store.Ports with { Lifetime = new LockedStore(store, folderLock) });
        }
        catch
        {
            folderLock?.Dispose();
            throw;
        }
    }

    /// <summary>Closes the store, then lets go of its data folder.</summary>
    internal sealed class LockedStore(SqliteStore store, DataFolderLock folderLock) : IAsyncDisposable
    {
        public SqliteStore Store => store;

        public async ValueTask DisposeAsync()
        {
            try { await store.DisposeAsync(); }
            finally { folderLock.Dispose(); }
        }
    }

    /// <summary>Registers each port of an opened store; every adapter ends its registration here.</summary>
    public static StoragePorts AddStoragePorts(this IServiceCollection services, StoragePorts ports)
    {
        services.AddSingleton(ports);
        services.AddSingleton(ports.Conversations);
        services.AddSingleton(ports.Sessions);
        // Recording a termination's socket count changes its receipt: every node is told (Terminations/Receipts.cs).
        services.AddSingleton<IAuditLog>(sp => new Terminations.ReceiptSignallingAuditLog(ports.Audit, sp.GetRequiredService<IChangeBroadcast>()));
        services.AddSingleton(ports.Receipts);
        services.AddSingleton(ports.Credentials);
        services.AddSingleton(ports.Users);
        services.AddSingleton(ports.Outbox);
        services.AddSingleton(ports.NotificationChannels);
        services.AddSingleton(ports.TerminationPolicies);
        services.AddSingleton(ports.TerminationJobs);
        // Read on every guest message, changed rarely: behind this node's short cache.
        services.AddSingleton<IDirectoryStore>(sp => new CachedDirectory(ports.Directory, sp.GetRequiredService<TimeProvider>()));
        return ports;
    }

    /// <summary>One node: every delivery to a guest session goes to the sockets this process holds.</summary>
    public static IServiceCollection AddLocalBackplane(this IServiceCollection services)
    {
        services.AddNodeFanout();
        services.AddSingleton<ISessionBackplane, InProcessBackplane>();
        services.AddSingleton<IChangeBroadcast, InProcessChangeBroadcast>();
        return services;
    }

    /// <summary>
    /// What every node has whatever the backplane: its socket registry, the local hub over it (the backplane's leg on this
    /// node), its notification publisher (the change broadcast's leg on this node), and the fan-out that routes every
    /// commit's deliveries through the backplane.
    /// </summary>
    public static IServiceCollection AddNodeFanout(this IServiceCollection services)
    {
        services.AddSingleton<SessionRegistry>();
        // Termination receipts: this node's socket rows, recorded in batches; its leg of the receipts topic; their reader.
        services.AddSingleton<Terminations.ReceiptRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<Terminations.ReceiptRecorder>());
        services.AddSingleton<Terminations.ReceiptNotifications>();
        services.AddSingleton<Terminations.ReceiptReader>();
        services.AddSingleton<LocalSessionHub>();
        services.AddSingleton<ILocalSessionSockets>(sp => sp.GetRequiredService<LocalSessionHub>());
        services.AddSingleton<Notifications.ConversationNotifications>();
        services.AddSingleton<ILocalNotifications>(sp => sp.GetRequiredService<Notifications.ConversationNotifications>());
        services.AddSingleton<IConversationFanout, ConversationFanout>();
        return services;
    }

    /// <summary>
    /// The store, its secrets encrypted at rest with the Data Protection key ring. A key ring that cannot decrypt what the
    /// database holds (the keys folder lost, or another one) refuses the start in one line instead of failing requests.
    /// </summary>
    static async Task<SqliteStore> OpenSqliteAsync(ParleyOptions options)
    {
        var secrets = SecretsAtRest.Open(options);
        SqliteStore store;
        try { store = await SqliteStore.OpenAsync(options.DatabasePath, secrets, options.SqliteLeaseOwner, options.Durability); }
        catch (UnauthorizedAccessException e)
        {
            throw new StartupRefused($"The database {options.DatabasePath} cannot be opened: {ParleyOptions.Clip(e.Message.Split('\n')[0].Trim(), 200)} " +
                "Give this user write access to the data folder, or choose another (--data, PARLEY_DATA_DIR or Parley:DataDir).");
        }
        catch (SecretsUnreadableException e)
        {
            throw new StartupRefused($"The database {options.DatabasePath} holds secrets that the Data Protection keys in {secrets.KeysFolder} " +
                $"cannot decrypt ({e.Message}). Restore that folder from the backup taken with the database, or set " +
                "Parley:DataProtection:KeysPath (and CertificatePath) to the keys this database was written with.");
        }
        if (store.SecretsEncryptedAtOpen > 0)
            Console.WriteLine($"parley: encrypted {store.SecretsEncryptedAtOpen} secret(s) an earlier version had stored in plain text.");
        DurabilityWarning.Print(options);
        return store;
    }
}
