using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Parley.E2E.Tests;

/// <summary>
/// Fault injection: Parley as its own process under mixed load — web guests sending, the bot replying through the
/// Platform API to web guests and Open Messaging contacts, a channel posting inbound messages, conversations being ended,
/// webhook deliveries in flight — killed with SIGKILL at a random moment, restarted on the same data folder, again and
/// again. Then: every acknowledged message is stored, every acknowledged end still holds, and the outbox delivered every
/// acknowledged outbound message to a receiver that de-duplicates by delivery id.
/// The normal suite runs a few trials; <c>PARLEY_SOAK_TRIALS=100</c> runs the long version (DURABILITY.md).
/// </summary>
public sealed class FaultInjectionTests(ITestOutputHelper output)
{
    const int Guests = 3, Contacts = 3, Window = 16, Bots = 3;

    sealed record Ack(int Trial, string Kind);

    /// <summary>What Parley acknowledged, and when each end was acknowledged (the client's clock, the same machine's).</summary>
    sealed class Ledger
    {
        public readonly ConcurrentDictionary<string, Ack> Messages = new();
        public readonly ConcurrentDictionary<string, int> OutboundOpen = new();
        public readonly ConcurrentDictionary<string, DateTimeOffset> Ended = new();
        public readonly ConcurrentDictionary<string, byte> Live = new();
        public TaskCompletionSource FirstAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource FirstEnd = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Trial;

        public void EndAcked(string conversationId)
        {
            Ended[conversationId] = DateTimeOffset.UtcNow;
            FirstEnd.TrySetResult();
        }

        public void Acked(string messageId, string kind)
        {
            Messages[messageId] = new Ack(Trial, kind);
            FirstAck.TrySetResult();
        }
    }

