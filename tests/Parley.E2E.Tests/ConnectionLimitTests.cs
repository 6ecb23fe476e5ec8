using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

/// <summary>
/// Idle and silent connections cannot take the server down (issue 10, item 1): no small global cap, per-address limits,
/// a configureSession deadline, a pong timeout, a rate on new guest sessions; and an oversized frame is refused as announced.
/// </summary>
[Collection(Alone.Name)]   // thousands of connections: alone, so neither its timings nor its neighbours' suffer
public sealed class ConnectionLimitTests
{
    static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task IdleAndSilentConnections_DoNotLockOutThePlatformApiOAuthOrNewGuests()
    {
        // Default limits, except deadlines short enough for a test to see them act.
        await using var server = await ParleyServer.StartAsync(o => o with
        {
            ConfigureSessionTimeout = TimeSpan.FromSeconds(10), KeepAliveTimeout = TimeSpan.FromSeconds(10),
        });
        using var platform = await server.PlatformAsync();   // before the attack: the token is not what is measured below
        var idle = new List<RawConnection>();
        var silent = new List<RawConnection>();
        try
        {
            // The attack: 1,000 idle TCP connections from 127.0.0.2 and 1,000 upgraded guest sockets from 127.0.0.3 that
            // never send configureSession and never answer a ping.
            var opening = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, 2000), new ParallelOptions { MaxDegreeOfParallelism = 50 }, async (i, _) =>
            {
                if (i % 2 == 0)
                {
                    var c = await RawConnection.ConnectAsync(RawConnection.Loopback(2), server.BaseAddress);
                    lock (idle) idle.Add(c);
                }
                else
                {
                    var c = await RawConnection.UpgradeAsync(RawConnection.Loopback(3), server.BaseAddress);
                    lock (silent) silent.Add(c);
                }
            });
            var opened = opening.Elapsed;
            using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(40));
            var idleClosed = idle.Select(c => c.WaitForServerCloseAsync(watching.Token)).ToList();
            var silentClosed = silent.Select(c => c.ReadUntilCloseAsync(TimeSpan.FromSeconds(40))).ToList();

            // Everyone else is served, each within a second: OAuth, the Platform API, health, a new guest session.
            var timings = new List<string>();
            async Task<T> TimedAsync<T>(string what, Task<T> call)
            {
                var clock = Stopwatch.StartNew();
                var result = await call.WaitAsync(OneSecond);
                timings.Add($"{what} {clock.Elapsed.TotalMilliseconds:F0} ms");
                return result;
            }
            using (var http = new HttpClient { BaseAddress = server.BaseAddress })
            {
                var form = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
                    { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
                form.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                    Convert.ToBase64String(Encoding.UTF8.GetBytes("parley-demo-client:parley-demo-secret")));
                Assert.Equal(HttpStatusCode.OK, (await TimedAsync("OAuth token", http.SendAsync(form))).StatusCode);
                Assert.Equal("ok", await TimedAsync("health", http.GetStringAsync("/health")));
            }
            Assert.Equal(HttpStatusCode.OK, (await TimedAsync("Platform API", platform.GetAsync("/api/v2/conversations/messages"))).Response.StatusCode);
            var guest = await TimedAsync("guest connect", server.GuestAsync());
            await using (guest)
                Assert.True((await TimedAsync("guest configureSession", guest.ConfigureAsync()))["body"]!["connected"]!.GetValue<bool>());
            Console.WriteLine($"2,000 held connections opened in {opened.TotalSeconds:F1} s; then {string.Join(", ", timings)}");

            // They were held all along: none had been let go when the checks were done.
            Assert.Equal(0, idleClosed.Count(t => t.IsCompleted) + silentClosed.Count(t => t.IsCompleted));

            // Then the deadlines act: each silent socket is closed with 1008 (policy violation) after configureSession was
            // not sent, each idle connection by the keep-alive timeout.
            var closes = await Task.WhenAll(silentClosed);
            Assert.All(closes, c => Assert.Equal(1008, c.Status));
            Assert.Contains("configureSession", closes[0].Texts.Single());
            await Task.WhenAll(idleClosed);
            Assert.False(watching.IsCancellationRequested, "idle connections were not closed by the keep-alive timeout");
        }
        finally
        {
            foreach (var c in idle.Concat(silent)) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnAddressOverItsConnectionLimit_IsRefused_WhileAnotherAddressIsServed()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { MaxConnectionsPerAddress = 20 });
        var held = new List<RawConnection>();
        try
        {
            // 21 connections from one address: one of them (the server counts them in the order it gets to them, not
            // quite the order they were made) is closed at once, before a byte is read; a reset may even reach the client
            // as its connect completes.
            var resets = 0;
            for (var i = 0; i < 21; i++)
            {
                try { held.Add(await RawConnection.ConnectAsync(RawConnection.Loopback(4), server.BaseAddress)); }
                catch (System.Net.Sockets.SocketException) { resets++; }
            }
            using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var closes = held.Select(c => c.WaitForServerCloseAsync(watching.Token)).ToList();
            if (resets == 0) await Task.WhenAny(closes).WaitAsync(TimeSpan.FromSeconds(5));
            var refused = closes.Where(c => c.IsCompleted).ToList();
            Assert.Equal(1, resets + refused.Count);
            foreach (var c in held.Where((_, i) => closes[i].IsCompleted).ToList()) { held.Remove(c); await c.DisposeAsync(); }

            // Another address is served: HTTP and a guest.
            Assert.True(await RawConnection.HealthAnswersAsync(RawConnection.Loopback(5), server.BaseAddress));
            await using (var guest = await TestGuest.ConnectFromAsync(RawConnection.Loopback(5), server.BaseAddress))
                Assert.True((await guest.ConfigureAsync())["body"]!["connected"]!.GetValue<bool>());

            // When one of the 20 leaves, its address is served again (the place frees as the server sees the close).
            await held[0].DisposeAsync();
            held.RemoveAt(0);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!await RawConnection.HealthAnswersAsync(RawConnection.Loopback(4), server.BaseAddress))
            {
                Assert.True(DateTime.UtcNow < deadline, "the address was not served again after one of its connections closed");
                await Task.Delay(50);
            }
        }
        finally
        {
            foreach (var c in held) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task ATrustedProxy_CarriesMoreConnectionsThanOneAddressMay_WhileAnUntrustedAddressIsHeldToTheLimit()
    {
        var proxy = RawConnection.Loopback(6);
        await using var server = await ParleyServer.StartAsync(o => o with
        {
            MaxConnectionsPerAddress = 5,
            TrustedProxies = Parley.Server.TrustedProxies.Parse([proxy.ToString()]),
        });

        // Connections are opened and held; a refused one is closed (or reset) by the server before a byte is read.
        // Returns how many of them the server closed or reset, once a connection opened after them all has been served.
        async Task<int> RefusedOf(IPAddress from, int count, IPAddress probe)
        {
            var held = new List<RawConnection>();
            var resets = 0;
            try
            {
                for (var i = 0; i < count; i++)
                {
                    try { held.Add(await RawConnection.ConnectAsync(from, server.BaseAddress)); }
                    catch (System.Net.Sockets.SocketException) { resets++; }
                }
                using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var closes = held.Select(c => c.WaitForServerCloseAsync(watching.Token)).ToList();
                Assert.True(await RawConnection.HealthAnswersAsync(probe, server.BaseAddress));
                if (resets == 0 && count > 5 && from.Equals(probe) is false)
                    await Task.WhenAny(closes).WaitAsync(TimeSpan.FromSeconds(5));
                return resets + closes.Count(c => c.IsCompleted);
            }
            finally
            {
                foreach (var c in held) await c.DisposeAsync();
            }
        }

        // The proxy holds three times an address's share, and a sixteenth connection of its own is still served.
        Assert.Equal(0, await RefusedOf(proxy, 15, probe: proxy));
        // An address that is not a trusted proxy is held to its five: one of six is refused.
        Assert.Equal(1, await RefusedOf(RawConnection.Loopback(7), 6, probe: RawConnection.Loopback(8)));
    }

    [Fact]
    public async Task WhenTheServerIsFull_ConnectionsThatSentNothing_MakeRoomForOnesThatTalk()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { MaxConnections = 40 });
        var idle = new List<RawConnection>();
        try
        {
            for (var i = 0; i < 40; i++) idle.Add(await RawConnection.ConnectAsync(RawConnection.Loopback(13), server.BaseAddress));
            using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var closed = idle.Select(c => c.WaitForServerCloseAsync(watching.Token)).ToList();

            // Full of silent connections: a caller that talks is served once they have been silent past their grace
            // (a second), each new one taking the place of one that never sent a byte.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            var served = 0;
            while (served < 5)
            {
                if (await RawConnection.HealthAnswersAsync(RawConnection.Loopback(14), server.BaseAddress)) served++;
                else
                {
                    Assert.True(DateTime.UtcNow < deadline, "no room was made for a connection that talks");
                    await Task.Delay(100);
                }
            }
            Assert.InRange(closed.Count(t => t.IsCompleted), 1, 40);
        }
        finally
        {
            foreach (var c in idle) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task NewSessionsPastTheRateOfAnAddress_Get429_WhileExistingSessionsAndOtherAddressesAreServed()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { NewSessionsPerAddressPerMinute = 3 });
        var first = "";
        for (var i = 0; i < 3; i++)
        {
            await using var guest = await TestGuest.ConnectFromAsync(RawConnection.Loopback(6), server.BaseAddress);
            Assert.True((await guest.ConfigureAsync())["body"]!["newSession"]!.GetValue<bool>());
            if (i == 0) first = guest.Token;
        }

        await using (var fourth = await TestGuest.ConnectFromAsync(RawConnection.Loopback(6), server.BaseAddress))
        {
            var refused = await fourth.ConfigureAsync();
            Assert.Equal("TooManyRequestsErrorMessage", (string?)refused["class"]);
            Assert.Equal(429, (int)refused["code"]!);
            Assert.Equal(4029, (int)refused["body"]!["errorCode"]!);
            Assert.True((int)refused["body"]!["retryAfter"]! >= 1);
            Assert.Contains("from this address", (string?)refused["body"]!["errorMessage"]);
        }
        await using (var returning = await TestGuest.ConnectFromAsync(RawConnection.Loopback(6), server.BaseAddress, first))
            Assert.False((await returning.ConfigureAsync())["body"]!["newSession"]!.GetValue<bool>());   // an existing session takes nothing
        await using (var elsewhere = await TestGuest.ConnectFromAsync(RawConnection.Loopback(7), server.BaseAddress))
            Assert.True((await elsewhere.ConfigureAsync())["body"]!["newSession"]!.GetValue<bool>());
    }

    [Fact]
    public async Task NewSessionsPastTheRateOfADeployment_Get429_FromAnyAddress()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { NewSessionsPerDeploymentPerMinute = 2 });
        for (var i = 0; i < 2; i++)
        {
            await using var guest = await TestGuest.ConnectFromAsync(RawConnection.Loopback(8 + i), server.BaseAddress);
            Assert.Equal("SessionResponse", (string?)(await guest.ConfigureAsync())["class"]);
        }
        await using var third = await TestGuest.ConnectFromAsync(RawConnection.Loopback(10), server.BaseAddress);
        var refused = await third.ConfigureAsync();
        Assert.Equal(429, (int)refused["code"]!);
        Assert.Contains("for this deployment", (string?)refused["body"]!["errorMessage"]);
    }

    [Fact]
    public async Task AConfiguredSocketThatNeverAnswersPings_IsAbortedAfterThePongTimeout()
    {
        await using var server = await ParleyServer.StartAsync(o => o with
        {
            WebSocketPingInterval = TimeSpan.FromMilliseconds(500), WebSocketPongTimeout = TimeSpan.FromSeconds(1),
        });
        await using var guest = await RawConnection.UpgradeAsync(RawConnection.Loopback(11), server.BaseAddress);
        await guest.SendTextAsync($$"""{"action":"configureSession","token":"{{Guid.NewGuid()}}","deploymentId":"{{ParleyServer.DeploymentId}}","tracingId":"c"}""");

        var pings = 0;
        var clock = Stopwatch.StartNew();
        while (await guest.ReadFrameAsync(TimeSpan.FromSeconds(10)) is { } frame)
            if (frame.Opcode == 9) pings++;   // read, never answered
        Assert.True(pings >= 1, "no ping was sent");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"the silent socket was held for {clock.Elapsed}");
    }

    [Fact]
    public async Task OversizedFrame_IsRefusedAsAnnounced_With4011AndClose1009()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await RawConnection.UpgradeAsync(RawConnection.Loopback(12), server.BaseAddress);

        // A text frame announcing 100 MB, of which only the first kilobyte is ever sent.
        await guest.SendFrameAsync(1, new byte[1024], announced: 100_000_000);

        var clock = Stopwatch.StartNew();
        var (status, texts) = await guest.ReadUntilCloseAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1009, status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the close took {clock.Elapsed}");
        var error = JsonNode.Parse(texts.Single())!;
        Assert.Equal(4011, (int)error["code"]!);
        Assert.Contains("65536 bytes", (string?)error["body"]);
    }

    [Fact]
    public async Task OversizedMessage_InFragments_IsRefusedWhenItsFragmentsAddUpPastTheCap()
    {
        await using var server = await ParleyServer.StartAsync();
        await using var guest = await RawConnection.UpgradeAsync(RawConnection.Loopback(12), server.BaseAddress);
        await guest.SendTextAsync("""{"action":"echo","tracingId":"before"}""");   // a whole frame first: it is served

        await guest.SendFrameAsync(1, new byte[40_000], fin: false);
        await guest.SendFrameAsync(0, new byte[100], announced: 40_000, fin: false);   // 80,000 announced: past 65,536

        var (status, texts) = await guest.ReadUntilCloseAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1009, status);
        Assert.Equal("before", (string?)JsonNode.Parse(texts[0])!["tracingId"]);
        Assert.Equal(4011, (int)JsonNode.Parse(texts[1])!["code"]!);
    }
}
