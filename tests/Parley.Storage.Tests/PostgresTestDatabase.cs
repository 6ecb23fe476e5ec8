using Npgsql;
using Parley.Testing;

namespace Parley.Storage.Tests;

/// <summary>
/// A database of a test class's own on the PostgreSQL that <c>ConnectionStrings__Postgres</c> names
/// (scripts/start-services): created empty (<c>parley_test_…</c>, by the configured role, which has CREATEDB) when the
/// class starts and dropped when it ends. Each test then takes a fresh, empty schema of its own in it
/// (<see cref="NewSchemaAsync"/>), which is far cheaper than a database per test (a DROP DATABASE checkpoints).
/// </summary>
public sealed class PostgresTestDatabase : IAsyncDisposable
{
    public const string Variable = "ConnectionStrings__Postgres";

    readonly string _server;
    readonly Lazy<Task<string>> _database;

    public PostgresTestDatabase()
    {
        _server = Environment.GetEnvironmentVariable(Variable) ?? "";
        _database = new(CreateAsync);
    }

    /// <summary>The configured server's connection string; unset, the test fails saying so (outside CI it is skipped first).</summary>
    public static string Server => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value ? value
        : throw new InvalidOperationException($"{Variable} is not set: the PostgreSQL tests need a server. " +
            "Start one with `eval \"$(scripts/start-services)\"`.");

    async Task<string> CreateAsync()
    {
        var name = "parley_test_" + Guid.NewGuid().ToString("N")[..20];
        await using var c = new NpgsqlConnection(Server);
        await c.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", c);
        await create.ExecuteNonQueryAsync();
        return name;
    }

    /// <summary>The class's database, created on first use.</summary>
    public async Task<string> DatabaseAsync() => new NpgsqlConnectionStringBuilder(Server) { Database = await _database.Value }.ConnectionString;

    /// <summary>A connection string whose search path is a new, empty schema in the class's database: one test's "fresh database".</summary>
    public async Task<string> NewSchemaAsync()
    {
        var database = await DatabaseAsync();
        var schema = "t_" + Guid.NewGuid().ToString("N")[..16];
        await using (var c = new NpgsqlConnection(database))
        {
            await c.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE SCHEMA {schema}", c);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(database) { SearchPath = schema }.ConnectionString;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_database.IsValueCreated) return;
        var name = await _database.Value;
        await TestDatabases.DropAsync(_server, name);
    }
}
