using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Parley.Core;
using Parley.Server;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>
/// The Platform API's bearer validation (JWT bearer over the key ring) against forged and altered tokens, each sent over a
/// real socket to a running server; every refusal is the platform's error body.
/// </summary>
public sealed class PlatformAuthTests
{
    const string Probe = "/api/v2/conversations/messages";

    static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    static string B64(string json) => B64(Encoding.UTF8.GetBytes(json));

    /// <summary>A JWT with the given header and payload, signed with HMAC over <paramref name="key"/> (SHA-256 unless told).</summary>
    static string Mint(string header, JsonObject payload, byte[] key, Func<byte[], byte[], byte[]>? mac = null)
    {
        var input = B64(header) + "." + B64(payload.ToJsonString());
        return input + "." + B64((mac ?? HMACSHA256.HashData)(key, Encoding.ASCII.GetBytes(input)));
    }

    static JsonObject Claims(long exp, string? iss = "parley:platform", string aud = "parley:platform", string sub = ParleyOptions.DefaultClientId)
    {
        var claims = new JsonObject { ["aud"] = aud, ["sub"] = sub, ["iat"] = exp - 3600, ["exp"] = exp, ["cv"] = 0, ["perms"] = new JsonArray("*") };
        if (iss is not null) claims["iss"] = iss;
        return claims;
    }

    static async Task<(HttpStatusCode Status, string? Code)> CallAsync(ParleyServer server, string token)
    {
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Get, Probe);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.OK) return (response.StatusCode, null);
        var body = JsonNode.Parse(text)!;
        Assert.Equal((int)response.StatusCode, (int)body["status"]!);
        Assert.False(string.IsNullOrEmpty((string?)body["contextId"]));
        return (response.StatusCode, (string?)body["code"]);
    }

    [Fact]
    public async Task ForgedAndAlteredTokens_AreRefused_AndTokensWithoutIssuerFromBeforeStillWork()
    {
        await using var server = await ParleyServer.StartAsync();
        var key = await server.Services.GetRequiredService<IDirectoryStore>().GetOrCreateSigningKeyAsync(() => new byte[32], default);
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        const string original = """{"alg":"HS256","typ":"JWT"}""";

        // Control: the original key's kid-less token, as issued before the issuer claim existed, is accepted.
        Assert.Equal((HttpStatusCode.OK, null), await CallAsync(server, Mint(original, Claims(exp, iss: null), key)));
        Assert.Equal((HttpStatusCode.OK, null), await CallAsync(server, Mint(original, Claims(exp), key)));

        var refused = new Dictionary<string, string>
        {
            ["unsigned (alg none)"] = B64("""{"alg":"none","typ":"JWT"}""") + "." + B64(Claims(exp).ToJsonString()) + ".",
            ["signed with another key"] = Mint(original, Claims(exp), RandomNumberGenerator.GetBytes(32)),
            ["HS384 with the real key"] = Mint("""{"alg":"HS384","typ":"JWT"}""", Claims(exp), key, HMACSHA384.HashData),
            ["another issuer"] = Mint(original, Claims(exp, iss: "https://elsewhere.example"), key),
            ["the guest audience"] = Mint(original, Claims(exp, aud: "parley:guest"), key),
            ["an unknown kid"] = Mint("""{"alg":"HS256","kid":"0123456789ab","typ":"JWT"}""", Claims(exp), key),
            ["an unknown client"] = Mint(original, Claims(exp, sub: "no-such-client"), key),
            ["not a JWT"] = "not-a-token",
        };
        // A valid token with its payload changed after signing (a stronger subject, a later expiry).
        var valid = Mint(original, Claims(exp), key).Split('.');
        refused["payload altered after signing"] = valid[0] + "." + B64(Claims(exp + 86_400).ToJsonString()) + "." + valid[2];

        foreach (var (what, token) in refused)
            Assert.True(await CallAsync(server, token) is (HttpStatusCode.Unauthorized, "bad.credentials"), what);

        // Past its exp, even by a second: credentials.expired (no clock skew is allowed).
        Assert.Equal((HttpStatusCode.Unauthorized, "credentials.expired"),
            await CallAsync(server, Mint(original, Claims(DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds()), key)));
        // No token at all, or another scheme.
        using var bare = new HttpClient { BaseAddress = server.BaseAddress };
        var noToken = await bare.GetAsync(Probe);
        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
        Assert.Equal("authentication.required", (string?)JsonNode.Parse(await noToken.Content.ReadAsStringAsync())!["code"]);
    }

    [Fact]
    public async Task AnAcceptedToken_ExpiresOnTheServersClock_EvenAfterItWasVerifiedOnce()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(clock: clock);
        using var http = From(server);
        var token = await TokenAsync(http, ParleyOptions.DefaultClientId, ParleyOptions.DefaultClientSecret);
        Assert.Equal((HttpStatusCode.OK, null), await CallAsync(server, token));   // verified, and remembered

        clock.Advance(TimeSpan.FromSeconds(86_398));
        Assert.Equal((HttpStatusCode.OK, null), await CallAsync(server, token));
        clock.Advance(TimeSpan.FromSeconds(2));   // expires_in was 86399
        Assert.Equal((HttpStatusCode.Unauthorized, "credentials.expired"), await CallAsync(server, token));
    }

    [Fact]
    public async Task ARetiredKey_StopsItsTokens_EvenOnesAlreadyVerified()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        using var http = From(server);
        var before = await TokenAsync(http, ParleyOptions.DefaultClientId, ParleyOptions.DefaultClientSecret);
        Assert.Equal((HttpStatusCode.OK, null), await CallAsync(server, before));

        // A leaked key: rotate with no overlap, so every older key retires at once.
        var (rotated, _) = await admin.PostAsync("/api/v2/parley/oauth/signingkeys/rotate", new { overlapSeconds = 0 });
        Assert.Equal(HttpStatusCode.Created, rotated.StatusCode);
        Assert.Equal((HttpStatusCode.Unauthorized, "bad.credentials"), await CallAsync(server, before));
        var after = await TokenAsync(http, ParleyOptions.DefaultClientId, ParleyOptions.DefaultClientSecret);
        Assert.NotNull(Kid(after));
        Assert.Equal((HttpStatusCode.OK, null), await CallAsync(server, after));
    }
}
