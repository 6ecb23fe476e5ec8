using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Parley.E2E.Tests;

public sealed class RaceTests(ITestOutputHelper output)
{
    /// <summary>Conversations racing at once; each trial is its own guest, session and conversation.</summary>
    const int Concurrent = 32;
    /// <summary>Most messages a guest pipelines in one trial (it stops at the Disconnect frame).</summary>
    const int MaxMessages = 40;

    sealed record TrialResult(int AcceptedBefore, int RefusedAfter, int AcceptedAfter);

    /// <summary>
    /// A guest pipelines messages while the backend ends the conversation. Over many trials: every message gets exactly
    /// one answer (stored echo or 409); no message is accepted after the Disconnect frame (the frames follow commit
    /// order); what was echoed is exactly what is stored; nothing stored is later than the end. The normal suite runs
    /// 200 trials; <c>PARLEY_RACE_TRIALS=10000</c> runs the long version (DURABILITY.md).
    /// </summary>
    [Fact]
    public async Task GuestSendingDuringTermination_NeverGetsAMessageInAfterTheEnd()
    {
        var trials = Soak.Count("PARLEY_RACE_TRIALS", 200);
        var seed = Soak.Seed("PARLEY_RACE_SEED");
        await using var server = await ParleyServer.StartAsync(LoadProfile.Options);
        using var platform = await PlatformClient.ConnectAsync(server.BaseAddress,
            handler: LoadProfile.HandlerFrom(LoadProfile.Address(LoadProfile.Addresses - 1), maxConnections: Concurrent));
        await LoadProfile.RaiseDeploymentLimitsAsync(platform);
        int acceptedBefore = 0, refusedAfter = 0, acceptedAfter = 0;
        var clock = Stopwatch.StartNew();

        await Parallel.ForEachAsync(Enumerable.Range(0, trials), new ParallelOptions { MaxDegreeOfParallelism = Concurrent }, async (trial, _) =>
        {
            var r = await TrialAsync(server.BaseAddress, platform, trial, new Random(HashCode.Combine(seed, trial)));
            Interlocked.Add(ref acceptedBefore, r.AcceptedBefore);
            Interlocked.Add(ref refusedAfter, r.RefusedAfter);
            Interlocked.Add(ref acceptedAfter, r.AcceptedAfter);
        });

        output.WriteLine($"race trials: {trials} in {clock.Elapsed.TotalSeconds:0} s ({Concurrent} at once, seed {seed}): " +
                         $"{acceptedBefore} messages accepted before the end, {refusedAfter} refused with 409 after it, " +
                         $"{acceptedAfter} accepted after the end.");
        Assert.Equal(0, acceptedAfter);
        Assert.True(refusedAfter > 0, "the guest never raced the termination; the test proved nothing");
    }

    static async Task<TrialResult> TrialAsync(Uri baseAddress, PlatformClient platform, int trial, Random random)
    {
        await using var guest = await LoadProfile.GuestAsync(baseAddress, trial);
        await guest.ConfigureAsync();
        var conversationId = (await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);

        var sent = new ConcurrentQueue<(string TracingId, string Text)>();
        using var stopSending = new CancellationTokenSource();
        var sender = Task.Run(async () =>
        {
            for (var i = 0; i < MaxMessages && !stopSending.IsCancellationRequested; i++)
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
        await stopSending.CancelAsync();
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
        int accepted = 0, refused = 0, acceptedAfter = 0;
        foreach (var (tracingId, _) in sent)
        {
            var answer = answers[tracingId];
            if ((string?)answer["class"] == "StructuredMessage")
            {
                accepted++;
                if (frames.IndexOf(answer) > disconnectAt) acceptedAfter++;
            }
            else
            {
                Assert.Equal(409, (int)answer["code"]!);
                Assert.True(frames.IndexOf(answer) > disconnectAt, "a 409 came before the Disconnect frame");
                refused++;
            }
        }

        var (_, stored) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}");
        var customer = stored!["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        var endTime = DateTimeOffset.Parse((string)customer["endTime"]!);
        var storedIds = customer["messages"]!.AsArray().Select(m => (string)m!["messageId"]!).ToHashSet();
        var echoedIds = frames.Where(Frames.IsInboundEcho).Select(f => (string)f["body"]!["id"]!).ToHashSet();
        Assert.Equal(echoedIds, storedIds);
        Assert.All(customer["messages"]!.AsArray(), m => Assert.True(DateTimeOffset.Parse((string)m!["messageTime"]!) <= endTime));
        return new TrialResult(accepted, refused, acceptedAfter);
    }
}
