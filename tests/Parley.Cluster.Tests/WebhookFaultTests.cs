using System.Diagnostics;
using System.Text.Json.Nodes;
using Parley.Cluster.Tests.Engines;
using Xunit.Abstractions;

namespace Parley.Cluster.Tests;

/// <summary>
/// A webhook delivery in flight when its node dies (issue 11 item 4): another node delivers it once its lease runs out,
/// once, and the conversation's next message still comes after it.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class WebhookFaultTests(PrivateEngines engines, ITestOutputHelper output)
{
    // Short for the test (the defaults are 10 s and 30 s): the holder is killed at once, well inside its timeout.
    static readonly Dictionary<string, string> ShortLease = new()
    {
        ["Parley__Webhooks__TimeoutSeconds"] = "5", ["Parley__Webhooks__LeaseSeconds"] = "6"
    };

    [EngineFaultFact]
    public async Task WebhookInFlight_WhenItsNodeIsKilled_IsDeliveredOnceByAnother_InConversationOrder()
    {
        await using var receiver = await HoldingWebhookReceiver.StartAsync();
        var starting = Stopwatch.StartNew();
        await using var cluster = await Cluster.StartAsync(await engines.ClusterOptionsAsync(environment: ShortLease));
        output.WriteLine($"cluster (2 nodes, fresh database) started in {starting.ElapsedMilliseconds} ms");
        receiver.SendersAre(cluster.A.Id, cluster.B.Id);
        using var botA = await PlatformClient.ConnectAsync(cluster.A.BaseAddress);
        var (created, integration) = await botA.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Partner channel", outboundNotificationWebhookUrl = receiver.Url,
            outboundNotificationWebhookSignatureSecretToken = "a-partner-signature-secret-long-enough", disconnectNotification = true,
            conversationDisconnect = new { type = "ReadOnly" },
        });
        Assert.True(created.IsSuccessStatusCode, $"{(int)created.StatusCode} {integration}");
        var integrationId = (string)integration!["id"]!;

        // The first message's delivery is held open by the receiver: its node is mid-delivery.
        receiver.HoldNext();
        var first = await AgentlessAsync(botA, integrationId, "first", useExisting: false);
        var held = await receiver.NextAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(first, held.MessageId);
        // Whichever node's relay leased it (both relay the one outbox) is the one that dies.
        Assert.True(held.SenderPid is not null, "no node process holds the connection of the held request");
        var holder = cluster.Nodes.Single(n => n.Id == held.SenderPid);
        var survivor = cluster.Nodes.Single(n => n != holder);
        holder.Kill();
        var killed = Stopwatch.StartNew();

        // The conversation's next message, through the survivor, while the first is still leased by the dead node.
        using var bot = await PlatformClient.ConnectAsync(survivor.BaseAddress);
        var second = await AgentlessAsync(bot, integrationId, "second", useExisting: true);

        // The survivor sends the first once the dead node's lease has run out, then the second: in order.
        var redelivered = await receiver.NextAsync(TimeSpan.FromSeconds(30));
        var after = killed.Elapsed;
        Assert.Equal((first, held.DeliveryId, survivor.Id), (redelivered.MessageId, redelivered.DeliveryId, redelivered.SenderPid));
        var next = await receiver.NextAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((second, survivor.Id), (next.MessageId, next.SenderPid));
        output.WriteLine($"the held delivery was resent by the surviving node {after.TotalMilliseconds:0} ms after the kill (lease 6 s)");

        // The row ends Delivered, and nothing sends it a third time.
        var delivery = await WaitForDeliveredAsync(bot, integrationId, held.DeliveryId);
        Assert.Equal(200, (int)delivery["lastStatus"]!);
        await WaitForDeliveredAsync(bot, integrationId, next.DeliveryId);
        Assert.Empty(receiver.Pending());
    }

    static async Task<string> AgentlessAsync(PlatformClient bot, string integrationId, string text, bool useExisting)
    {
        var (response, body) = await bot.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = integrationId, toAddress = "+4930111222", toAddressMessengerType = "open", textBody = text,
            useExistingActiveConversation = useExisting,
        });
        Assert.Equal(200, (int)response.StatusCode);
        return (string)body!["id"]!;
    }

    static async Task<JsonNode> WaitForDeliveredAsync(PlatformClient bot, string integrationId, string deliveryId)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var (_, list) = await bot.GetAsync($"/api/v2/parley/openmessaging/deliveries?state=Delivered&integrationId={integrationId}");
            if (list!["entities"]!.AsArray().FirstOrDefault(d => (string?)d!["id"] == deliveryId) is { } found) return found;
            if (deadline.Elapsed > TimeSpan.FromSeconds(15)) throw new TimeoutException($"delivery {deliveryId} is not Delivered");
            await Task.Delay(50);   // polling the API: the outbox has no push notification to wait on
        }
    }
}
