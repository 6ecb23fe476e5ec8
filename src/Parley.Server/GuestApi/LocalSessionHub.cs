using System.Collections.Immutable;
using System.Diagnostics;
using System.Net.WebSockets;
using Parley.Core;

namespace Parley.Server.GuestApi;

/// <summary>
/// This node's leg of every push to a guest session: renders the frames and hands them to the sockets the
/// <see cref="SessionRegistry"/> holds here. A delivery that ends the conversation is written to every socket and
/// confirmed, so the call that ended it answers only after each socket took the frame (or, past the deadline, was cut off).
/// </summary>
public sealed class LocalSessionHub(SessionRegistry registry) : ILocalSessionSockets
{
    public int Count(string sessionId) => registry.Of(sessionId).Length;

    public Task<int> DeliverAsync(string sessionId, SessionDelivery delivery, TimeSpan deadline)
    {
        var sockets = registry.Of(sessionId);
        switch (delivery)
        {
            case SessionDelivery.Message m:
                if (sockets.IsEmpty) return Task.FromResult(0);
                var frame = GuestFrames.Message(m.Body, m.TracingId);
                var queued = 0;
                foreach (var s in sockets) if (s.Deliver(frame)) queued++;
                return Task.FromResult(queued);
            case SessionDelivery.Ended end:
                return ConfirmAllAsync(sockets, GuestFrames.Disconnect(end.After, end.At), deadline);
            case SessionDelivery.Cleared:
                return ClearAsync(sockets, deadline);
            case SessionDelivery.ConnectionsClosed close:
                var told = 0;
                foreach (var s in sockets)
                {
                    if (close.SessionCleared && s.ClearTold) told++;   // the conversation's Clear told it already
                    else
                    {
                        if (close.SessionCleared) s.Deliver(GuestFrames.SessionCleared);
                        if (s.Deliver(GuestFrames.ConnectionClosed)) told++;
                    }
                    s.Close(WebSocketCloseStatus.NormalClosure, close.Reason);
                }
                return Task.FromResult(told);
            default:
                throw new ArgumentOutOfRangeException(nameof(delivery), delivery.GetType().Name, "A delivery this node cannot render.");
        }
    }

    static async Task<int> ConfirmAllAsync(ImmutableArray<GuestConnection> sockets, byte[] frame, TimeSpan deadline)
    {
        if (sockets.IsEmpty) return 0;
        // One span for this node's sockets, an event per socket: written, or cut off at the deadline.
        using var span = ParleyDiagnostics.Start("parley.sockets.write");
        span?.SetTag("parley.sockets", sockets.Length);
        var sends = new Task<bool>[sockets.Length];
        for (var i = 0; i < sockets.Length; i++) sends[i] = sockets[i].DeliverAndConfirmAsync(frame);
        var all = Task.WhenAll(sends);
        if (await Task.WhenAny(all, Task.Delay(deadline)) != all)
            for (var i = 0; i < sends.Length; i++)
                if (!sends[i].IsCompleted) sockets[i].Abort();   // a guest that cannot take the frame in time is cut off
        var told = 0;
        foreach (var s in sends) if (s.IsCompletedSuccessfully && s.Result) told++;
        if (span is not null)
        {
            foreach (var s in sends) span.AddEvent(new ActivityEvent(s.IsCompletedSuccessfully && s.Result ? "socket.written" : "socket.cut_off"));
            span.SetTag("parley.sockets.told", told);
        }
        return told;
    }

    /// <summary>
    /// Guest-side end (Presence Clear, docs/compatibility.md §Guest session lifecycle): SessionClearedEvent, ConnectionClosedEvent. The close itself is
    /// left to the <see cref="SessionDelivery.ConnectionsClosed"/> the clearing socket sends once the session is deleted,
    /// so a guest that reconnects as soon as its socket closes never finds the cleared session still there.
    /// </summary>
    static async Task<int> ClearAsync(ImmutableArray<GuestConnection> sockets, TimeSpan deadline)
    {
        foreach (var s in sockets) { s.ClearTold = true; s.Deliver(GuestFrames.SessionCleared); }
        return await ConfirmAllAsync(sockets, GuestFrames.ConnectionClosed, deadline);
    }
}
