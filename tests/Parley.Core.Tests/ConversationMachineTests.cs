using Parley.Core;

namespace Parley.Core.Tests;

public sealed class ConversationMachineTests
{
    static readonly DateTimeOffset T0 = new(2026, 11, 26, 9, 0, 0, TimeSpan.Zero);
    static int _ids;
    static string NewId() => $"id-{Interlocked.Increment(ref _ids)}";

    static Conversation Fresh(DisconnectMode mode = DisconnectMode.ReadOnly) =>
        ConversationMachine.Start("c1", ChannelKind.WebMessaging, "dep", "session", mode, MessageDirection.Outbound, "Guest", "Bot", NewId, T0);

    static AddMessage GuestText(Conversation c, string text = "hi") =>
        new(NewId(), c.Customer.Id, MessageKind.Text, text, [], null);

    static Conversation Ended(Conversation c)
    {
        var d = ConversationMachine.Decide(c, new EndConversation(new Actor("client"), EndLever.ConversationDisconnect, null), T0.AddMinutes(1));
        return ConversationMachine.ApplyAll(c, d.Events);
    }

    [Fact]
    public void GuestMessage_OnLiveConversation_IsAcceptedAsInbound_UnderTheCurrentVersion()
    {
        var c = Fresh();

        var d = ConversationMachine.Decide(c, GuestText(c), T0);

        var added = Assert.IsType<MessageAdded>(Assert.Single(d.Events));
        Assert.Equal(MessageDirection.Inbound, added.Message.Direction);
        Assert.Equal(c.Version, added.Message.Version);
        Assert.Equal(c.Version, ConversationMachine.ApplyAll(c, d.Events).Version);   // an append is not a change of state
    }

    [Fact]
    public void Sequenced_NumbersTheCommittedMessages_UpToTheStoresLast_InEventOrder_AndLeavesOtherEvents()
    {
        var c = Fresh();
        var first = ConversationMachine.Decide(c, GuestText(c, "a"), T0).Events;
        var second = ConversationMachine.Decide(c, GuestText(c, "b"), T0).Events;
        var end = ConversationMachine.Decide(c, new EndConversation(new Actor("client"), EndLever.ConversationDisconnect, null), T0).Events;

        var sequenced = ConversationMachine.Sequenced([.. first, .. second, .. end], lastSequence: 7);

        Assert.Equal([(6L, "a"), (7L, "b")], sequenced.OfType<MessageAdded>().Select(m => (m.Message.Sequence, m.Message.Text!)));
        Assert.Equal(end, sequenced.Skip(2));
        Assert.Equal(0, Assert.IsType<MessageAdded>(Assert.Single(first)).Message.Sequence);   // decided, not yet committed
    }

    [Fact]
    public void Stamped_MovesAnEndUpToTheStoresTime_ForTheConversationAndEveryParticipant_NeverDown()
    {
        var c = Fresh();
        var end = ConversationMachine.Decide(c, new DisconnectParticipant(c.Customer.Id, Actor.Guest, EndLever.GuestClear, null), T0).Events;
        var message = ConversationMachine.Decide(c, GuestText(c, "a"), T0).Events;

        var later = ConversationMachine.Stamped([.. message, .. end], T0.AddSeconds(3));
        var ended = ConversationMachine.ApplyAll(c, later);

        Assert.Equal(message, later.Take(1));   // a message keeps its own time
        Assert.All(later.Skip(1), e => Assert.Equal(T0.AddSeconds(3), e.At));
        Assert.Equal(T0.AddSeconds(3), ended.EndTime);
        Assert.All(ended.Participants, p => Assert.Equal(T0.AddSeconds(3), p.EndTime));
        Assert.Equal(end.ToList(), ConversationMachine.Stamped(end, T0.AddSeconds(-3)).ToList());   // an earlier stamp moves nothing
    }

    [Fact]
    public void Termination_MovesTheVersion_SoAMessageDecidedBeforeItConflicts()
    {
        var c = Fresh();

        var ended = Ended(c);

        Assert.True(ended.Version > c.Version);
    }

    [Fact]
    public void GuestMessage_AfterTermination_IsRejectedAsEnded_AndProducesNoEvent()
    {
        var c = Ended(Fresh());

        var d = ConversationMachine.Decide(c, GuestText(c), T0.AddMinutes(2));

        Assert.Equal(RejectionCode.ConversationEnded, d.Rejected?.Code);
        Assert.Empty(d.Events);
    }

    [Fact]
    public void DisconnectingTheCustomer_EndsTheConversation_CustomerClientOthersPeer()
    {
        var c = Fresh();

        var d = ConversationMachine.Decide(c, new DisconnectParticipant(c.Customer.Id, new Actor("bot-backend"), EndLever.ParticipantPatch, "done"), T0);
        var after = ConversationMachine.ApplyAll(c, d.Events);

        Assert.True(after.IsEnded);
        Assert.Equal(T0, after.EndTime);
        Assert.Equal(DisconnectType.Client, after.Customer.DisconnectType);
        Assert.All(after.Participants.Where(p => p.Purpose != ParticipantPurpose.Customer), p => Assert.Equal(DisconnectType.Peer, p.DisconnectType));
        Assert.All(after.Participants, p => Assert.Equal(T0, p.EndTime));
        var ended = Assert.IsType<ConversationEnded>(d.Events[^1]);
        Assert.Equal("bot-backend", ended.By.ClientId);
        Assert.Equal("done", ended.Reason);
    }

    [Fact]
    public void DisconnectingTheLastPlatformParticipant_EndsTheConversation()
    {
        var c = Fresh();
        var bot = c.Participants.Single(p => p.Purpose == ParticipantPurpose.Workflow);

        var after = ConversationMachine.ApplyAll(c,
            ConversationMachine.Decide(c, new DisconnectParticipant(bot.Id, new Actor("x"), EndLever.ParticipantPatch, null), T0).Events);

        Assert.True(after.IsEnded);
    }

    [Fact]
    public void Termination_IsIdempotent_ASecondEndIsANoOp()
    {
        var c = Ended(Fresh());

        Assert.True(ConversationMachine.Decide(c, new EndConversation(new Actor("x"), EndLever.ConversationPatch, null), T0).IsNoOp);
        Assert.True(ConversationMachine.Decide(c, new DisconnectParticipant(c.Customer.Id, new Actor("x"), EndLever.ParticipantPatch, null), T0).IsNoOp);
    }

    [Fact]
    public void UnknownParticipant_IsRejectedAsNotFound()
    {
        var c = Fresh();

        var d = ConversationMachine.Decide(c, new DisconnectParticipant("nobody", new Actor("x"), EndLever.ParticipantPatch, null), T0);

        Assert.Equal(RejectionCode.ParticipantNotFound, d.Rejected?.Code);
    }

    [Theory]
    [InlineData(DisconnectMode.ReadOnly, true)]
    [InlineData(DisconnectMode.Send, false)]
    [InlineData(DisconnectMode.None, false)]
    public void ReadOnlyForGuest_OnlyAfterAnEndInReadOnlyMode(DisconnectMode mode, bool readOnly)
    {
        Assert.False(Fresh(mode).IsReadOnlyForGuest);
        Assert.Equal(readOnly, Ended(Fresh(mode)).IsReadOnlyForGuest);
    }

    [Fact]
    public void ConversationDisconnect_IsTheSystemsDoing_ForEveryParticipant()
    {
        var after = Ended(Fresh());

        Assert.All(after.Participants, p => Assert.Equal(DisconnectType.System, p.DisconnectType));
    }
}
