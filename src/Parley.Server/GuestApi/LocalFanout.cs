using System.Collections.Immutable;
using System.Net.WebSockets;
using Parley.Core;

namespace Parley.Server.GuestApi;

/// <summary>
/// Single-node fan-out: committed facts go straight to the sockets this process holds. A message is queued on every
/// socket of the guest session; an end is written to every socket and confirmed, so the Platform API call that ended
/// the conversation answers only after each guest socket took the Disconnect frame (or timed out; it is then aborted).
/// Several nodes put a Redis backplane behind <see cref="IConversationFanout"/>; this class stays the local leg.
/// </summary>
public sealed class LocalFanout(SessionRegistry registry, ParleyOptions options, Notifications.NotificationHub notifications)
    : IConversationFanout
{
    static readonly Task<int> Nothing = Task.FromResult(0);

    public Task<int> PublishAsync(Conversation after, ImmutableArray<ConversationEvent> events, bool started)
    {
        if (started) notifications.Publish(CustomerTopic(after, "start"), CustomerEvent(after, after.StartTime));
        foreach (var e in events)
            if (e is ConversationEnded end) notifications.Publish(CustomerTopic(after, "end"), CustomerEvent(after, end.At));

        var sockets = registry.Of(after.GuestSessionId);
        var ended = Nothing;
        foreach (var e in events)
        {
            switch (e)
            {
                case MessageAdded m when !sockets.IsEmpty:
                    var frame = GuestFrames.Message(m.Message, m.TracingId);
                    foreach (var s in sockets) s.Deliver(frame);
                    break;
                case ConversationEnded { Lever: EndLever.GuestClear }:
                    ended = ClearAsync(sockets);
                    break;
                case ConversationEnded end when after.DisconnectMode != DisconnectMode.None:
                    ended = ConfirmAllAsync(sockets, GuestFrames.Disconnect(after, end.At));
                    break;
            }
        }
        return ended;
    }

    static string CustomerTopic(Conversation c, string what) => $"v2.detail.events.conversation.{c.Id}.customer.{what}";

    /// <summary>CustomerStartEvent / CustomerEndEvent (spec §6): epoch-ms eventTime, upper-case enums.</summary>
    static System.Text.Json.Nodes.JsonObject CustomerEvent(Conversation c, DateTimeOffset at)
    {
        var customer = c.Customer;
        var body = new System.Text.Json.Nodes.JsonObject
        {
            ["eventTime"] = at.ToUnixTimeMilliseconds(),
            ["conversationId"] = c.Id,
            ["participantId"] = customer.Id,
            ["sessionId"] = customer.CommunicationId,
            ["mediaType"] = "MESSAGE",
            ["messageType"] = c.Channel == ChannelKind.Open ? "OPEN" : "WEBMESSAGING",
            ["direction"] = c.OriginatingDirection == MessageDirection.Inbound ? "INBOUND" : "OUTBOUND",
            ["addressFrom"] = c.GuestSessionId,
            ["addressTo"] = c.DeploymentId,
            ["divisionId"] = "*",
        };
        // CustomerEndEvent's enum has no INACTIVITY: an idle end is its TIMEOUT.
        if (customer.DisconnectType is { } type) body["disconnectType"] = type == DisconnectType.Inactivity ? "TIMEOUT" : type.ToString().ToUpperInvariant();
        return body;
    }

    async Task<int> ConfirmAllAsync(ImmutableArray<GuestConnection> sockets, byte[] frame)
    {
        if (sockets.IsEmpty) return 0;
        var sends = new Task<bool>[sockets.Length];
        for (var i = 0; i < sockets.Length; i++) sends[i] = sockets[i].DeliverAndConfirmAsync(frame);
        var all = Task.WhenAll(sends);
        if (await Task.WhenAny(all, Task.Delay(options.NotifyTimeout)) != all)
            for (var i = 0; i < sends.Length; i++)
                if (!sends[i].IsCompleted) sockets[i].Abort();   // a guest that cannot take the frame in time is cut off
        var told = 0;
        foreach (var s in sends) if (s.IsCompletedSuccessfully && s.Result) told++;
        return told;
    }

    /// <summary>Guest-side end (Presence Clear, spec §1.12 #5): SessionClearedEvent, ConnectionClosedEvent, then close.</summary>
    async Task<int> ClearAsync(ImmutableArray<GuestConnection> sockets)
    {
        foreach (var s in sockets) s.Deliver(GuestFrames.SessionCleared);
        var told = await ConfirmAllAsync(sockets, GuestFrames.ConnectionClosed);
        foreach (var s in sockets) s.Close(WebSocketCloseStatus.NormalClosure, "conversation cleared");
        return told;
    }
}
