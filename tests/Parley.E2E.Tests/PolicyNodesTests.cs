using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Parley.Server;
using Parley.Server.Terminations;

namespace Parley.E2E.Tests;

/// <summary>
/// Termination policies on several nodes (docs/ending-sessions.md "Policies"): two servers on one PostgreSQL database both
/// sweep at the same instant, and every conversation the policy ends is ended once: exactly one audit row each.
/// </summary>
public sealed class PolicyNodesTests : IAsyncLifetime
{
    string _database = "";
    string _connectionString = "";

    static string Server => Environment.GetEnvironmentVariable(PostgresFactAttribute.Variable) ?? "";

    public async Task InitializeAsync()
    {
        if (Server.Length == 0) return;   // skipped, or failing in the test
        _database = "parley_policy_" + Guid.NewGuid().ToString("N")[..20];
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

    [PostgresFact]
    public async Task TwoNodesSweepingAtOnce_EndEachConversationOnce_OneAuditRowEach()
    {
        var start = DateTimeOffset.UtcNow;
        var clockA = new FakeTimeProvider(start);
        var clockB = new FakeTimeProvider(start);
        // One database and one Data Protection key ring (the store's secrets), as every node of a cluster has.
        var keys = Path.Combine(Path.GetTempPath(), "parley-policy-keys-" + Guid.NewGuid().ToString("N"));
        Func<ParleyOptions, ParleyOptions> node(string id) => o => o with
        {
            StorageProvider = StorageProvider.Postgres, PostgresConnectionString = _connectionString, NodeId = id, DataProtectionKeysPath = keys,
        };
        await using var a = await ParleyServer.StartAsync(node("policy-a"), clock: clockA);
        await using var b = await ParleyServer.StartAsync(node("policy-b"), clock: clockB);
        using var platform = await a.PlatformAsync();
        var (created, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "two nodes" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var deploymentId = (string)deployment!["id"]!;

        // Conversations on both nodes (their guests connected to either).
        var guests = new List<TestGuest>();
        var conversations = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            var guest = await TestGuest.ConnectAsync(i % 2 == 0 ? a : b, Guid.NewGuid().ToString(), null, deploymentId);
            guests.Add(guest);
            await guest.ConfigureAsync();
            await guest.SendTextAsync("hello");
            conversations.Add(await platform.ConversationOfSessionAsync(await guest.SessionIdAsync()));
        }
        var (made, policy) = await platform.PostAsync("/api/v2/parley/terminationpolicies", new
        {
            name = "cap", type = "maxDuration", deploymentId, maxDurationSeconds = 60,
        });
        Assert.Equal(HttpStatusCode.Created, made.StatusCode);

        // Both nodes' clocks pass the limit together; both sweep, both find every conversation due.
        var due = start.AddSeconds(61);
        clockA.SetUtcNow(due);
        clockB.SetUtcNow(due);
        await Task.WhenAll(a.Services.GetRequiredService<PolicySweeper>().SweptAsync(due), b.Services.GetRequiredService<PolicySweeper>().SweptAsync(due))
            .WaitAsync(TimeSpan.FromSeconds(20));

        foreach (var id in conversations)
        {
            Assert.Equal("disconnected", (string?)(await platform.ConversationAsync(id))["state"]);
            var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={id}");
            var record = Assert.Single(audit!["entities"]!.AsArray())!;
            Assert.Equal(("Policy", $"parley:policy:{policy!["id"]}"), ((string?)record["lever"], (string?)record["client"]!["id"]));
        }
        // (Which node tells a guest its end depends on which won it: without a backplane a node tells only its own sockets —
        // docs/fanout.md. The one-node tests check the guests; this one checks the single end.)
        foreach (var guest in guests) await guest.DisposeAsync();
        try { Directory.Delete(keys, recursive: true); } catch (IOException) { }
    }
}
