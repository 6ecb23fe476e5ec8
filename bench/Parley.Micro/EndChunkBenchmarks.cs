using BenchmarkDotNet.Attributes;
using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Micro;

/// <summary>
/// The writer's share of a bulk termination: two chunks of <see cref="Chunk"/> ends in flight together, as the bulk keeps
/// them, each committed by the SQLite store as one write (<see cref="IConversationStore.CommitManyAsync"/>), so the
/// writer takes both in one group; per end. <c>memory</c> leaves out the disk (CPU and allocations only); <c>file</c> is
/// a temp file with the shipped durability (WAL, fsync per group). Each iteration ends conversations its setup started
/// (bot-started, two participants, ids in time order, as a campaign's are), with their audit rows.
/// </summary>
[MemoryDiagnoser]
public class EndChunkBenchmarks
{
    /// <summary>Ends per chunk: the server's default (<c>Parley:Terminations:Chunk</c>).</summary>
    const int Chunk = 512;

    [Params("memory", "file")] public string Storage = "memory";

    SqliteStore _store = null!;
    string? _dir;
    readonly List<Commit>[] _ends = [[], []];
    long _session;
    static readonly Actor By = new("micro-client");

    [GlobalSetup]
    public async Task Setup()
    {
        if (Storage == "file")
        {
            _dir = Path.Combine(Path.GetTempPath(), "parley-micro-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(_dir);
            _store = await SqliteStore.OpenAsync(Path.Combine(_dir, "parley.db"));
        }
        else _store = await SqliteStore.OpenInMemoryAsync(null);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _store.DisposeAsync();
        if (_dir is not null) Directory.Delete(_dir, recursive: true);
    }

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
        if (_store.Ports.Conversations.CommitManyAsync(started, CancellationToken.None).GetAwaiter().GetResult().Any(r => !r.Stored))
            throw new InvalidOperationException("A conversation was not created.");
    }

    [Benchmark(OperationsPerInvoke = 2 * Chunk)]
    public async Task EndTwoChunks()
    {
        var first = _store.Ports.Conversations.CommitManyAsync(_ends[0], CancellationToken.None);
        var second = _store.Ports.Conversations.CommitManyAsync(_ends[1], CancellationToken.None);
        foreach (var results in await Task.WhenAll(first, second))
            for (var i = 0; i < results.Count; i++)
                if (!results[i].Stored) throw new InvalidOperationException("An end was refused.");
    }
}
