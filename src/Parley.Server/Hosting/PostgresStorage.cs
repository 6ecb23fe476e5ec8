using Microsoft.Extensions.Diagnostics.HealthChecks;
using Parley.Core;
using Parley.Storage.Postgres;

namespace Parley.Server;

/// <summary>
/// The PostgreSQL store as the composition root registers it (<c>Parley:Storage:Provider=Postgres</c>): every port on one
/// connection pool, a readiness check, and a start that refuses in one line when the database cannot be used.
/// docs/storage.md, "PostgreSQL".
/// </summary>
public static class PostgresStorageRegistration
{
    /// <summary>The readiness check's name (tag <c>ready</c>): one <c>SELECT 1</c> within <see cref="PingTimeout"/>.</summary>
    public const string HealthCheckName = "postgres";
    static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Opens the store on <c>ConnectionStrings:Postgres</c>, its secrets encrypted with the Data Protection key ring (which
    /// every node must share: docs/storage.md), and registers each port. A server that does not answer is retried for
    /// <see cref="ParleyOptions.StorageConnectRetry"/>; then, or at once for a wrong password, database or key ring, the
    /// start is refused in one line that never shows the connection string's password.
    /// </summary>
    public static async Task<StoragePorts> AddPostgresStorageAsync(this IServiceCollection services, ParleyOptions options)
    {
        var connectionString = options.PostgresConnectionString
            ?? throw new StartupRefused("Parley:Storage:Provider=Postgres needs the database's Npgsql connection string in ConnectionStrings__Postgres " +
                "(ConnectionStrings:Postgres), e.g. Host=db;Database=parley;Username=parley;Password=….");
        string where;
        try { where = Parley.Storage.Postgres.PostgresStorage.Describe(connectionString); }
        catch (ArgumentException e)
        {
            throw new StartupRefused($"ConnectionStrings__Postgres is not a valid Npgsql connection string: {ParleyOptions.Clip(e.Message.Split('\n')[0].Trim(), 200)}");
        }
        var secrets = SecretsAtRest.Open(options);
        var storage = await OpenAsync(connectionString, where, options, secrets);
        if (storage.SecretsEncryptedAtOpen > 0)
            Console.WriteLine($"parley: encrypted {storage.SecretsEncryptedAtOpen} secret(s) stored in plain text.");
        services.AddSingleton(storage);
        services.AddHealthChecks().AddCheck(HealthCheckName, new PingCheck(storage), tags: [Health.Ready]);
        return services.AddStoragePorts(storage.Ports);
    }

    static async Task<Parley.Storage.Postgres.PostgresStorage> OpenAsync(string connectionString, string where, ParleyOptions options, SecretsAtRest secrets)
    {
        var deadline = DateTimeOffset.UtcNow + options.StorageConnectRetry;
        var delay = TimeSpan.FromMilliseconds(250);
        var attempts = 0;
        while (true)
        {
            // Bounded even when each connection attempt hangs (a host that drops packets): the retry window plus one attempt.
            using var attempt = new CancellationTokenSource(options.StorageConnectRetry + TimeSpan.FromSeconds(10));
            try { return await Parley.Storage.Postgres.PostgresStorage.OpenAsync(connectionString, options.NodeId, secrets, attempt.Token); }
            // At least one retry, however short the window (a first attempt on a busy machine may outlast it).
            catch (StoreUnavailableException e) when (++attempts == 1 || DateTimeOffset.UtcNow + delay < deadline)
            {
                Console.WriteLine($"parley: {FirstLine(e.Message)} Retrying (PostgreSQL at {where}).");
                await Task.Delay(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
            catch (StoreUnavailableException e)
            {
                throw new StartupRefused($"{FirstLine(e.Message)} PostgreSQL at {where}, retried for {options.StorageConnectRetry.TotalSeconds:0} s " +
                    "(Parley:Storage:ConnectRetrySeconds): check ConnectionStrings__Postgres and that the server runs.");
            }
            catch (OperationCanceledException)
            {
                throw new StartupRefused($"PostgreSQL at {where} did not answer within {options.StorageConnectRetry.TotalSeconds + 10:0} s. " +
                    "Check ConnectionStrings__Postgres and that the server runs.");
            }
            catch (Npgsql.PostgresException e)
            {
                // Not transient: a wrong password, a database that does not exist, a role without rights.
                throw new StartupRefused($"PostgreSQL at {where} refused Parley: {e.SqlState} {FirstLine(e.MessageText)}. Check ConnectionStrings__Postgres.");
            }
            catch (SecretsUnreadableException e)
            {
                throw new StartupRefused($"The PostgreSQL database {where} holds secrets that the Data Protection keys in {secrets.KeysFolder} cannot decrypt " +
                    $"({e.Message}). Every node must use the same key ring: set Parley:DataProtection:KeysPath (and CertificatePath) to the keys " +
                    "the other nodes use.");
            }
        }
    }

    static string FirstLine(string message) => ParleyOptions.Clip(message.Split('\n')[0].Trim(), 200);

    /// <summary>What the start banner says of the store: where PostgreSQL is (never the password), or the SQLite file.</summary>
    public static string Banner(ParleyOptions o) => o.StorageProvider == StorageProvider.Postgres && o.PostgresConnectionString is { } cs
        ? $"{Parley.Storage.Postgres.PostgresStorage.Describe(cs)} (PostgreSQL, node {o.NodeId})"
        : $"{o.DatabasePath} (SQLite, WAL, {DurabilityWarning.SqliteBanner(o.Durability)})";

    sealed class PingCheck(Parley.Storage.Postgres.PostgresStorage storage) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(PingTimeout);
            try
            {
                return await storage.PingAsync(timeout.Token)
                    ? HealthCheckResult.Healthy("PostgreSQL answers.")
                    : HealthCheckResult.Unhealthy("PostgreSQL answered SELECT 1 wrongly.");
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return HealthCheckResult.Unhealthy($"PostgreSQL did not answer within {PingTimeout.TotalSeconds:0} s.");
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or StoreUnavailableException or IOException or TimeoutException)
            {
                // The engine's message can name hosts and ports, and /readyz answers without a token: a fixed text only.
                return HealthCheckResult.Unhealthy($"PostgreSQL is unavailable ({e.GetType().Name}).");
            }
        }
    }
}
