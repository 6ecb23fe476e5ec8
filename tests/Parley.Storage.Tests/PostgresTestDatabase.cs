using Npgsql;

namespace Parley.Storage.Tests;

/// <summary>
/// A database of a test's own on the PostgreSQL that <c>ConnectionStrings__Postgres</c> names (scripts/start-services):
/// created empty (<c>parley_test_…</c>, owned by the configured role, which has CREATEDB) and dropped at the end.
/// </summary>
public sealed class PostgresTestDatabase : IAsyncDisposable
{
    public const string Variable = "ConnectionStrings__Postgres";

    PostgresTestDatabase(string admin, string name)
    {
        _admin = admin;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
    }

    readonly string _admin;
    public string Name { get; }
    public string ConnectionString { get; }

    /// <summary>The configured server's connection string; unset, the test fails saying so (the class is skipped first, outside CI).</summary>
    public static string Server => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value ? value
        : throw new InvalidOperationException($"{Variable} is not set: the PostgreSQL tests need a server. " +
            "Start one with `eval \"$(scripts/start-services)\"`.");

    public static async Task<PostgresTestDatabase> CreateAsync()
    {
        var admin = Server;
        var name = "parley_test_" + Guid.NewGuid().ToString("N")[..20];
        await using var c = new NpgsqlConnection(admin);
        await c.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", c);
        await create.ExecuteNonQueryAsync();
        return new PostgresTestDatabase(admin, name);
    }

    public async ValueTask DisposeAsync()
    {
        await using var c = new NpgsqlConnection(_admin);
        await c.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", c);
        await drop.ExecuteNonQueryAsync();
    }
}
