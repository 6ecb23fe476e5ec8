using System.Collections.Immutable;
using System.Text;
using Parley.Core;

namespace Parley.Micro;

/// <summary>The inputs every benchmark shares: a live two-party conversation, a guest text, the client frames.</summary>
static class Samples
{
    public static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    public static Conversation Live()
    {
        var n = 0;
        return ConversationMachine.Start("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ChannelKind.WebMessaging, "deployment-1",
            "session-1", DisconnectMode.Send, MessageDirection.Inbound, "Guest", "Bot", () => $"participant-{++n}", Now);
    }

    public static AddMessage GuestText(Conversation c) => new("0193a1b2c3d47e5f8a9b0c1d2e3f4a5c",
        c.Participants[0].Id, MessageKind.Text, "Hello, I would like to know where my parcel is.", [], null, TracingId: "t-42");

    public static ConversationMessage Committed(Conversation c) =>
        ((MessageAdded)ConversationMachine.Decide(c, GuestText(c), Now).Events[0]).Message with { Sequence = 7 };

    public static readonly byte[] OnMessage = Encoding.UTF8.GetBytes(
        """{"action":"onMessage","token":"00000000-0000-4000-8000-000000000001","tracingId":"t-42","message":{"type":"Text","text":"Hello, I would like to know where my parcel is."}}""");

    public static readonly byte[] ConfigureSession = Encoding.UTF8.GetBytes(
        """{"action":"configureSession","deploymentId":"00000000-0000-4000-8000-0000000000d1","token":"00000000-0000-4000-8000-000000000001","startNew":false,"tracingId":"t-1"}""");

    public static readonly byte[] Echo = Encoding.UTF8.GetBytes(
        """{"action":"echo","token":"00000000-0000-4000-8000-000000000001","tracingId":"t-43","message":{"type":"Text","text":"ping"}}""");

    public static readonly ImmutableArray<ConversationEvent> NoEvents = [];
}
