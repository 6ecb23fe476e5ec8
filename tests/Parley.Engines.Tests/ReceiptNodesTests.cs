using System.Net;
using Npgsql;
using Parley.E2E.Tests;
using Parley.Server;

namespace Parley.Engines.Tests;

/// <summary>
/// Termination receipts on several nodes (docs/ending-sessions.md "Receipts"): two real nodes on one PostgreSQL database
/// (a fresh one) and one Redis. The node that holds a guest socket records its write under its own id, whichever node
/// the termination came through; the receipts topic reaches a channel whose socket is on another node than the change.
/// </summary>
public sealed class ReceiptNodesTests
{
    const string Topic = "v2.parley.terminations.receipts";

    [EngineFact(RedisNodes.Variable)]
    public async Task AGuestSocketOnA_TerminatedThroughB_ReceiptListsTheSocketWithAsId_AndTheTopicReachesAChannelOnA()
    {
        var server = EngineFactAttribute.Require("ConnectionStrings__Postgres");
        var database = "parley_receipts_" + Guid.NewGuid().ToString("N")[..20];
        await using (var c = new NpgsqlConnection(server))
        {
            await c.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", c);
            await create.ExecuteNonQueryAsync();
        }
        try
        {
            var shared = new NpgsqlConnectionStringBuilder(server) { Database = database }.ConnectionString;
            await using var nodes = await RedisNodes.StartAsync(configure: o => o with { StorageProvider = StorageProvider.Postgres, PostgresConnectionString = shared });
            using var onA = await nodes[0].PlatformAsync();
            using var onB = await nodes[1].PlatformAsync();
            await using var receipts = await NotificationSocket.OpenAsync(onA, Topic);
            await using var guest = await nodes[0].GuestAsync();
            await guest.ConfigureAsync();
            var conversationId = (string)(await onB.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;
            await guest.NextAsync(Frames.IsOutboundText);

            var (ended, _) = await onB.PostAsync($"/api/v2/conversations/{conversationId}/disconnect");

            Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
            var terminationId = ended.Headers.GetValues("Parley-Termination-Id").Single();
            await guest.NextAsync(Frames.IsDisconnect);
            var pushed = (await receipts.NextAsync(f => (string?)f["topicName"] == Topic && (string?)f["eventBody"]?["id"] == terminationId
                && (string?)f["eventBody"]?["state"] != "pending"))["eventBody"]!;
            var (_, read) = await onB.GetAsync($"/api/v2/parley/receipts/{terminationId}");
            foreach (var receipt in new[] { pushed, read! })
            {
                Assert.Equal("delivered", (string?)receipt["state"]);
                Assert.Equal("ConversationDisconnect", (string?)receipt["lever"]);
                Assert.Equal(1, (int)receipt["socketsTargeted"]!);
                var socket = Assert.Single(receipt["sockets"]!.AsArray())!;
                Assert.Equal("node-a", (string?)socket["node"]);
                Assert.Equal("delivered", (string?)socket["state"]);
            }
        }
        finally
        {
            await TestDatabases.DropAsync(server, database);
        }
    }
}
