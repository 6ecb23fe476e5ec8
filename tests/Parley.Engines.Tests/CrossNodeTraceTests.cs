using System.Net;
using Parley.E2E.Tests;

namespace Parley.Engines.Tests;

/// <summary>
/// One termination is one trace across nodes (docs/observability.md): the W3C trace context travels in the Redis
/// backplane's envelope, so the socket writes on the node that holds the guest are children of the fan-out on the node
/// that took the call. Two real nodes in this process on the Redis scripts/start-services runs.
/// </summary>
public sealed class CrossNodeTraceTests
{
    [EngineFact(RedisNodes.Variable)]
    public async Task Termination_OnB_TheGuestsSocketWriteOnA_IsInTheSameTrace_UnderBsFanOut()
    {
        using var spans = new SpanRecorder();
        await using var nodes = await RedisNodes.StartAsync();
        using var bot = await nodes[1].PlatformAsync();
        await using var guest = await nodes[0].GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (await bot.StartConversationAsync(await guest.SessionIdAsync(), "Hello from B"))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(f => PlatformExtensions.IsText(f, "Hello from B"));

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/{conversationId}/disconnect");
        request.Headers.Add("traceparent", spans.TraceParent);
        var response = await bot.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("1", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        await guest.NextAsync(Frames.IsDisconnect);
        var termination = await spans.WaitForAsync("parley.termination");
        var fanout = await spans.WaitForAsync("parley.fanout");
        var received = await spans.WaitForAsync("parley.backplane.receive");
        var write = await spans.WaitForAsync("parley.sockets.write");
        Assert.Equal(termination.SpanId, fanout.ParentSpanId);
        Assert.Equal(fanout.SpanId, received.ParentSpanId);   // across Redis: A's span continues B's
        Assert.Equal("node-a", received.GetTagItem("parley.node.id"));
        Assert.Equal(received.SpanId, write.ParentSpanId);
        Assert.Equal(1, write.GetTagItem("parley.sockets.told"));
        Assert.Equal(1, fanout.GetTagItem("parley.sockets.told"));
        // B has no socket of this session: the only socket write in the trace is A's
        Assert.Single(spans.Spans, s => s.OperationName == "parley.sockets.write");
    }
}
