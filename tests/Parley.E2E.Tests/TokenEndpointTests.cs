using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>Issue 10 item 7: brute force on the token endpoint is throttled, and its failures tell an attacker nothing.</summary>
public sealed class TokenEndpointTests
{
    [Fact]
    public async Task WrongSecretHammering_IsThrottledWithRetryAfter_WhileTheRealClientStillGetsTokens()
    {
        await using var server = await ParleyServer.StartAsync(o => o with
        {
            OAuthMaxFailuresPerClientAddress = 5, OAuthMaxFailuresPerAddress = 20, OAuthMaxFailuresPerClient = 40,
            OAuthFailureWindow = TimeSpan.FromMinutes(1),
        });
        using var real = From(server, "127.0.0.1");
        await TokenAsync(real, DemoId, DemoSecret);   // the real client has authenticated from its address before

        // One attacker address hammering the demo client's secret: five wrong guesses, then 429 with Retry-After.
        using var attacker = From(server, "127.0.0.2");
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? throttled = null;
        for (var i = 0; i < 40; i++)
        {
            var response = await RequestTokenAsync(attacker, DemoId, "guess-" + i);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests) throttled ??= response;
        }
        Assert.Equal(Enumerable.Repeat(HttpStatusCode.Unauthorized, 5), statuses.Take(5));
        Assert.All(statuses.Skip(5), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        var retryAfter = int.Parse(throttled!.Headers.GetValues("Retry-After").Single());
        Assert.InRange(retryAfter, 1, 12);   // one failure back every 60 s / 5
        var error = JsonNode.Parse(await throttled.Content.ReadAsStringAsync())!;
        Assert.Equal("temporarily_unavailable", (string?)error["error"]);
        // Throttled means refused before the secret is looked at: even the right secret waits, from that address.
        Assert.Equal(HttpStatusCode.TooManyRequests, (await RequestTokenAsync(attacker, DemoId, DemoSecret)).StatusCode);

        // Meanwhile the real client, from its own address, is not locked out.
        for (var i = 0; i < 3; i++) await TokenAsync(real, DemoId, DemoSecret);

        // Many attacker addresses sharing the guessing: the per-client allowance runs out for addresses the client
        // never authenticated from; the real client's address still gets tokens.
        var spread = new List<HttpStatusCode>();
        for (var a = 10; a < 30; a++)
        {
            using var bot = From(server, $"127.0.0.{a}");
            for (var i = 0; i < 3; i++) spread.Add((await RequestTokenAsync(bot, DemoId, "guess")).StatusCode);
        }
        Assert.Contains(HttpStatusCode.TooManyRequests, spread);
        // 40 per client, less the 5 the first attacker spent, plus what refilled meanwhile (40 a minute).
        Assert.True(spread.Count(s => s == HttpStatusCode.Unauthorized) <= 40, $"{spread.Count(s => s == HttpStatusCode.Unauthorized)} guesses got through");
        await TokenAsync(real, DemoId, DemoSecret);

        // One address spraying client ids is held by the per-address allowance.
        using var sprayer = From(server, "127.0.0.3");
        var sprayed = new List<HttpStatusCode>();
        for (var i = 0; i < 30; i++) sprayed.Add((await RequestTokenAsync(sprayer, "client-" + i, "x")).StatusCode);
        Assert.Equal(20, sprayed.Count(s => s == HttpStatusCode.Unauthorized));
        Assert.All(sprayed.Skip(20), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));

    }

    [Fact]
    public async Task AfterRetryAfter_TheAddressMayTryAgain()
    {
        await using var server = await ParleyServer.StartAsync(o => o with
        {
            OAuthMaxFailuresPerClientAddress = 2, OAuthFailureWindow = TimeSpan.FromSeconds(2),
        });
        using var attacker = From(server, "127.0.0.2");
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(attacker, DemoId, "a")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(attacker, DemoId, "b")).StatusCode);
        var throttled = await RequestTokenAsync(attacker, DemoId, "c");
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        var retryAfter = int.Parse(throttled.Headers.GetValues("Retry-After").Single());
        Assert.InRange(retryAfter, 1, 2);
        // Waiting out Retry-After is the behaviour under test, not a synchronisation.
        await Task.Delay(TimeSpan.FromSeconds(retryAfter));
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(attacker, DemoId, "d")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await RequestTokenAsync(attacker, DemoId, "e")).StatusCode);

        // A success forgets that address's failures for the client (someone who mistyped, then got it right).
        using var mistyper = From(server, "127.0.0.4");
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(mistyper, DemoId, "typo")).StatusCode);
        await TokenAsync(mistyper, DemoId, DemoSecret);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(mistyper, DemoId, "typo")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(mistyper, DemoId, "typo")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await RequestTokenAsync(mistyper, DemoId, "typo")).StatusCode);
    }

    [Fact]
    public async Task UnknownClientAndWrongSecret_GetByteIdenticalAnswers_AfterTheSameWork()
    {
        await using var server = await ParleyServer.StartAsync(o => o with
        {
            OAuthMaxFailuresPerClientAddress = 0, OAuthMaxFailuresPerAddress = 0, OAuthMaxFailuresPerClient = 0,   // timing needs many tries
        });
        using var http = From(server);

        foreach (var basic in new[] { true, false })
        {
            var unknown = await RequestTokenAsync(http, "no-such-client", "whatever", basic);
            var wrong = await RequestTokenAsync(http, DemoId, "wrong-secret", basic);
            Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
            Assert.Equal(unknown.StatusCode, wrong.StatusCode);
            var unknownBytes = await unknown.Content.ReadAsByteArrayAsync();
            Assert.Equal(unknownBytes, await wrong.Content.ReadAsByteArrayAsync());
            Assert.Equal("invalid_client", (string?)JsonNode.Parse(unknownBytes)!["error"]);
            Assert.Equal(Headers(unknown), Headers(wrong));
            // RFC 6749 §5.2: a client that authenticated with Basic is told how to authenticate.
            Assert.Equal(basic, unknown.Headers.WwwAuthenticate.Any(h => h.Scheme == "Basic"));
        }

        // Malformed Basic credentials and a missing secret get the same answer too.
        var malformed = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]),
        };
        malformed.Headers.Authorization = new("Basic", "%%%not-base64");
        var bad = await http.SendAsync(malformed);
        Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        Assert.Equal(await (await RequestTokenAsync(http, "no-such-client", "x")).Content.ReadAsByteArrayAsync(), await bad.Content.ReadAsByteArrayAsync());

        // The same work: an unknown id costs the server a secret hash like a wrong secret does (the medians of
        // interleaved tries stay within a factor; without the dummy hash the unknown id answered several times faster).
        var unknownTimes = new List<double>();
        var wrongTimes = new List<double>();
        for (var i = 0; i < 25; i++)
        {
            unknownTimes.Add(await TimeAsync(() => RequestTokenAsync(http, "no-such-client-" + i, "whatever")));
            wrongTimes.Add(await TimeAsync(() => RequestTokenAsync(http, DemoId, "wrong-" + i)));
        }
        var (u, w) = (Median(unknownTimes), Median(wrongTimes));
        Assert.True(u > w / 3 && u < w * 3, $"median unknown {u:F2} ms, wrong secret {w:F2} ms");
    }

    static string Headers(HttpResponseMessage r) => string.Join("\n", r.Headers.Concat(r.Content.Headers)
        .Where(h => h.Key != "Date").OrderBy(h => h.Key).Select(h => h.Key + ": " + string.Join(",", h.Value)));

    static async Task<double> TimeAsync(Func<Task<HttpResponseMessage>> call)
    {
        var watch = Stopwatch.StartNew();
        using var response = await call();
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        return watch.Elapsed.TotalMilliseconds;
    }

    static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
