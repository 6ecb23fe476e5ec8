namespace Parley.Cluster.Tests.Engines;

/// <summary>
/// One private PostgreSQL and one private Redis for the fault tests (initdb once for them all), which stop, kill and
/// restart them; the shared servers of scripts/start-services are never touched. Each test makes its own database and
/// nodes on them (<see cref="Cluster.StartAsync"/> with these connection strings).
/// </summary>
public sealed class PrivateEngines : IAsyncLifetime
{
    PrivatePostgres? _postgres;
    PrivateRedis? _redis;

    public PrivatePostgres Postgres => _postgres ?? throw new InvalidOperationException(EngineFaultFactAttribute.Missing);
    public PrivateRedis Redis => _redis ?? throw new InvalidOperationException(EngineFaultFactAttribute.Missing);

    public async Task InitializeAsync()
    {
        if (EngineFaultFactAttribute.Missing is not null && !ClusterFactAttribute.InCi) return;   // skipped: nothing to start
        var postgres = PrivatePostgres.CreateAsync();
        var redis = PrivateRedis.StartAsync();
        (_postgres, _redis) = (await postgres, await redis);
    }

    /// <summary>Both running again (a test that failed half-way may have left one down), with a fresh cluster's options.</summary>
    public async Task<ClusterOptions> ClusterOptionsAsync(IReadOnlyList<string>? nodes = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!Postgres.IsRunning) await Postgres.StartAsync();
        if (!Redis.IsRunning) await Redis.StartServerAsync();
        return new ClusterOptions
        {
            Postgres = Postgres.ConnectionString, Redis = Redis.ConnectionString, Nodes = nodes ?? ["a", "b"], Environment = environment,
        };
    }

    public async Task DisposeAsync()
    {
        if (_redis is not null) await _redis.DisposeAsync();
        if (_postgres is not null) await _postgres.DisposeAsync();
    }
}

/// <summary>The collection of the fault tests: one after another, on one pair of private engines.</summary>
[CollectionDefinition(Name)]
public sealed class FaultCollection : ICollectionFixture<PrivateEngines>
{
    public const string Name = "faults on private engines";
}

/// <summary>
/// A fault test: it needs the PostgreSQL and Redis programs (not running servers: it starts its own). Skipped where they
/// are not installed on a developer's machine, with the command that installs them; run, and so failing, in CI.
/// </summary>
public sealed class EngineFaultFactAttribute : FactAttribute
{
    /// <summary>Why the private engines cannot start here, or null when they can.</summary>
    public static readonly string? Missing = FindMissing();

    public EngineFaultFactAttribute()
    {
        if (Missing is not null && !ClusterFactAttribute.InCi) Skip = Missing;
    }

    static string? FindMissing()
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        var missing = new List<string>();
        if (!path.Any(p => File.Exists(Path.Combine(p, "redis-server")))) missing.Add("redis-server");
        if (!PrivatePostgres.Installed) missing.Add("PostgreSQL (initdb, pg_ctl)");
        return missing.Count == 0 ? null
            : $"{string.Join(" and ", missing)} not installed: run scripts/install-services (.ci/run does, so in CI these tests run).";
    }
}
