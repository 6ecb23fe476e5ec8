using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Parley.E2E.Tests;
using Parley.Server;

namespace Parley.Engines.Tests;

/// <summary>
/// Notification channels on several nodes (docs/notifications.md "Several nodes"): two real nodes on one PostgreSQL
/// database (a fresh one) and one Redis. The channel's state is in the store, so any node answers for it; the node that
/// holds its socket learns of subscription changes over the backplane.
/// </summary>
public sealed class NotificationNodesTests
{
    const string Queue = ParleyOptions.DefaultQueueId;
    static readonly string MessagesTopic = $"v2.routing.queues.{Queue}.conversations.messages";

    [EngineFact(RedisNodes.Variable)]
    public async Task AChannelCreatedAndSubscribedOnB_WithItsSocketOnA_HearsAnEndCommittedThroughB_AndAResubscriptionOnB()
    {
        var server = EngineFactAttribute.Require("ConnectionStrings__Postgres");
        var database = "parley_nodes_" + Guid.NewGuid().ToString("N")[..20];
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
            using var onB = await nodes[1].PlatformAsync();
            await using var guest = await nodes[0].GuestAsync();
            await guest.ConfigureAsync();
            var conversationId = (string)(await onB.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;

            // Created and subscribed through B; its socket opened on A (its connectUri names B: A's address is used instead).
            var (_, channel) = await onB.PostAsync("/api/v2/notifications/channels");
            var channelId = (string)channel!["id"]!;
            var subscriptions = $"/api/v2/notifications/channels/{channelId}/subscriptions";
            var endTopic = $"v2.detail.events.conversation.{conversationId}.customer.end";
            var (subscribed, _) = await onB.PostAsync(subscriptions, new[] { new { id = endTopic } });
            Assert.Equal(HttpStatusCode.OK, subscribed.StatusCode);
            var onA = new Uri(nodes[0].BaseAddress, $"/channels/{channelId}").ToString().Replace("http://", "ws://");
            await using var socket = await NotificationSocket.ConnectAsync(channelId, onA);

            // Subscribed again on B while the socket is on A: A re-reads the channel (the backplane tells it) and hears both topics.
            var (added, _) = await onB.PostAsync(subscriptions, new[] { new { id = MessagesTopic } });
            Assert.Equal(HttpStatusCode.OK, added.StatusCode);
            var hubA = nodes[0].Services.GetRequiredService<Parley.Server.Notifications.NotificationHub>();
            await RedisNodes.Until(() => hubA.HasSubscribers(MessagesTopic), TimeSpan.FromSeconds(10), "node A re-read the channel's subscriptions");

            var (ended, _) = await onB.PostAsync($"/api/v2/conversations/{conversationId}/disconnect");
            Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
            var end = await socket.NextOnAsync(endTopic);
            Assert.Equal(conversationId, (string?)end["eventBody"]!["conversationId"]);
            var queueEvent = await socket.NextOnAsync(MessagesTopic);
            Assert.Equal(conversationId, (string?)queueEvent["eventBody"]!["id"]);
            Assert.All(queueEvent["eventBody"]!["participants"]!.AsArray(), p => Assert.Equal("disconnected", (string?)p!["state"]));

            // Unsubscribed through B: A drops the topics from its index.
            var (cleared, _) = await onB.SendAsync(HttpMethod.Delete, subscriptions);
            Assert.Equal(HttpStatusCode.NoContent, cleared.StatusCode);
            await RedisNodes.Until(() => !hubA.HasSubscribers(MessagesTopic), TimeSpan.FromSeconds(10), "node A dropped the channel's subscriptions");
            using var readerOnA = await nodes[0].PlatformAsync();
            Assert.Empty((await readerOnA.GetAsync(subscriptions)).Body!["entities"]!.AsArray());
        }
        finally
        {
            await TestDatabases.DropAsync(server, database);
        }
    }
}
