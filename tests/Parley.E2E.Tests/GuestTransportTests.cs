using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Parley.Server.GuestApi;

namespace Parley.E2E.Tests;

/// <summary>
/// The guest WebSocket taken below Kestrel's HTTP layer (docs/guest-transport.md): the RFC 6455 handshake over a raw TCP
/// socket, what is handed to the HTTP path instead (and answered there as before), and an idle socket's send state.
/// </summary>
public sealed class GuestTransportTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    static readonly IPAddress Local = IPAddress.Loopback;

    static string Upgrade(string key, string target = $"/v1?deploymentId={ParleyServer.DeploymentId}", string method = "GET",
        string version = "13", string? extra = null, bool upgradeHeaders = true, string host = "parley") =>
        $"{method} {target} HTTP/1.1\r\nHost: {host}\r\n" +
        (upgradeHeaders ? "Connection: Upgrade\r\nUpgrade: websocket\r\n" : "") +
        $"Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: {key}\r\n{extra}\r\n";

    static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    static string Accept(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

    static long Taken(ParleyServer server) => server.Services.GetRequiredService<GuestTransport>().Taken;

    [Fact]
    public async Task AValidUpgrade_IsAnswered101BelowHttp_WithTheRightAccept_AndNoSubprotocolOrExtension()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var connection = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        var key = NewKey();
        // The client offers a subprotocol and permessage-deflate: neither is chosen, as the HTTP path chooses neither.
        await connection.SendAsync(Encoding.ASCII.GetBytes(Upgrade(key,
            extra: "Origin: https://example.com\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n")));
        var head = await connection.ReadHeadAsync(Wait);

        Assert.StartsWith("HTTP/1.1 101 ", head);
        Assert.Contains($"Sec-WebSocket-Accept: {Accept(key)}", head);
        Assert.DoesNotContain("Sec-WebSocket-Protocol", head);
        Assert.DoesNotContain("Sec-WebSocket-Extensions", head);
        Assert.Equal(1, Taken(server));
        await connection.SendTextAsync($$"""{"action":"echo","message":{"text":"hi"},"tracingId":"e1"}""");
        var frame = await connection.ReadFrameAsync(Wait);
        Assert.Contains("\"e1\"", Encoding.UTF8.GetString(frame!.Value.Payload));
    }

    [Fact]
    public async Task FramesSentWithTheHandshake_AreNotLost()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var connection = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        // The handshake and a first frame in one write: the bytes after the head belong to the WebSocket.
        var frame = MaskedText($$"""{"action":"configureSession","token":"{{Guid.NewGuid()}}","deploymentId":"{{ParleyServer.DeploymentId}}","tracingId":"c1"}""");
        await connection.SendAsync(Encoding.ASCII.GetBytes(Upgrade(NewKey())).Concat(frame).ToArray());

        Assert.StartsWith("HTTP/1.1 101 ", await connection.ReadHeadAsync(Wait));
        var answer = JsonNode.Parse(Encoding.UTF8.GetString((await connection.ReadFrameAsync(Wait))!.Value.Payload))!;
        Assert.Equal("SessionResponse", (string?)answer["class"]);
        Assert.Equal("c1", (string?)answer["tracingId"]);
    }

    public static TheoryData<string, string> NotAValidUpgrade => new()
    {
        { "a bad key", Upgrade("not-a-key") },
        { "a key of 15 bytes", Upgrade(Convert.ToBase64String(new byte[15])) },
        { "version 8", Upgrade(NewKey(), version: "8") },
        { "no Upgrade and Connection headers", Upgrade(NewKey(), upgradeHeaders: false) },
        { "a POST", Upgrade(NewKey(), method: "POST", extra: "Content-Length: 0\r\n") },
    };

    /// <summary>Anything but a valid upgrade is handed to Kestrel untouched and answered by the HTTP path, in its form, as before.</summary>
    [Theory]
    [MemberData(nameof(NotAValidUpgrade))]
    public async Task NotAValidUpgrade_IsAnsweredByTheHttpPath_AsBefore(string what, string request)
    {
        await using var server = await ParleyServer.StartAsync();
        await using var connection = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        await connection.SendAsync(Encoding.ASCII.GetBytes(request));
        var head = await connection.ReadHeadAsync(Wait);

        Assert.True(head.StartsWith("HTTP/1.1 400 ", StringComparison.Ordinal), $"{what}: {head}");
        Assert.Contains("application/json", head);
        Assert.Equal(0, Taken(server));
    }

    [Fact]
    public async Task AnUpgradeForAnotherPath_FallsThroughToKestrel()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var connection = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        await connection.SendAsync(Encoding.ASCII.GetBytes(Upgrade(NewKey(), target: "/v1x?deploymentId=x")));

        Assert.StartsWith("HTTP/1.1 404 ", await connection.ReadHeadAsync(Wait));
        Assert.Equal(0, Taken(server));
    }

    /// <summary>Only a connection's first request is looked at: after a plain request, an upgrade on the same connection is the HTTP path's.</summary>
    [Fact]
    public async Task ANonGuestRequestFirst_ThenAnUpgradeOnTheSameConnection_IsServedByTheHttpPath()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var connection = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        await connection.SendAsync("GET /health HTTP/1.1\r\nHost: parley\r\n\r\n"u8.ToArray());
        var health = await connection.ReadHeadAsync(Wait);
        Assert.StartsWith("HTTP/1.1 200 ", health);
        var length = health.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        if (length is not null) await connection.ReadBytesAsync(int.Parse(length[15..].Trim()), Wait);
        else await connection.ReadHeadAsync(Wait);   // a chunked body: it ends with an empty line (the health text has none)

        var key = NewKey();
        await connection.SendAsync(Encoding.ASCII.GetBytes(Upgrade(key)));
        var head = await connection.ReadHeadAsync(Wait);
        Assert.StartsWith("HTTP/1.1 101 ", head);
        Assert.Contains($"Sec-WebSocket-Accept: {Accept(key)}", head);
        Assert.Equal(0, Taken(server));
        await connection.SendTextAsync($$"""{"action":"echo","message":{"text":"hi"},"tracingId":"e2"}""");
        Assert.Contains("\"e2\"", Encoding.UTF8.GetString((await connection.ReadFrameAsync(Wait))!.Value.Payload));
    }

    [Fact]
    public async Task WithAllowedHosts_GuestUpgradesGoThroughTheHttpPath_SoAnotherHostIsRefused()
    {
        await using var server = await ParleyServer.StartAsync(args: ["--AllowedHosts=chat.example.com"]);
        await using (var other = await RawConnection.ConnectAsync(Local, server.BaseAddress))
        {
            await other.SendAsync(Encoding.ASCII.GetBytes(Upgrade(NewKey(), host: "attacker.example")));
            Assert.StartsWith("HTTP/1.1 400 ", await other.ReadHeadAsync(Wait));
        }
        await using var allowed = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        await allowed.SendAsync(Encoding.ASCII.GetBytes(Upgrade(NewKey(), host: "chat.example.com")));
        Assert.StartsWith("HTTP/1.1 101 ", await allowed.ReadHeadAsync(Wait));
        Assert.Equal(0, Taken(server));   // host filtering is the HTTP layer's: the connection transport stays out of the way
    }

    [Fact]
    public async Task RefusalsOfAValidUpgrade_Are403And503_InTheHttpPathsForm()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { MaxGuestSockets = 1 });
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments",
            new { name = "shop", allowedOrigins = new[] { "https://shop.example" } });
        var strictId = deployment!["id"]!.GetValue<string>();

        await using (var refused = await RawConnection.ConnectAsync(Local, server.BaseAddress))
        {
            await refused.SendAsync(Encoding.ASCII.GetBytes(Upgrade(NewKey(), target: $"/v1?deploymentId={strictId}", extra: "Origin: https://evil.example\r\n")));
            var head = await refused.ReadHeadAsync(Wait);
            Assert.StartsWith("HTTP/1.1 403 ", head);
            Assert.Contains("Connection: close", head);
        }
        await using var first = await RawConnection.UpgradeAsync(Local, server.BaseAddress);
        await using (var full = await RawConnection.ConnectAsync(Local, server.BaseAddress))
        {
            await full.SendAsync(Encoding.ASCII.GetBytes(Upgrade(NewKey())));
            var head = await full.ReadHeadAsync(Wait);
            Assert.StartsWith("HTTP/1.1 503 ", head);
            Assert.Contains("Retry-After: 5", head);
            Assert.Contains("Connection: close", head);
        }
        Assert.Equal(1, Taken(server));
    }

    /// <summary>A slowloris on the handshake is cut at RequestHeadersTimeout, as Kestrel cuts one on any other request.</summary>
    [Fact]
    public async Task AHandshakeThatNeverEnds_IsCutAtTheHeadersTimeout()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { RequestHeadersTimeout = TimeSpan.FromSeconds(1) });
        await using var connection = await RawConnection.ConnectAsync(Local, server.BaseAddress);
        await connection.SendAsync(Encoding.ASCII.GetBytes($"GET /v1?deploymentId={ParleyServer.DeploymentId} HTTP/1.1\r\nHost: parley\r\n"));
        using var cts = new CancellationTokenSource(Wait);
        await connection.WaitForServerCloseAsync(cts.Token);
        Assert.False(cts.IsCancellationRequested, "the server kept the half-sent handshake open");
    }

    /// <summary>An idle configured socket holds no send queue, no sending task and no configureSession timer.</summary>
    [Fact]
    public async Task AnIdleConfiguredSocket_HoldsNoSendQueueOrTimer()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        await guest.SendTextAsync("hello");

        var connection = Assert.Single(server.Services.GetRequiredService<SessionRegistry>().Tracked);
        Assert.NotNull(connection.Binding);
        // The echo may reach the guest a moment before the sender has let go of its turn: wait for that, with a deadline.
        Assert.True(SpinWait.SpinUntil(() => !connection.SendState.Sending, Wait), "the socket kept sending");
        Assert.Equal((false, false, false), connection.SendState);
    }

    /// <summary>
    /// A send is timed only when it waits (no timer for one the connection's buffer takes at once): a guest that stops
    /// reading is still cut off when a frame waits past the send timeout, and its frames after that are refused.
    /// </summary>
    [Fact]
    public async Task AGuestThatStopsReading_IsCutOff_WhenAFrameWaitsPastTheSendTimeout()
    {
        using var stalledPair = await SocketPair.ConnectAsync(smallBuffers: true);
        var timeout = TimeSpan.FromMilliseconds(500);
        var connection = new GuestConnection(stalledPair.Server, 16, timeout);
        var small = connection.DeliverAndConfirmAsync("{\"type\":\"message\"}"u8.ToArray());
        Assert.True(await small.WaitAsync(Wait));   // taken at once

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var big = connection.DeliverAndConfirmAsync(new byte[4 << 20]);   // never read: it cannot all be written
        Assert.False(await big.WaitAsync(Wait));
        Assert.InRange(watch.Elapsed, timeout - TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));
        Assert.Equal(System.Net.WebSockets.WebSocketState.Aborted, stalledPair.Server.State);
        Assert.False(connection.Deliver("{}"u8.ToArray()));
        Assert.True(SpinWait.SpinUntil(() => !connection.SendState.Sending, Wait), "the socket kept sending");
    }

    [Fact]
    public async Task AnUnconfiguredSocket_HoldsItsDeadlineTimer_UntilConfigured()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await server.GuestAsync();
        await guest.SendAsync(new { action = "echo", message = new { text = "hi" }, tracingId = "e3" });
        await guest.NextAsync(f => (string?)f["tracingId"] == "e3");
        var connection = Assert.Single(server.Services.GetRequiredService<SessionRegistry>().Tracked);
        Assert.True(connection.SendState.HasDeadlineTimer);

        await guest.ConfigureAsync();
        Assert.False(connection.SendState.HasDeadlineTimer);
    }

    [Fact]
    public async Task WithTheHttpTransport_GuestsAreServedByTheHttpPath()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { GuestTransportBelowHttp = false });
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync("over http"))["class"]);
        Assert.Equal(0, Taken(server));
    }

    static byte[] MaskedText(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var frame = new List<byte> { 0x81 };
        if (payload.Length < 126) frame.Add((byte)(0x80 | payload.Length));
        else { frame.Add(0x80 | 126); frame.Add((byte)(payload.Length >> 8)); frame.Add((byte)payload.Length); }
        var mask = RandomNumberGenerator.GetBytes(4);
        frame.AddRange(mask);
        for (var i = 0; i < payload.Length; i++) frame.Add((byte)(payload[i] ^ mask[i % 4]));
        return frame.ToArray();
    }
}
