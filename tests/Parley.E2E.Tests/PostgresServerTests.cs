using System.Net;
using Npgsql;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>A test that needs the PostgreSQL of scripts/start-services: skipped without it, except in CI (CI=true), where it fails loudly.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public const string Variable = "ConnectionStrings__Postgres";

    public PostgresFactAttribute()
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(Variable))
            && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Skip = $"{Variable} is not set: start the local servers with `eval \"$(scripts/start-services)\"` (.ci/run does this, so in CI the test runs).";
    }
}

/// <summary>
/// A server on PostgreSQL, in process, over real sockets, on a database of its own (created empty, dropped at the end):
/// a guest's conversation, its end told to the guest before the API answers, and what is stored, read back from the
/// database itself and from a restarted server.
/// </summary>
public sealed class PostgresServerTests : IAsyncLifetime
{
    string _database = "";
    string _connectionString = "";

    static string Server => Environment.GetEnvironmentVariable(PostgresFactAttribute.Variable) is { Length: > 0 } v ? v
        : throw new InvalidOperationException($"{PostgresFactAttribute.Variable} is not set: these tests need the PostgreSQL of scripts/start-services.");

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable(PostgresFactAttribute.Variable) is not { Length: > 0 }) return;   // skipped, or failing in the test
        _database = "parley_e2e_" + Guid.NewGuid().ToString("N")[..20];
        await using var c = new NpgsqlConnection(Server);
        await c.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {_database}", c);
        await create.ExecuteNonQueryAsync();
        _connectionString = new NpgsqlConnectionStringBuilder(Server) { Database = _database }.ConnectionString;
    }

    public async Task DisposeAsync()
    {
        if (_database.Length == 0) return;
        await TestDatabases.DropAsync(Server, _database);
    }

    ParleyOptions OnPostgres(ParleyOptions o) =>
        o with { StorageProvider = StorageProvider.Postgres, PostgresConnectionString = Server.Length > 0 ? _connectionString : null, NodeId = "e2e-node" };

    async Task<object?> ScalarAsync(string sql, string? id = null)
    {
        await using var c = new NpgsqlConnection(_connectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        if (id is not null) cmd.Parameters.AddWithValue(id);
        return await cmd.ExecuteScalarAsync();
    }

    [PostgresFact]
    public async Task AGuestConversation_OnPostgres_IsStored_AndItsEndReachesTheGuestBeforeTheAnswer_AndSurvivesARestart()
    {
        await using var server = await ParleyServer.StartAsync(OnPostgres);
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var started = await platform.StartConversationAsync(await guest.SessionIdAsync());
        var conversationId = started["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);
        await guest.SendTextAsync("hello from the guest, stored in PostgreSQL");

        var ended = await platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);

        Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
        Assert.Equal("1", ended.Headers.GetValues("Parley-Sockets-Notified").Single());
        await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
        var refused = await guest.SendTextAsync("one more?");
        Assert.Equal(409, (int)refused["code"]!);

        // In the database itself: the two messages, numbered, and the end with its audit row.
        Assert.Equal(2L, await ScalarAsync("SELECT COUNT(*) FROM messages WHERE conversation_id = $1", conversationId));
        Assert.Equal(2L, await ScalarAsync("SELECT MAX(sequence) FROM messages WHERE conversation_id = $1", conversationId));
        Assert.Equal("Disconnected", await ScalarAsync("SELECT state FROM conversations WHERE id = $1", conversationId));
        Assert.Equal(1L, await ScalarAsync("SELECT COUNT(*) FROM termination_audit WHERE conversation_id = $1", conversationId));
        // Secrets at rest: the signing key is stored encrypted, as on SQLite.
        var key = (byte[])(await ScalarAsync("SELECT key FROM signing_keys WHERE id = 1"))!;
        Assert.StartsWith("parley-dp1:", System.Text.Encoding.ASCII.GetString(key, 0, 11));

        await server.RestartAsync();
        using var again = await server.PlatformAsync();
        var (read, conversation) = await again.GetAsync($"/api/v2/conversations/messages/{conversationId}");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.All(conversation!["participants"]!.AsArray(), p => Assert.Equal("disconnected", (string?)p!["state"]));
        var customer = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        Assert.Single(customer["messages"]!.AsArray());
        // The guest comes back to the ended conversation, read-only, with its token.
        await using var back = await server.GuestAsync(guest.Token);
        Assert.True((await back.ConfigureAsync())["body"]!["readOnly"]!.GetValue<bool>());
    }
}
