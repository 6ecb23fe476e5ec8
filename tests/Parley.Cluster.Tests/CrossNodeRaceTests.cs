using System.Collections.Concurrent;
using System.Diagnostics;
using Parley.Server;
using Xunit.Abstractions;

namespace Parley.Cluster.Tests;

/// <summary>
/// Issue 11 item 3: a guest pipelining messages on node A while node B ends its conversation. The store is the arbiter
/// across nodes: nothing is accepted after the end committed, whatever the push between the nodes is doing.
/// </summary>
[Collection(SharedCluster.Name)]
public sealed class CrossNodeRaceTests(ClusterFixture cluster, ITestOutputHelper output)
{
    /// <summary>Trials racing at once; each is its own guest, session and conversation.</summary>
    const int Concurrent = 8;
    /// <summary>At most this many messages a trial's guest sends (it stops sooner, a few messages after the end).</summary>
    const int MaxMessages = 1000;
    /// <summary>Messages the guest still sends once it holds the Disconnect frame: the end is committed, each must be refused.</summary>
    const int SentAfterTheEnd = 3;

    sealed record Counts(int Sent, int AcceptedBefore, int RefusedRacing, int RefusedAfter, int AcceptedAfter, int StoredAfterEnd, int Mismatched,
        int RefusedBeforeTheFrame = 0, double Seconds = 0);

    static int DefaultTrials => 50;

    /// <summary>
    /// For each message the test knows when it left the guest, against the moment the guest's socket on A received the
    /// Disconnect frame (rendered from the committed end, pushed from B: the end is committed by then, and B has not yet
    /// answered). Counted per message: accepted (stored echo) or refused (409 read-only), sent before or after that
    /// moment; and per conversation what the store holds. Must hold: nothing sent after the end is accepted, every refusal
    /// is the read-only error, and what was echoed is exactly what is stored (nothing acknowledged lost, nothing refused
    /// kept). <c>PARLEY_CLUSTER_RACE_TRIALS</c> trials (default 50, under 30 s in CI).
    /// </summary>
    [ClusterFact]
    public async Task GuestSendingOnA_WhileBTerminates_NeverGetsAMessageInAfterTheEndCommitted()
    {
        var trials = Soak.Count("PARLEY_CLUSTER_RACE_TRIALS", DefaultTrials);
        var seed = Soak.Seed("PARLEY_CLUSTER_RACE_SEED");
        using var platform = await PlatformClient.ConnectAsync(cluster.B.BaseAddress,
            handler: new SocketsHttpHandler { MaxConnectionsPerServer = Concurrent * 2 });
        var results = new ConcurrentBag<Counts>();
        var clock = Stopwatch.StartNew();

        await Parallel.ForEachAsync(Enumerable.Range(0, trials), new ParallelOptions { MaxDegreeOfParallelism = Concurrent }, async (trial, _) =>
        {
            var started = Stopwatch.GetTimestamp();
            var counts = await TrialAsync(cluster.A.BaseAddress, platform, trial, new Random(HashCode.Combine(seed, trial)));
            results.Add(counts with { Seconds = Stopwatch.GetElapsedTime(started).TotalSeconds });
        });

        var sum = results.Aggregate(new Counts(0, 0, 0, 0, 0, 0, 0), (a, b) => new Counts(a.Sent + b.Sent, a.AcceptedBefore + b.AcceptedBefore,
            a.RefusedRacing + b.RefusedRacing, a.RefusedAfter + b.RefusedAfter, a.AcceptedAfter + b.AcceptedAfter,
            a.StoredAfterEnd + b.StoredAfterEnd, a.Mismatched + b.Mismatched, a.RefusedBeforeTheFrame + b.RefusedBeforeTheFrame));
        var durations = results.Select(r => r.Seconds).Order().ToList();
        var racing = results.Count(r => r.RefusedRacing > 0);
        output.WriteLine($"trials: {trials} cross-node (guest on A, end on B) in {clock.Elapsed.TotalSeconds:0.0} s, {Concurrent} at once, seed {seed}: "
            + $"{sum.Sent} sends, {sum.AcceptedBefore} accepted before the end, {sum.RefusedRacing} refused (409) before the guest "
            + $"held the Disconnect (in {racing} trials), {sum.RefusedAfter} refused after it, {sum.AcceptedAfter} accepted after the end "
            + $"committed, {sum.Mismatched} trials where echoed and stored differ; {sum.StoredAfterEnd} stored messages carry a time later "
            + "than the end's (committed before it: an append does not move the version an end was decided on); "
            + $"{sum.RefusedBeforeTheFrame} read-only errors reached the guest before its Disconnect frame; "
            + $"a trial took {durations[durations.Count / 2]:0.00} s (median), {durations[^1]:0.00} s at most.");
        Assert.Equal(0, sum.AcceptedAfter);
        Assert.Equal(0, sum.Mismatched);
        Assert.True(sum.RefusedAfter >= trials, "the guest did not keep sending after the end; the test proved nothing");
        Assert.True(sum.AcceptedBefore > 0);
    }

    static async Task<Counts> TrialAsync(Uri nodeA, PlatformClient onB, int trial, Random random)
    {
        await using var guest = await TestGuest.ConnectAsync(nodeA, Guid.NewGuid().ToString(), null, ParleyOptions.DefaultDeploymentId);
        await guest.ConfigureAsync();
        // B ends the conversation after a random number of the guest's messages were echoed (0: at once). A burst first,
        // then a steadier stream: the guest is still sending when the end lands, however long it takes.
        var race = await TerminationRace.RunAsync(guest, onB, trial, terminateAfterEchoes: random.Next(0, 12),
            new RacePace { MaxMessages = MaxMessages, SentAfterTheEnd = SentAfterTheEnd, SteadyFrom = 20 });

        // Judged by time: each message's departure against the moment the guest's socket on A held the Disconnect frame.
        int acceptedBefore = 0, refusedRacing = 0, refusedAfter = 0, acceptedAfter = 0;
        foreach (var (tracingId, sentAt) in race.Sent)
        {
            var answer = race.Answers[tracingId];
            var afterTheEnd = sentAt > race.DisconnectArrivedAt;
            if ((string?)answer["class"] == "StructuredMessage")
            {
                if (afterTheEnd) acceptedAfter++;
                else acceptedBefore++;
            }
            else
            {
                Assert.True((int?)answer["code"] == 409 && (string?)answer["body"] == "Session is read-only, no new messages allowed",
                    $"not the read-only error: {answer.ToJsonString()}");
                if (afterTheEnd) refusedAfter++;
                else refusedRacing++;
            }
        }

        var (endTime, stored) = await TerminationRace.StoredAsync(onB, race.ConversationId);
        var storedAfterEnd = stored.Count(m => m.Time > endTime);
        var refusedBeforeTheFrame = race.Frames.Take(race.DisconnectIndex).Count(f => (int?)f["code"] == 409);
        return new Counts(race.Sent.Count, acceptedBefore, refusedRacing, refusedAfter, acceptedAfter, storedAfterEnd,
            stored.Select(m => m.Id).ToHashSet().SetEquals(race.EchoedIds) ? 0 : 1, refusedBeforeTheFrame);
    }
}
