using BenchmarkDotNet.Attributes;
using Parley.Core;

namespace Parley.Micro;

/// <summary>
/// The writer's share of a bulk termination: two chunks of <see cref="Chunk"/> ends in flight together, as the bulk keeps
/// them, each committed by the SQLite store as one write (<see cref="IConversationStore.CommitManyAsync"/>), so the
/// writer takes both in one group; per end, in memory or in a file (<see cref="StoreBenchmarks"/>). Each iteration ends
/// conversations its setup started (bot-started, two participants, ids in time order, as a campaign's are), with their
/// audit rows.
/// </summary>
[MemoryDiagnoser]
public class EndChunkBenchmarks : StoreBenchmarks
{
    /// <summary>Ends per chunk: the server's default (<c>Parley:Terminations:Chunk</c>).</summary>
    const int Chunk = 512;

    readonly List<Commit>[] _ends = [[], []];
    long _session;
    static readonly Actor By = new("micro-client");

    [IterationSetup]
    public void StartConversations()
    {
        var started = new List<Commit>(2 * Chunk);
        foreach (var ends in _ends) ends.Clear();
        for (var i = 0; i < 2 * Chunk; i++)
        {
            var c = ConversationMachine.Start(Guid.CreateVersion7().ToString(), ChannelKind.WebMessaging, "deployment-1",
                $"session-{++_session}", DisconnectMode.Send, MessageDirection.Outbound, "Guest", "Bot",
                () => Guid.CreateVersion7().ToString(), Samples.Now);
            started.Add(new Commit(c, 0, []));
            var end = ConversationMachine.Decide(c, new EndConversation(By, EndLever.Bulk, "micro"), Samples.Now.AddMinutes(1));
            var audit = new TerminationAudit(Guid.CreateVersion7().ToString(), c.Id, null, EndLever.Bulk, By.ClientId, "micro", end.Events[^1].At, null);
            _ends[i / Chunk].Add(new Commit(ConversationMachine.ApplyAll(c, end.Events), c.Version, end.Events, Audit: audit));
        }
        if (Store.Ports.Conversations.CommitManyAsync(started, CancellationToken.None).GetAwaiter().GetResult().Any(r => !r.Stored))
            throw new InvalidOperationException("A conversation was not created.");
    }

    [Benchmark(OperationsPerInvoke = 2 * Chunk)]
    public async Task EndTwoChunks()
    {
        var first = Store.Ports.Conversations.CommitManyAsync(_ends[0], CancellationToken.None);
        var second = Store.Ports.Conversations.CommitManyAsync(_ends[1], CancellationToken.None);
        foreach (var results in await Task.WhenAll(first, second))
            for (var i = 0; i < results.Count; i++)
                if (!results[i].Stored) throw new InvalidOperationException("An end was refused.");
    }
}
