using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Parley.E2E.Tests;

public sealed class RaceTests(ITestOutputHelper output)
{
    const int Trials = 50;

    /// <summary>
    /// A guest pipelines messages while the backend ends the conversation. Over many trials: every message gets exactly
    /// one answer (stored echo or 409); no message is accepted after the Disconnect frame (the frames follow commit
    /// order); what was echoed is exactly what is stored; nothing stored is later than the end.
    /// </summary>
    [Fact]
    public async Task GuestSendingDuringTermination_NeverGetsAMessageInAfterTheEnd()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var random = new Random(4242);
        int acceptedTotal = 0, rejectedTotal = 0, acceptedAfterEnd = 0;

        for (var trial = 0; trial < Trials; trial++)
        {
            await using var guest = await server.GuestAsync();
            await guest.ConfigureAsync();
            var conversationId = (await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
            await guest.NextAsync(Frames.IsOutboundText);

            var sent = new ConcurrentQueue<(string TracingId, string Text)>();
            using var stopSending = new CancellationTokenSource();
            var sender = Task.Run(async () =>
            {
                for (var i = 0; i < 400 && !stopSending.IsCancellationRequested; i++)
                {
                    var text = $"trial {trial} message {i}";
                    sent.Enqueue((await guest.SendTextNoWaitAsync(text), text));
                    if (i % 4 == 0) await Task.Yield();
                }
            });

            var terminateAfter = random.Next(0, 12);
            var frames = new List<JsonObject>();
            Task<HttpResponseMessage>? termination = null;
            var echoes = 0;
            var sawDisconnect = false;
            while (!sawDisconnect)
            {
                var frame = await guest.NextFrameAsync();
                frames.Add(frame);
                if (Frames.IsInboundEcho(frame)) echoes++;
                sawDisconnect = Frames.IsDisconnect(frame);
                if (termination is null && echoes >= terminateAfter)
                    termination = platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
            }
            stopSending.Cancel();
            await sender;
            Assert.Equal(HttpStatusCode.Accepted, (await termination!).StatusCode);

            var answers = new Dictionary<string, JsonObject>();
            foreach (var f in frames) if ((string?)f["tracingId"] is { } t) answers[t] = f;
            while (answers.Count < sent.Count)
            {
                var f = await guest.NextFrameAsync();
                frames.Add(f);
                if ((string?)f["tracingId"] is { } t) answers[t] = f;
            }

            var disconnectAt = frames.FindIndex(Frames.IsDisconnect);
            var accepted = new HashSet<string>();
            foreach (var (tracingId, text) in sent)
            {
                var answer = answers[tracingId];
                if ((string?)answer["class"] == "StructuredMessage")
                {
                    accepted.Add(text);
                    if (frames.IndexOf(answer) > disconnectAt) acceptedAfterEnd++;
                }
                else
                {
                    Assert.Equal(409, (int)answer["code"]!);
                    Assert.True(frames.IndexOf(answer) > disconnectAt, "a 409 came before the Disconnect frame");
                    rejectedTotal++;
                }
            }
            acceptedTotal += accepted.Count;

            var (_, stored) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}");
            var customer = stored!["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
            var endTime = DateTimeOffset.Parse((string)customer["endTime"]!);
            var storedIds = customer["messages"]!.AsArray().Select(m => (string)m!["messageId"]!).ToHashSet();
            var echoedIds = frames.Where(Frames.IsInboundEcho).Select(f => (string)f["body"]!["id"]!).ToHashSet();
            Assert.Equal(echoedIds, storedIds);
            Assert.All(customer["messages"]!.AsArray(), m => Assert.True(DateTimeOffset.Parse((string)m!["messageTime"]!) <= endTime));
        }

        output.WriteLine($"{Trials} trials: {acceptedTotal} messages accepted before the end, {rejectedTotal} refused with 409 after it, " +
                         $"{acceptedAfterEnd} accepted after the end.");
        Assert.Equal(0, acceptedAfterEnd);
        Assert.True(rejectedTotal > 0, "the guest never raced the termination; the test proved nothing");
    }
}
