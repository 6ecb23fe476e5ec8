using Parley.Core;
using Parley.Protocol;
using Parley.Server.Terminations;

namespace Parley.E2E.Tests;

/// <summary>
/// The receipt's state rule (docs/ending-sessions.md "Receipts", <see cref="ReceiptReader.Build"/>) on its own: an end that
/// had nothing to deliver says <c>none</c>, never <c>delivered</c>.
/// </summary>
public sealed class ReceiptStateRuleTests
{
    static readonly DateTimeOffset At = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    static TerminationAudit Audit(int? socketsNotified) =>
        new("t-1", "c-1", "p-1", EndLever.ParticipantPatch, "client", "compliance", At, socketsNotified);

    static SocketReceipt Socket(bool delivered) => new("t-1", "c-1", "node-a", Guid.NewGuid().ToString(), delivered, At, delivered ? null : "cut off");

    static OutboxDelivery Channel(DeliveryState state) =>
        new(new OutboxItem("d-1", "integration-1", "m-1", "c-1", [], At), state, 1, null, null, At, state == DeliveryState.Delivered ? At : null);

    [Fact]
    public void NothingToDeliver_ZeroSocketsCounted_NoRows_NoChannels_IsNone_NotDelivered()
    {
        var receipt = ReceiptReader.Build(Audit(0), [], []);
        Assert.Equal(ReceiptStates.NothingToDeliver, receipt.State);
        Assert.Equal("none", receipt.State);
        Assert.Equal(0, receipt.SocketsTargeted);
    }

    [Fact]
    public void FanOutNotAnswered_IsPending_EvenWithNothingRecorded()
    {
        Assert.Equal(ReceiptStates.Pending, ReceiptReader.Build(Audit(null), [], []).State);
    }

    [Fact]
    public void ZeroSocketsButAChannelDelivered_IsDelivered_AndZeroSocketsButOneFailedRow_IsFailed()
    {
        Assert.Equal(ReceiptStates.Delivered, ReceiptReader.Build(Audit(0), [], [Channel(DeliveryState.Delivered)]).State);
        Assert.Equal(ReceiptStates.Pending, ReceiptReader.Build(Audit(0), [], [Channel(DeliveryState.Pending)]).State);
        Assert.Equal(ReceiptStates.Failed, ReceiptReader.Build(Audit(0), [Socket(false)], []).State);
    }

    [Fact]
    public void CountEqualsDeliveredRows_IsDelivered_CountAboveRows_StaysPending()
    {
        Assert.Equal(ReceiptStates.Delivered, ReceiptReader.Build(Audit(1), [Socket(true)], []).State);
        Assert.Equal(ReceiptStates.Pending, ReceiptReader.Build(Audit(2), [Socket(true)], []).State);
    }
}
