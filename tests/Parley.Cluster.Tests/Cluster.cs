using Npgsql;

namespace Parley.Cluster.Tests;

/// <summary>How to start a <see cref="Cluster"/>.</summary>
public sealed record ClusterOptions
{
    /// <summary>An Npgsql connection string to a server where the role may create databases. Unset: <c>ConnectionStrings__Postgres</c>.</summary>
    public string? Postgres { get; init; }
    /// <summary>A StackExchange.Redis configuration string. Unset: <c>ConnectionStrings__Redis</c>.</summary>
    public string? Redis { get; init; }
    /// <summary>Node ids to start, in order (the first creates the key ring and the schema; the others find them).</summary>
    public IReadOnlyList<string> Nodes { get; init; } = ["a", "b"];
    /// <summary>Settings every node gets on top of <see cref="Cluster.NodeEnvironment"/>'s.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
}

/// <summary>
/// Several Parley processes sharing one PostgreSQL database of their own (created here, dropped at the end), one Redis,
/// and one Data Protection key ring (so a secret one node stored — a token-signing key, a webhook secret — reads on
/// every node). Each node has its own id, data folder and loopback port.
/// </summary>
public sealed class Cluster : IAsyncDisposable
{
    public const string PostgresVariable = "ConnectionStrings__Postgres";
    public const string RedisVariable = "ConnectionStrings__Redis";

    readonly List<ParleyProcess> _nodes = [];
    readonly string _serverConnection;
    readonly IReadOnlyDictionary<string, string> _extra;

    /// <summary>The connection string of this cluster's own database.</summary>
    public string Postgres { get; }
    public string Redis { get; }
    public string Database { get; }
    /// <summary>The Redis prefix of this cluster's backplane (<c>Parley:Backplane:Prefix</c>).</summary>
    public string RedisPrefix { get; }
    /// <summary>A folder of this cluster's own: the key ring and each node's data folder.</summary>
    public string Root { get; } = Directory.CreateTempSubdirectory("parley-cluster-").FullName;
    public string KeysPath => Path.Combine(Root, "keys");

    public IReadOnlyList<ParleyProcess> Nodes => _nodes;
    public ParleyProcess A => _nodes[0];
    public ParleyProcess B => _nodes[1];

    /// <summary>Both engines' connection strings are in the environment (scripts/start-services exports them).</summary>
    public static bool Configured =>
        !string.IsNullOrWhiteSpace(System.Environment.GetEnvironmentVariable(PostgresVariable))
        && !string.IsNullOrWhiteSpace(System.Environment.GetEnvironmentVariable(RedisVariable));

    Cluster(string serverConnection, string redis, IReadOnlyDictionary<string, string>? extra)
    {
        _serverConnection = serverConnection;
        Redis = redis;
        _extra = extra ?? new Dictionary<string, string>();
        var id = Guid.NewGuid().ToString("N")[..20];
        Database = $"parley_test_{id}";
        RedisPrefix = $"parley-test-{id}:";
        Postgres = new NpgsqlConnectionStringBuilder(serverConnection) { Database = Database }.ConnectionString;
    }

