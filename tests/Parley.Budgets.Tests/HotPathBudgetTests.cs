using System.Text.Json;
using Parley.Core;
using Parley.Micro;
using Parley.Protocol;
using Parley.Server.GuestApi;
using Xunit.Abstractions;

namespace Parley.Budgets.Tests;

/// <summary>
/// Bytes allocated per synchronous hot-path operation (docs/performance.md "Allocation budgets"): parse, Decide/Apply,
/// render. Counted on the test's own thread, so exact: each budget is the value measured when it was set plus a margin
/// of about 10 % (rounded up to 8 B), which no change of the runtime's bookkeeping crosses but a real regression does.
/// </summary>
public sealed class HotPathBudgetTests(ITestOutputHelper output)
{
    readonly Conversation _live = Samples.Live();

    long Measure(string what, Action operation)
    {
        var bytes = Budget.PerCall(operation);
        output.WriteLine($"{what}: {bytes} B");
        return bytes;
    }

    // Measured 2026-12-01, parse re-measured 2026-12-03 (settable GuestRequest): docs/performance.md's table; budget ≈ measured + 10 %.
    [Theory]
    [InlineData("onMessage", 1_080)]
    [InlineData("configureSession", 440)]
    [InlineData("echo", 968)]
    public void Parsing_a_guest_frame_stays_within_its_budget(string action, long budget)
    {
        var json = action switch { "onMessage" => Samples.OnMessage, "configureSession" => Samples.ConfigureSession, _ => Samples.Echo };
        var bytes = Measure($"parse {action}", () => JsonSerializer.Deserialize(json, ParleyJson.Wire.GuestRequest));
        Budget.Within(budget, bytes, $"parse {action}");
    }

    [Fact]
    public void Deciding_and_applying_a_guest_message_stays_within_its_budget()
    {
        var text = Samples.GuestText(_live);
        var decide = Measure("Decide message", () => ConversationMachine.Decide(_live, text, Samples.Now));
        var events = ConversationMachine.Decide(_live, text, Samples.Now).Events;
        var apply = Measure("Apply message", () => ConversationMachine.ApplyAll(_live, events));
        Budget.Within(408, decide, "Decide a guest message");
        Budget.Within(0, apply, "Apply a guest message");
    }

    [Fact]
    public void Sequencing_a_committed_guest_message_stays_within_its_budget()
    {
        var events = ConversationMachine.Decide(_live, Samples.GuestText(_live), Samples.Now).Events;
        var sequenced = Measure("Sequenced message", () => ConversationMachine.Sequenced(events, 7));
        Assert.Equal(7, ((MessageAdded)ConversationMachine.Sequenced(events, 7)[0]).Message.Sequence);
        Budget.Within(240, sequenced, "Sequenced: a committed guest message numbered");
    }

    [Fact]
    public void Deciding_and_applying_a_termination_stays_within_its_budget()
    {
        var end = new EndConversation(new Actor("client-1"), EndLever.ConversationDisconnect, null);
        var decide = Measure("Decide termination", () => ConversationMachine.Decide(_live, end, Samples.Now));
        var events = ConversationMachine.Decide(_live, end, Samples.Now).Events;
        var apply = Measure("Apply termination", () => ConversationMachine.ApplyAll(_live, events));
        Budget.Within(416, decide, "Decide a termination");
        Budget.Within(800, apply, "Apply a termination");
    }

    [Fact]
    public void Rendering_the_guest_frames_stays_within_their_budgets()
    {
        var message = Samples.Committed(_live);
        var ended = ConversationMachine.ApplyAll(_live,
            ConversationMachine.Decide(_live, new EndConversation(new Actor("client-1"), EndLever.ConversationDisconnect, null), Samples.Now).Events);
        var messageFrame = Measure("message frame", () => GuestFrames.Message(message, "t-42"));
        var disconnectFrame = Measure("Disconnect frame", () => GuestFrames.Disconnect(ended, Samples.Now));
        var errorFrame = Measure("error frame", () => Wire.ErrorFrame(4020, "Missing parameter 'message.text'.", "t-42"));
        Budget.Within(752, messageFrame, "render a message frame");
        Budget.Within(1_320, disconnectFrame, "render the Disconnect frame");
        Budget.Within(160, errorFrame, "render an error frame");
    }
}
