using System.Collections.Immutable;
using System.Diagnostics;
using System.Net.WebSockets;
using Parley.Core;
using Parley.Server.Terminations;

namespace Parley.Server.GuestApi;

/// <summary>
/// This node's leg of every push to a guest session: renders the frames and hands them to the sockets the
/// <see cref="SessionRegistry"/> holds here. A delivery that ends the conversation is written to every socket and
/// confirmed, so the call that ended it answers only after each socket took the frame (or, past the deadline, was cut off).
/// </summary>
/// <remarks>
/// An end's frame is a termination's receipt too: each socket's outcome (written, or failed / cut off) is handed to the
/// <see cref="ReceiptRecorder"/> as it happens, with this node's id and the socket's id (docs/ending-sessions.md "Receipts").
/// </remarks>
public sealed class LocalSessionHub(SessionRegistry registry, ReceiptRecorder receipts, TimeProvider clock) : ILocalSessionSockets
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
                return ConfirmAllAsync(sockets, GuestFrames.Disconnect(end.After, end.At), deadline, Receipt(end.TerminationId, end.After.Id));
            case SessionDelivery.Cleared cleared:
                return ClearAsync(sockets, deadline, Receipt(cleared.TerminationId, cleared.ConversationId ?? ""));
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

    /// <summary>Where a confirmed delivery's per-socket outcomes go: the termination's receipt (null: the delivery records none).</summary>
    sealed record ReceiptTarget(string TerminationId, string ConversationId);

    static ReceiptTarget? Receipt(string? terminationId, string conversationId) => terminationId is null ? null : new(terminationId, conversationId);

    async Task<int> ConfirmAllAsync(ImmutableArray<GuestConnection> sockets, byte[] frame, TimeSpan deadline, ReceiptTarget? receipt = null)
    {
        if (sockets.IsEmpty) return 0;
        // One span for this node's sockets, an event per socket: written, or cut off at the deadline.
        using var span = ParleyDiagnostics.Start("parley.sockets.write");
        span?.SetTag("parley.sockets", sockets.Length);
        var sends = new Task<bool>[sockets.Length];
        // Each socket's one outcome (0 unsettled, Written, NotWritten), set once by whichever comes first: its send
        // settling, or the deadline. The receipt's row and the count returned both read it, so they never disagree.
        var outcomes = new int[sockets.Length];
        for (var i = 0; i < sockets.Length; i++)
        {
            sends[i] = sockets[i].DeliverAndConfirmAsync(frame);
            SettleWhenDone(sends[i], sockets[i], receipt, outcomes, i);
        }
        // Waited for with a timer that goes once they are all written (a bulk end has thousands of these in flight:
        // timers left to run out would crowd the timer queue the whole run long).
        try { await Task.WhenAll(sends).WaitAsync(deadline); }
        catch (TimeoutException) { }
        for (var i = 0; i < sends.Length; i++)
        {
            if (sends[i].IsCompleted) { Settle(sends[i], sockets[i], receipt, outcomes, i); continue; }   // its continuation may not have run yet
            // Cut off before the abort settles its send (as failed, later): the outcome is the deadline's.
            if (Interlocked.CompareExchange(ref outcomes[i], NotWritten, 0) == 0 && receipt is not null)
                Record(receipt, sockets[i], false, $"cut off: the frame was not written within {deadline.TotalSeconds:0.#} s");
            sockets[i].Abort();   // a guest that cannot take the frame in time is cut off
        }
        var told = 0;
        for (var i = 0; i < outcomes.Length; i++) if (Volatile.Read(ref outcomes[i]) == Written) told++;
        if (span is not null)
        {
            foreach (var o in outcomes) span.AddEvent(new ActivityEvent(o == Written ? "socket.written" : "socket.cut_off"));
            span.SetTag("parley.sockets.told", told);
        }
        return told;
    }

    /// <summary>
    /// Guest-side end (Presence Clear, docs/compatibility.md §Guest session lifecycle): SessionClearedEvent, ConnectionClosedEvent. The close itself is
    /// left to the <see cref="SessionDelivery.ConnectionsClosed"/> the clearing socket sends once the session is deleted,
    /// so a guest that reconnects as soon as its socket closes never finds the cleared session still there.
    /// </summary>
    Task<int> ClearAsync(ImmutableArray<GuestConnection> sockets, TimeSpan deadline, ReceiptTarget? receipt)
    {
        foreach (var s in sockets) { s.ClearTold = true; s.Deliver(GuestFrames.SessionCleared); }
        return ConfirmAllAsync(sockets, GuestFrames.ConnectionClosed, deadline, receipt);
    }

    const int Written = 1, NotWritten = 2;

    /// <summary>The socket's outcome, once its send settles: written (the send completed), or not.</summary>
    void SettleWhenDone(Task<bool> send, GuestConnection socket, ReceiptTarget? receipt, int[] outcomes, int i)
    {
        if (send.IsCompleted) { Settle(send, socket, receipt, outcomes, i); return; }
        send.ContinueWith(t => Settle(t, socket, receipt, outcomes, i), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    void Settle(Task<bool> send, GuestConnection socket, ReceiptTarget? receipt, int[] outcomes, int i)
    {
        var written = send.IsCompletedSuccessfully && send.Result;
        if (Interlocked.CompareExchange(ref outcomes[i], written ? Written : NotWritten, 0) != 0) return;   // settled already (or cut off at the deadline)
        if (receipt is not null)
            Record(receipt, socket, written, written ? null : $"not written: {socket.CloseReason ?? "the socket was closing or its send failed"}");
    }

    void Record(ReceiptTarget receipt, GuestConnection socket, bool delivered, string? error) =>
        receipts.Record(receipt.TerminationId, receipt.ConversationId, socket.Id, delivered, clock.GetUtcNow(), error);
}
