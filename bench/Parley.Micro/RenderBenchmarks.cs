using BenchmarkDotNet.Attributes;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.GuestApi;

namespace Parley.Micro;

/// <summary>The frames a guest receives: a message, the Disconnect presence event, an error.</summary>
[MemoryDiagnoser]
public class RenderBenchmarks
{
    readonly Conversation _live = Samples.Live();
    ConversationMessage _message = null!;
    Conversation _ended = null!;

    [GlobalSetup]
    public void Setup()
    {
        _message = Samples.Committed(_live);
        var end = ConversationMachine.Decide(_live, new EndConversation(new Actor("client-1"), EndLever.ConversationDisconnect, null), Samples.Now);
        _ended = ConversationMachine.ApplyAll(_live, end.Events);
    }

    [Benchmark] public byte[] MessageFrame() => GuestFrames.Message(_message, "t-42");
    [Benchmark] public byte[] DisconnectFrame() => GuestFrames.Disconnect(_ended, Samples.Now);
    [Benchmark] public byte[] ErrorFrame() => Wire.ErrorFrame(4020, "Missing parameter 'message.text'.", "t-42");
}