    [Fact]
    public async Task KilledAtRandomMomentsUnderMixedLoad_LosesNothingAcknowledged()
    {
        var trials = Soak.Count("PARLEY_SOAK_TRIALS", 3);
        var seed = Soak.Seed("PARLEY_SOAK_SEED");
        output.WriteLine($"fault injection: {trials} trials, seed {seed} (PARLEY_SOAK_SEED={seed} repeats the kill moments)");
        var random = new Random(seed);
        var data = Path.Combine(Path.GetTempPath(), "parley-soak-" + Guid.NewGuid().ToString("N"));
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Delay = TimeSpan.FromMilliseconds(20);   // deliveries stay in flight a while: some are cut by the kill
        var ledger = new Ledger();
        var guestTokens = Enumerable.Range(0, Guests).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var sessionIds = new string?[Guests];
        string? integrationId = null;
        var clock = Stopwatch.StartNew();
        try
        {
            for (var trial = 1; trial <= trials; trial++)
            {
                ledger.Trial = trial;
                ledger.FirstAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
                ledger.Live.Clear();
                var server = await ParleyProcess.StartAsync(data, LoadProfile.ProcessEnvironment);
                try
                {
                    using var platform = await PlatformClient.ConnectAsync(server.BaseAddress);
                    if (integrationId is null)
                    {
                        await LoadProfile.RaiseDeploymentLimitsAsync(platform);
                        integrationId = await CreateIntegrationAsync(platform, receiver.Url);
                    }
                    using var stop = new CancellationTokenSource();
                    var load = new List<Task>();
                    for (var g = 0; g < Guests; g++)
                    {
                        var index = g;
                        load.Add(GuestLoopAsync(server.BaseAddress, index, guestTokens[index], id => sessionIds[index] = id, ledger, stop.Token));
                    }
                    for (var b = 0; b < Bots; b++)
                        load.Add(BotLoopAsync(platform, integrationId, sessionIds, new Random(random.Next()), ledger, stop.Token));
                    load.Add(ChannelLoopAsync(platform, integrationId, new Random(random.Next()), ledger, stop.Token));
                    load.Add(TerminatorLoopAsync(platform, new Random(random.Next()), ledger, stop.Token));

                    // The fault: at a random moment once the load is flowing.
                    await ledger.FirstAck.Task.WaitAsync(TimeSpan.FromSeconds(30));
                    var killAfter = random.Next(100, 2500);
                    await Task.Delay(killAfter);
                    // Short kill moments can all come before any end: the last trial holds its kill until one was acknowledged,
                    // so every surface is exercised whatever the seed.
                    if (trial == trials) await ledger.FirstEnd.Task.WaitAsync(TimeSpan.FromSeconds(30));
                    Assert.False(server.HasExited, $"Parley died by itself in trial {trial}:\n{server.Tail}");
                    server.Kill();
                    await stop.CancelAsync();
                    await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(30));
                    output.WriteLine($"trial {trial}: killed {killAfter} ms into the load; {ledger.Messages.Count} messages, " +
                                     $"{ledger.Ended.Count} ends, {ledger.OutboundOpen.Count} webhook messages acknowledged so far; " +
                                     $"{receiver.Count} deliveries received");
                }
                finally
                {
                    await server.DisposeAsync();
                }
            }

            // The last restart: nothing is killed any more; everything acknowledged must be there, and the outbox drains.
            await using var last = await ParleyProcess.StartAsync(data, LoadProfile.ProcessEnvironment);
            using var check = await PlatformClient.ConnectAsync(last.BaseAddress);
            var (deliveries, distinctDeliveries, distinctMessages, undelivered) = await AwaitOutboxAsync(receiver, ledger, check);
            var lost = await LostMessagesAsync(check, ledger);
            var revived = await RevivedConversationsAsync(check, ledger);
            var (_, dead) = await check.GetAsync("/api/v2/parley/openmessaging/deliveries?state=Dead&pageSize=1");

            var byKind = ledger.Messages.Values.GroupBy(a => a.Kind).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}");
            output.WriteLine($"fault injection trials: {trials} kills in {clock.Elapsed.TotalSeconds:0} s (seed {seed}); " +
                             $"{ledger.Messages.Count} messages acknowledged ({string.Join(", ", byKind)}), {lost.Count} lost; " +
                             $"{ledger.Ended.Count} ends acknowledged, {revived.Count} revived; webhook: {ledger.OutboundOpen.Count} outbound messages " +
                             $"acknowledged, {undelivered.Count} never delivered; {deliveries} deliveries received, {distinctDeliveries} distinct delivery ids " +
                             $"({deliveries - distinctDeliveries} duplicates dropped by the receiver), {distinctMessages} distinct message ids; " +
                             $"{(long)dead!["total"]!} dead-lettered");
            Assert.Empty(lost);
            Assert.Empty(revived);
            Assert.Empty(undelivered);
            Assert.Equal(distinctDeliveries, distinctMessages);   // one delivery id per message: de-duplicating by either is the same
            Assert.Equal(0L, (long)dead["total"]!);
            Assert.True(ledger.Messages.Values.Any(a => a.Kind == "guest") && ledger.Ended.Count > 0 && ledger.OutboundOpen.Count > 0,
                "the load never exercised every surface; the test proved nothing");
        }
        finally
        {
            try { Directory.Delete(data, true); } catch (IOException) { }
        }
    }

    static async Task<string> CreateIntegrationAsync(PlatformClient platform, string webhookUrl)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "Fault injection channel", outboundNotificationWebhookUrl = webhookUrl,
            outboundNotificationWebhookSignatureSecretToken = "fault-injection-secret-0123456789",
        });
        Assert.Equal(200, (int)response.StatusCode);
        return (string)body!["id"]!;
    }

    /// <summary>A web guest pipelining messages (a few in flight); an echo is the acknowledgement. After an end, a new chat.</summary>
    static async Task GuestLoopAsync(Uri baseAddress, int index, string token, Action<string> session, Ledger ledger, CancellationToken stop)
    {
        try
        {
            await using var guest = await LoadProfile.GuestAsync(baseAddress, index, token);
            await guest.ConfigureAsync();
            session(await guest.SessionIdAsync());
            var inFlight = 0;
            var ended = false;
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                if (ended && inFlight == 0)
                {
                    await guest.ConfigureAsync(startNew: true);
                    ended = false;
                }
                while (!ended && inFlight < Window)
                {
                    await guest.SendTextNoWaitAsync($"guest {index} trial {ledger.Trial} message {n++}");
                    inFlight++;
                }
                var frame = await guest.NextFrameAsync();
                if ((string?)frame["tracingId"] is null) continue;
                inFlight--;
                if (Frames.IsInboundEcho(frame)) ledger.Acked((string)frame["body"]!["id"]!, "guest");
                else if ((int?)frame["code"] == 409) ended = true;
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.Net.WebSockets.WebSocketException
                                      or HttpRequestException or OperationCanceledException) { /* the process was killed */ }
    }

    /// <summary>The bot replies through the Platform API, into the live conversation or a new one; a 200 is the acknowledgement.</summary>
    static async Task BotLoopAsync(PlatformClient platform, string integrationId, string?[] sessionIds, Random random, Ledger ledger,
        CancellationToken stop)
    {
        try
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var web = random.Next(2) == 0 && sessionIds[random.Next(Guests)] is { } sessionId ? sessionId : null;
                var (response, body) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
                {
                    fromAddress = web is null ? integrationId : ParleyServer.DeploymentId,
                    toAddress = web ?? $"contact-{random.Next(Contacts)}",
                    toAddressMessengerType = web is null ? "open" : "webmessaging",
                    textBody = $"bot reply {n} in trial {ledger.Trial}", useExistingActiveConversation = true,
                });
                if (response.StatusCode != HttpStatusCode.OK) continue;
                var messageId = (string)body!["id"]!;
                ledger.Acked(messageId, web is null ? "bot-open" : "bot-web");
                if (web is null) ledger.OutboundOpen[messageId] = ledger.Trial;
                ledger.Live[(string)body["conversationId"]!] = 0;
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException) { }
    }

    /// <summary>The Open Messaging channel posts its contacts' messages; a 200 with the stored message is the acknowledgement.</summary>
    static async Task ChannelLoopAsync(PlatformClient platform, string integrationId, Random random, Ledger ledger, CancellationToken stop)
    {
        try
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var contact = random.Next(Contacts);
                var (response, body) = await platform.PostAsync(
                    $"/api/v2/conversations/messages/{integrationId}/inbound/open/message?prefetchConversationId=true", new
                    {
                        channel = new
                        {
                            messageId = Guid.NewGuid().ToString(), time = DateTimeOffset.UtcNow.ToString("O"),
                            from = new { id = $"contact-{contact}", idType = "Opaque", nickname = $"Contact {contact}" },
                        },
                        text = $"inbound {n} in trial {ledger.Trial}",
                    });
                if (response.StatusCode != HttpStatusCode.OK) continue;   // 409 after a read-only end, until the bot starts anew
                ledger.Acked((string)body!["id"]!, "open-inbound");
                ledger.Live[(string)body["conversationId"]!] = 0;
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException) { }
    }

    /// <summary>Ends a conversation the load is using, now and then; a 202 is the acknowledgement.</summary>
    static async Task TerminatorLoopAsync(PlatformClient platform, Random random, Ledger ledger, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(random.Next(50, 300), stop);   // pacing the load, not synchronising
                var live = ledger.Live.Keys.ToArray();
                if (live.Length == 0) continue;
                var conversationId = live[random.Next(live.Length)];
                var response = await platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null, stop);
                if (response.StatusCode == HttpStatusCode.Accepted) ledger.EndAcked(conversationId);
                ledger.Live.TryRemove(conversationId, out _);
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException) { }
    }

    /// <summary>
    /// Waits, on the receiver's deliveries, until every acknowledged outbound Open message arrived and the outbox is empty
    /// (Disconnect events and bodies committed without an answer drain too), or a deadline passes.
    /// </summary>
    static async Task<(int Deliveries, int DistinctDeliveries, int DistinctMessages, List<string> Undelivered)> AwaitOutboxAsync(
        WebhookReceiver receiver, Ledger ledger, PlatformClient platform)
    {
        var deliveryIds = new HashSet<string>();
        var messageIds = new HashSet<string>();
        var deliveries = 0;
        var missing = new HashSet<string>(ledger.OutboundOpen.Keys);
        void Take(WebhookReceiver.Received r)
        {
            deliveries++;
            deliveryIds.Add(r.Header("X-Parley-Delivery-Id"));
            var id = (string)r.Json["id"]!;
            messageIds.Add(id);
            missing.Remove(id);
        }

        // Deliveries in flight when a process was killed are resent by the next one (WebhookRelay: leases released at start).
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            while (receiver.TryTake(out var r)) Take(r!);
            if (missing.Count == 0)
            {
                var (_, pending) = await platform.GetAsync("/api/v2/parley/openmessaging/deliveries?state=Pending&pageSize=1");
                if ((long)pending!["total"]! == 0) break;
            }
            try { Take(await receiver.NextAsync(TimeSpan.FromSeconds(2))); }
            catch (TimeoutException) { }
        }
        while (receiver.TryTake(out var r)) Take(r!);
        return (deliveries, deliveryIds.Count, messageIds.Count, [.. missing]);
    }

    /// <summary>Every acknowledged message, looked up by id on the restarted server.</summary>
    static async Task<List<string>> LostMessagesAsync(PlatformClient platform, Ledger ledger)
    {
        var lost = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(ledger.Messages, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (m, ct) =>
        {
            var response = await platform.Http.GetAsync($"/api/v2/conversations/messages/{m.Key}/details", ct);
            if (response.StatusCode != HttpStatusCode.OK) lost.Add($"{m.Value.Kind} message {m.Key} of trial {m.Value.Trial}: {(int)response.StatusCode}");
        });
        return [.. lost];
    }

    /// <summary>Every acknowledged end: still ended, ended no later than acknowledged, and nothing in it after the end.</summary>
    static async Task<List<string>> RevivedConversationsAsync(PlatformClient platform, Ledger ledger)
    {
        var revived = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(ledger.Ended, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (e, ct) =>
        {
            var (response, body) = await platform.GetAsync($"/api/v2/conversations/messages/{e.Key}");
            if (response.StatusCode != HttpStatusCode.OK) { revived.Add($"{e.Key}: {(int)response.StatusCode}"); return; }
            var participants = body!["participants"]!.AsArray();
            var customer = participants.Single(p => (string?)p!["purpose"] == "customer")!;
            if (customer["endTime"] is not { } end) { revived.Add($"{e.Key}: no end time"); return; }
            var endTime = DateTimeOffset.Parse((string)end!);
            if (endTime > e.Value) revived.Add($"{e.Key}: ended at {endTime:O}, after the end was acknowledged at {e.Value:O}");
            foreach (var m in participants.SelectMany(p => p!["messages"]?.AsArray() ?? []))
                if (DateTimeOffset.Parse((string)m!["messageTime"]!) > endTime) revived.Add($"{e.Key}: message {(string?)m["messageId"]} after the end");
        });
        return [.. revived];
    }
}
