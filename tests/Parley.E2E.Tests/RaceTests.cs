using System.Diagnostics;
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
        var race = await TerminationRace.RunAsync(guest, platform, trial, terminateAfterEchoes: random.Next(0, 12),
            new RacePace { MaxMessages = MaxMessages });

        // Judged by frame order: on one node the Disconnect frame is written before any answer that follows the end.
        var disconnectAt = race.DisconnectIndex;
        int accepted = 0, refused = 0, acceptedAfter = 0;
        foreach (var (tracingId, _) in race.Sent)
        {
            var answer = race.Answers[tracingId];
            if ((string?)answer["class"] == "StructuredMessage")
            {
                accepted++;
                if (race.Frames.IndexOf(answer) > disconnectAt) acceptedAfter++;
            }
            else
            {
                Assert.Equal(409, (int)answer["code"]!);
                Assert.True(race.Frames.IndexOf(answer) > disconnectAt, "a 409 came before the Disconnect frame");
                refused++;
            }
        }

        var (endTime, stored) = await TerminationRace.StoredAsync(platform, race.ConversationId);
        Assert.Equal(race.EchoedIds, stored.Select(m => m.Id).ToHashSet());
        Assert.All(stored, m => Assert.True(m.Time <= endTime));
        return new TrialResult(accepted, refused, acceptedAfter);
    }
}
