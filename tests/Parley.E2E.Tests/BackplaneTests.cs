using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Parley.Core;

namespace Parley.E2E.Tests;

/// <summary>
/// The fan-out seam (issue 11, step 0): every push to a guest session, the termination's socket count and the session
/// listing's socket count go through <see cref="ISessionBackplane"/>, never to this node's sockets alone. The server runs
/// with a backplane that stands for this node plus a second one whose sockets the test plays: what reaches that second
/// node, and what it answers, shows the paths a Redis adapter will carry.
/// </summary>
public sealed class BackplaneTests
{
    /// <summary>A node the test plays: it holds <see cref="Sockets"/> per session and answers confirmed deliveries when let.</summary>
    sealed class OtherNode
    {
        public readonly ConcurrentDictionary<string, int> Sockets = new();
        public readonly Channel<(string Session, SessionDelivery Delivery)> Received = Channel.CreateUnbounded<(string, SessionDelivery)>();
        public readonly TaskCompletionSource Answer = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<int> DeliverAsync(string sessionId, SessionDelivery delivery)
        {
            Received.Writer.TryWrite((sessionId, delivery));
            if (delivery.Confirmed) await Answer.Task;
            return Sockets.GetValueOrDefault(sessionId);
        }

        public async Task<SessionDelivery> NextAsync(string sessionId, Func<SessionDelivery, bool> match)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                var (session, delivery) = await Received.Reader.ReadAsync(timeout.Token);
                if (session == sessionId && match(delivery)) return delivery;
            }
        }
    }

    /// <summary>This node's sockets through the in-process adapter, and the other node's, summed as the port's contract says.</summary>
    sealed class TwoNodes(ISessionBackplane here, OtherNode other) : ISessionBackplane
    {
        public async Task<int> DeliverAsync(string sessionId, SessionDelivery delivery, TimeSpan deadline, CancellationToken ct)
        {
            var local = here.DeliverAsync(sessionId, delivery, deadline, ct);   // first, synchronously: order is kept
            var remote = other.DeliverAsync(sessionId, delivery);
            return await local + await remote;
        }

        public async Task<int> CountSocketsAsync(string sessionId, CancellationToken ct) =>
            await here.CountSocketsAsync(sessionId, ct) + other.Sockets.GetValueOrDefault(sessionId);
    }

    static Task<ParleyServer> StartAsync(OtherNode other) => ParleyServer.StartAsync(services: s =>
        s.AddSingleton<ISessionBackplane>(sp => new TwoNodes(new InProcessBackplane(sp.GetRequiredService<ILocalSessionSockets>()), other)));

    [Fact]
    public async Task Termination_AnswersOnlyAfterTheOtherNodeTookIt_AndCountsSocketsOnEveryNode()
    {
        var other = new OtherNode();
        await using var server = await StartAsync(other);
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        other.Sockets[sessionId] = 2;
        var started = await platform.StartConversationAsync(sessionId, "Hello from the bot");
        var conversationId = started["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);
        var pushed = (SessionDelivery.Message)await other.NextAsync(sessionId, d => d is SessionDelivery.Message);
        Assert.Equal("Hello from the bot", pushed.Body.Text);

        var termination = platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        var ended = (SessionDelivery.Ended)await other.NextAsync(sessionId, d => d is SessionDelivery.Ended);
        Assert.Equal(conversationId, ended.After.Id);
        await guest.NextAsync(Frames.IsDisconnect);   // this node's socket has it already...
        Assert.False(termination.IsCompleted);        // ...but the answer waits for the other node
        other.Answer.SetResult();
        var response = await termination.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("3", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        var (_, audit) = await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        Assert.Equal(3, (int)audit!["entities"]!.AsArray().Single()!["socketsNotified"]!);
    }

    [Fact]
    public async Task SessionListing_CountsSocketsOnEveryNode()
    {
        var other = new OtherNode();
        await using var server = await StartAsync(other);
        using var platform = await server.PlatformAsync();
        await using var both = await server.GuestAsync();
        await both.ConfigureAsync();
        await using var elsewhere = await server.GuestAsync();
        await elsewhere.ConfigureAsync();
        var bothId = await both.SessionIdAsync();
        var elsewhereId = await elsewhere.SessionIdAsync();
        other.Sockets[bothId] = 2;
        other.Sockets[elsewhereId] = 1;
        var t = elsewhere.NextTracingId();   // unbinds this node's socket: the session is connected on the other node only
        await elsewhere.RequestAsync(new { action = "closeSession", token = elsewhere.Token, tracingId = t }, t);

        var (response, body) = await platform.GetAsync("/api/v2/parley/webmessaging/sessions");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sessions = body!["entities"]!.AsArray().ToDictionary(s => (string)s!["id"]!, s => s!);
        Assert.Equal(3, (int)sessions[bothId]["sockets"]!);
        Assert.True((bool)sessions[bothId]["connected"]!);
        Assert.Equal(1, (int)sessions[elsewhereId]["sockets"]!);
        Assert.True((bool)sessions[elsewhereId]["connected"]!);
    }

    [Fact]
    public async Task CloseAllConnections_AndGuestClear_ReachTheOtherNode()
    {
        var other = new OtherNode();
        other.Answer.SetResult();
        await using var server = await StartAsync(other);
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        await using var tab = await server.GuestAsync(guest.Token);
        await tab.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        other.Sockets[sessionId] = 1;

        var t = tab.NextTracingId();
        await tab.RequestAsync(new { action = "closeSession", token = tab.Token, closeAllConnections = true, tracingId = t }, t);
        var closed = (SessionDelivery.ConnectionsClosed)await other.NextAsync(sessionId, d => d is SessionDelivery.ConnectionsClosed);
        Assert.False(closed.SessionCleared);
        await guest.NextAsync(f => (string?)f["class"] == "ConnectionClosedEvent");   // this node's other socket too

        await using var again = await server.GuestAsync(guest.Token);
        await again.ConfigureAsync();
        await platform.StartConversationAsync(sessionId);
        await again.NextAsync(Frames.IsOutboundText);
        t = again.NextTracingId();
        await again.SendAsync(new
        {
            action = "onMessage", token = again.Token, tracingId = t,
            message = new { type = "Event", events = new[] { new { eventType = "Presence", presence = new { type = "Clear" } } } },
        });
        await other.NextAsync(sessionId, d => d is SessionDelivery.Cleared);
        await other.NextAsync(sessionId, d => d is SessionDelivery.ConnectionsClosed { SessionCleared: true });   // the close, after the delete
        await again.NextAsync(f => (string?)f["class"] == "SessionClearedEvent");
        await again.ClosedByServer.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
