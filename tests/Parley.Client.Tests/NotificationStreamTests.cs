using System.Net.WebSockets;
using Microsoft.Extensions.Time.Testing;
using Parley.E2E.Tests;
using Parley.Protocol;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>The notifications stream as <c>IAsyncEnumerable</c>: a termination's event, heartbeats skipped, a dropped socket reconnected.</summary>
public sealed class NotificationStreamTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ATerminationsCustomerEnd_ComesThroughTheStream_AndHeartbeatsDoNot()
    {
        // The server's heartbeat runs on its clock: moving it sends one at once.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(clock: clock);
        using var client = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;
        var topic = $"v2.detail.events.conversation.{conversationId}.customer.end";
        await using var stream = await client.Notifications.OpenAsync([topic]);
        var subscribed = await client.Notifications.GetSubscriptionsAsync(stream.Channel.Id);
        Assert.Equal(topic, Assert.Single(subscribed.Entities).Id);

        clock.Advance(TimeSpan.FromSeconds(31));
        await EventuallyAsync(() => stream.Heartbeats > 0, "a heartbeat read off the socket");
        var result = await client.TerminateAsync(conversationId, "stream");
        Assert.Equal(TerminationStatus.Ended, result.Status);

        await using var events = stream.GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
        var e = events.Current;   // the first thing yielded: the heartbeat was skipped
        Assert.Equal(topic, e.TopicName);
        var end = e.BodyAs(ParleyJson.Wire.CustomerDetailEvent)!;
        Assert.Equal(conversationId, end.ConversationId);
        Assert.Equal(result.Evidence.CustomerParticipantId, end.ParticipantId);
        Assert.NotNull(e.CorrelationId);
    }

    /// <summary>
    /// A second socket on a channel replaces the first (docs/notifications.md): the stream's socket is dropped under it.
    /// It reconnects to the same channel, whose subscriptions the server kept, and the next event arrives.
    /// </summary>
    [Fact]
    public async Task ADroppedSocket_IsReconnectedToTheSameChannel_AndTheStreamGoesOn()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);
        var (guest, conversationId) = await LiveConversationAsync(server, client);
        await using var _ = guest;
        var topic = $"v2.detail.events.conversation.{conversationId}.customer.end";
        await using var stream = await client.Notifications.OpenAsync([topic]);
        var reconnected = new TaskCompletionSource<ChannelWire>(TaskCreationOptions.RunContinuationsAsynchronously);
        stream.Reconnected += c => reconnected.TrySetResult(c);
        var channelId = stream.Channel.Id;

        using (var intruder = new ClientWebSocket())
        {
            await intruder.ConnectAsync(new Uri(stream.Channel.ConnectUri), CancellationToken.None).WaitAsync(Timeout);
            var channel = await reconnected.Task.WaitAsync(Timeout);
            Assert.Equal(channelId, channel.Id);
        }
        Assert.Equal(1, stream.Reconnects);

        await client.TerminateAsync(conversationId);
        await foreach (var e in stream.WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            Assert.Equal(topic, e.TopicName);
            Assert.Equal(conversationId, e.BodyAs(ParleyJson.Wire.CustomerDetailEvent)!.ConversationId);
            break;
        }
    }

    [Fact]
    public async Task AnUnknownTopic_IsRefusedWhenTheStreamOpens()
    {
        await using var server = await ParleyServer.StartAsync();
        using var client = DemoClient(server);

        var e = await Assert.ThrowsAsync<ParleyApiException>(() => client.Notifications.OpenAsync(["v2.conversations.messages.nope"]));

        Assert.Equal(400, e.Status);
    }
}
