using System.Collections.Immutable;
using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

/// <summary>
/// A guest message refused because the conversation ended is answered only after the end was handed to the guest's
/// sockets. Found by the race at scale (tests/Parley.E2E.Tests/RaceTests.cs, 10,000 trials): a message arriving between
/// the end's commit and its fan-out read the ended conversation from the store and was refused before the Disconnect
/// frame was queued.
/// </summary>
public sealed class EndOrderingTests : IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-order-" + Guid.NewGuid().ToString("N"));
    SqliteStore _store = null!;

    /// <summary>A fan-out that holds the publication of an end until released, as a slow publisher would.</summary>
    sealed class HeldFanout : IConversationFanout
    {
        public readonly ManualResetEventSlim Release = new();
        public readonly TaskCompletionSource Holding = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool EndPublished;

        public Task<int> PublishAsync(Conversation after, ImmutableArray<ConversationEvent> events, bool started, string? terminationId = null)
        {
            if (!events.OfType<ConversationEnded>().Any()) return Task.FromResult(0);
            Holding.TrySetResult();
            Release.Wait(TimeSpan.FromSeconds(30));
            EndPublished = true;
            return Task.FromResult(0);
        }
    }

    public async Task InitializeAsync() => _store = await SqliteStore.OpenAsync(Path.Combine(_dir, "parley.db"));

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task RefusalAfterAnEnd_WaitsUntilTheEndWasPublished()
    {
        var fanout = new HeldFanout();
        var conversations = new Conversations(_store.Ports.Conversations, _store.Ports.Sessions, fanout, TimeProvider.System);
        var session = await _store.Ports.Sessions.CreateAsync(new GuestSession("s-1", "hash-1", "d-1", null, DateTimeOffset.UtcNow), default);
        var channel = new ChannelSettings(ChannelKind.WebMessaging, "d-1", DisconnectMode.ReadOnly);
        AddMessage Message(Conversation c) => new(Conversations.NewMessageId(), c.Customer.Id, MessageKind.Text, "hi", [], null);
        var first = await conversations.SendToSessionAsync(session.Id, channel, MessageDirection.Inbound, Message, default);
        Assert.Equal(OutcomeStatus.Done, first.Status);

        var end = Task.Run(() => conversations.HandleAsync(first.Conversation!.Id,
            new EndConversation(new Actor("bot"), EndLever.ConversationDisconnect, null), default));
        await fanout.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));   // committed; its publication is held

        var refused = conversations.SendToSessionAsync(session.Id, channel, MessageDirection.Inbound, Message, default);
        // Before the fix the refusal came at once, from the stored (ended) state; now it waits for the end's publication.
        Assert.NotSame(refused, await Task.WhenAny(refused, Task.Delay(TimeSpan.FromMilliseconds(500))));
        fanout.Release.Set();
        Assert.Equal(OutcomeStatus.Done, (await end).Status);
        var outcome = await refused.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(RejectionCode.ConversationEnded, outcome.Rejected!.Code);
        Assert.True(fanout.EndPublished);
    }
}
