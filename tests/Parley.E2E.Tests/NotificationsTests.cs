using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

public sealed class NotificationsTests
{
    [Fact]
    public async Task CustomerEnd_IsPublishedToASubscribedChannel_WhenTheBackendEndsTheConversation()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();

        var (created, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var channelId = channel!["id"]!.GetValue<string>();
        var topic = $"v2.detail.events.conversation.{conversationId}.customer.end";
        var startTopic = $"v2.detail.events.conversation.{conversationId}.customer.start";
        var (subscribed, topics) = await platform.PostAsync($"/api/v2/notifications/channels/{channelId}/subscriptions",
            new[] { new { id = topic }, new { id = startTopic } });
        Assert.Equal(HttpStatusCode.OK, subscribed.StatusCode);
        Assert.Equal(2, topics!["entities"]!.AsArray().Count);
        var (refused, _) = await platform.PostAsync($"/api/v2/notifications/channels/{channelId}/subscriptions", new[] { new { id = "v2.users.me.presence" } });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);

        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri(channel["connectUri"]!.GetValue<string>()), CancellationToken.None);
        await socket.SendAsync("{\"message\":\"ping\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("pong", (string?)(await ReceiveAsync(socket))["eventBody"]!["message"]);

        var customer = await platform.ParticipantIdAsync(conversationId, "customer");
        var (ended, _) = await platform.PatchAsync($"/api/v2/conversations/messages/{conversationId}/participants/{customer}", new { state = "disconnected" });
        Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);

        var frame = await ReceiveAsync(socket);
        Assert.Equal(topic, (string?)frame["topicName"]);   // the end, and nothing else (no start on an end)
        Assert.Equal(conversationId, (string?)frame["eventBody"]!["conversationId"]);
        Assert.Equal(customer, (string?)frame["eventBody"]!["participantId"]);
        Assert.Equal("CLIENT", (string?)frame["eventBody"]!["disconnectType"]);
        Assert.Equal("WEBMESSAGING", (string?)frame["eventBody"]!["messageType"]);
        var endTime = DateTimeOffset.Parse((string)(await platform.ConversationAsync(conversationId))["endTime"]!);
        Assert.Equal(endTime.ToUnixTimeMilliseconds(), (long)frame["eventBody"]!["eventTime"]!);
    }

    static async Task<JsonObject> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new byte[16384];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var r = await socket.ReceiveAsync(buffer, timeout.Token);
        return JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, r.Count))!.AsObject();
    }
}
