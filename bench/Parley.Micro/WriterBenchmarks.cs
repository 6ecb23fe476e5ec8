using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using Parley.Core;

namespace Parley.Micro;

/// <summary>
/// The writer's per-message work: a guest message's commit on the SQLite store (the statement, the group, the
/// transaction). <see cref="PerGroup"/> commits are put in flight together, so the writer takes them as one group; the
/// figures are per message, in memory or in a file (<see cref="StoreBenchmarks"/>).
/// </summary>
[MemoryDiagnoser]
public class WriterBenchmarks : StoreBenchmarks
{
    const int PerInvoke = 64;

    [Params(1, 16)] public int PerGroup;

    Conversation _live = null!;
    readonly Task<CommitResult>[] _inFlight = new Task<CommitResult>[16];
    long _next;

    protected override async Task SetUpAsync()
    {
        _live = Samples.Live();
        var created = await Store.Ports.Conversations.CommitAsync(new Commit(_live, 0, []), CancellationToken.None);
        if (!created.Stored) throw new InvalidOperationException("The benchmark's conversation was not created.");
    }

    Commit NextMessage()
    {
        var id = (++_next).ToString("x32");
        var added = new MessageAdded(new ConversationMessage(id, _live.Id, _live.Participants[0].Id, MessageDirection.Inbound, MessageKind.Text,
            "Hello, I would like to know where my parcel is.", [], Samples.Now, null, "Guest", _live.Version, null, "received", null));
        return new Commit(_live, _live.Version, [added]);
    }

    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public async Task CommitMessage()
    {
        for (var done = 0; done < PerInvoke; done += PerGroup)
        {
            for (var i = 0; i < PerGroup; i++) _inFlight[i] = Store.Ports.Conversations.CommitAsync(NextMessage(), CancellationToken.None);
            for (var i = 0; i < PerGroup; i++)
                if (!(await _inFlight[i]).Stored) throw new InvalidOperationException("A message commit was refused.");
        }
    }
}