    public static async Task<Cluster> StartAsync(ClusterOptions? options = null)
    {
        options ??= new();
        var postgres = options.Postgres ?? System.Environment.GetEnvironmentVariable(PostgresVariable);
        var redis = options.Redis ?? System.Environment.GetEnvironmentVariable(RedisVariable);
        if (string.IsNullOrWhiteSpace(postgres) || string.IsNullOrWhiteSpace(redis))
            throw new InvalidOperationException($"{PostgresVariable} and {RedisVariable} must be set: start the local servers with "
                + "`eval \"$(scripts/start-services)\"`.");
        var cluster = new Cluster(postgres, redis, options.Environment);
        try
        {
            await cluster.CreateDatabaseAsync();
            Directory.CreateDirectory(cluster.KeysPath);
            foreach (var node in options.Nodes) await cluster.StartNodeAsync(node);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>
    /// What every node of this cluster is started with: the engines, its id, the shared key ring, and the load profile
    /// the tests need (they drive guests faster than people type, all from 127.0.0.1; their webhook receivers are on
    /// loopback). Nothing here changes a default for anyone else.
    /// </summary>
    public Dictionary<string, string> NodeEnvironment(string nodeId)
    {
        var environment = new Dictionary<string, string>
        {
            ["Parley__Storage__Provider"] = "Postgres",
            [PostgresVariable] = Postgres,
            ["Parley__Backplane__Provider"] = "Redis",
            [RedisVariable] = Redis,
            // This cluster's own channels and keys: other clusters (tests, bench runs) on the same Redis are not its nodes.
            ["Parley__Backplane__Prefix"] = RedisPrefix,
            ["Parley__Node__Id"] = nodeId,
            ["Parley__DataProtection__KeysPath"] = KeysPath,
            ["Parley__Webhooks__AllowPrivateNetworks"] = "true",
            ["Parley__Demo__GuestMessagesPerSecond"] = "10000",
            ["Parley__Limits__GuestMessagesPerAddressPerSecond"] = "0",
            ["Parley__Limits__NewSessionsPerAddressPerMinute"] = "1000000",
            ["Parley__Limits__NewSessionsPerDeploymentPerMinute"] = "1000000",
            ["Parley__Limits__MaxConnectionsPerAddress"] = "100000",
        };
        foreach (var (key, value) in _extra) environment[key] = value;
        return environment;
    }

    /// <summary>Starts a node (a new id, or again an id whose process was killed: the same data folder) and adds it to <see cref="Nodes"/>.</summary>
    public async Task<ParleyProcess> StartNodeAsync(string nodeId, IReadOnlyDictionary<string, string>? environment = null, int port = 0)
    {
        var settings = NodeEnvironment(nodeId);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) settings[key] = value;
        var node = await ParleyProcess.StartAsync(new ParleyProcessOptions
        {
            DataDir = Path.Combine(Root, nodeId), Environment = settings, Port = port,
        });
        _nodes.Add(node);
        return node;
    }

    /// <summary>The last lines of every node's output, for a failure message.</summary>
    public string Describe() => string.Join("\n", _nodes.Select((n, i) => $"--- node {i} (pid {n.Id}{(n.HasExited ? ", exited" : "")}):\n{n.Tail}"));

    async Task CreateDatabaseAsync()
    {
        await using var connection = new NpgsqlConnection(_serverConnection);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{Database}\"", connection);
        await create.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_nodes.Select(n => n.DisposeAsync().AsTask()));
        try
        {
            await TestDatabases.DropAsync(_serverConnection, Database);
        }
        catch (NpgsqlException) { /* the server is gone (a fault test stopped it): nothing to drop from here */ }
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Two nodes, A and B, on the shared engines, for one test class (or one collection).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    Cluster? _cluster;
    public Cluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster did not start (no engines configured).");
    public ParleyProcess A => Cluster.A;
    public ParleyProcess B => Cluster.B;

    public async Task InitializeAsync()
    {
        // Locally without engines the tests are skipped (ClusterFact), so there is nothing to start; in CI they run and fail.
        if (!Cluster.Configured && !ClusterFactAttribute.InCi) return;
        _cluster = await Cluster.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
    }
}

/// <summary>
/// A test on real engines: skipped, with the command that provides them, where the connection strings are unset on a
/// developer's machine; run (and so failing, not passing unseen) in CI, where .ci/run starts them.
/// </summary>
public sealed class ClusterFactAttribute : FactAttribute
{
    public static bool InCi => string.Equals(System.Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public ClusterFactAttribute()
    {
        if (!Cluster.Configured && !InCi)
            Skip = $"{Cluster.PostgresVariable} and {Cluster.RedisVariable} are not set: start the local servers with "
                + "`eval \"$(scripts/start-services)\"` (.ci/run does, so in CI these tests run).";
    }
}

/// <summary>The collection whose classes share one two-node cluster (and so run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class SharedCluster : ICollectionFixture<ClusterFixture>
{
    public const string Name = "shared cluster";
}
