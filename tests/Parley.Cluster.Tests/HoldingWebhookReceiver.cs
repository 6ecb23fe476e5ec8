using System.Net;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Parley.Cluster.Tests.Engines;

namespace Parley.Cluster.Tests;

/// <summary>
/// A channel's webhook on loopback that can hold a request open (answer it later, or never: its sender dies first) and
/// says which process sent each request, read from /proc while the connection is open.
/// </summary>
public sealed class HoldingWebhookReceiver : IAsyncDisposable
{
    public sealed record Received(string DeliveryId, JsonObject Json, int? SenderPid, DateTimeOffset At)
    {
        public string MessageId => (string)Json["id"]!;
    }

    WebApplication _app = null!;
    readonly Channel<Received> _received = Channel.CreateUnbounded<Received>();
    readonly CancellationTokenSource _stop = new();
    int _holdNext;
    IReadOnlyList<int> _senders = [];

    public string Url { get; private set; } = "";

    HoldingWebhookReceiver() { }

    /// <summary>The processes that may send (the nodes): each request's sender is looked up among them.</summary>
    public void SendersAre(params int[] pids) => Volatile.Write(ref _senders, pids);

    /// <summary>The next request is held open until its sender goes away or the receiver stops; the others are answered 200 at once.</summary>
    public void HoldNext() => Volatile.Write(ref _holdNext, 1);

    public static async Task<HoldingWebhookReceiver> StartAsync()
    {
        var receiver = new HoldingWebhookReceiver();
        (receiver._app, receiver.Url) = await LoopbackWebhook.StartAsync(receiver.HandleAsync);
        return receiver;
    }

    async Task HandleAsync(HttpContext http)
    {
        var body = await JsonNode.ParseAsync(http.Request.Body);
        // The sender's end of this connection is its remote port here; found while the connection is open.
        var sender = SocketOwner.Find(http.Connection.RemotePort, Volatile.Read(ref _senders));
        var hold = Interlocked.Exchange(ref _holdNext, 0) == 1;
        _received.Writer.TryWrite(new Received(http.Request.Headers["X-Parley-Delivery-Id"].ToString(), body!.AsObject(), sender, DateTimeOffset.UtcNow));
        if (hold)
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _stop.Token);
            try { await Task.Delay(Timeout.Infinite, either.Token); }
            catch (OperationCanceledException) { return; }   // the sender died, or the test ended: nobody to answer
        }
        http.Response.StatusCode = (int)HttpStatusCode.OK;
    }

    public async Task<Received> NextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { return await _received.Reader.ReadAsync(cts.Token); }
        catch (OperationCanceledException) { throw new TimeoutException($"The webhook received nothing within {timeout.TotalSeconds:0} s."); }
    }

    /// <summary>Whatever has arrived and not been taken yet.</summary>
    public IReadOnlyList<Received> Pending()
    {
        var list = new List<Received>();
        while (_received.Reader.TryRead(out var r)) list.Add(r);
        return list;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stop.Dispose();
    }
}
