using BenchmarkDotNet.Attributes;
using Parley.Core;

namespace Parley.Micro;

/// <summary>The state machine's share of a guest message and of a termination: Decide, then Apply of its facts.</summary>
[MemoryDiagnoser]
public class MachineBenchmarks
{
    readonly Conversation _live = Samples.Live();
    AddMessage _text = null!;
    readonly EndConversation _end = new(new Actor("client-1"), EndLever.ConversationDisconnect, null);
    Decision _textDecision = null!, _endDecision = null!;

    [GlobalSetup]
    public void Setup()
    {
        _text = Samples.GuestText(_live);
        _textDecision = ConversationMachine.Decide(_live, _text, Samples.Now);
        _endDecision = ConversationMachine.Decide(_live, _end, Samples.Now);
    }

    [Benchmark] public Decision DecideMessage() => ConversationMachine.Decide(_live, _text, Samples.Now);
    [Benchmark] public Conversation ApplyMessage() => ConversationMachine.ApplyAll(_live, _textDecision.Events);
    [Benchmark] public Decision DecideTermination() => ConversationMachine.Decide(_live, _end, Samples.Now);
    [Benchmark] public Conversation ApplyTermination() => ConversationMachine.ApplyAll(_live, _endDecision.Events);
}
