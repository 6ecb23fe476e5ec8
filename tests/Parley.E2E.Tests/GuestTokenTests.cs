using Parley.Server.OAuth;

namespace Parley.E2E.Tests;

/// <summary>The per-request guest token check (on the stack) against the hash the session was stored under.</summary>
public sealed class GuestTokenTests
{
    [Theory]
    [InlineData("d1", "a-token")]
    [InlineData("d1e2a3b4-0000-4000-8000-000000000001", "0e5c4a1e-9d7c-4f0a-b1a8-3f1f1f1f1f1f")]
    [InlineData("dép", "tökén ✓ 🎉")]
    [InlineData("d1", "\udc00 a lone surrogate")]
    public void AToken_MatchesTheHashItWasStoredUnder_AndNoOtherDoes(string deployment, string token)
    {
        var hash = Tokens.HashGuestToken(deployment, token);
        Assert.True(Tokens.GuestTokenMatches(deployment, token, hash));
        Assert.False(Tokens.GuestTokenMatches(deployment, token + "x", hash));
        Assert.False(Tokens.GuestTokenMatches(deployment + "x", token, hash));
        Assert.False(Tokens.GuestTokenMatches(deployment, token, hash.ToLowerInvariant() == hash ? hash.ToUpperInvariant() : hash.ToLowerInvariant()));
    }

    [Fact]
    public void ALongToken_IsCheckedToo()
    {
        var token = new string('t', 5_000);
        var hash = Tokens.HashGuestToken("d1", token);
        Assert.True(Tokens.GuestTokenMatches("d1", token, hash));
        Assert.False(Tokens.GuestTokenMatches("d1", token[..^1], hash));
    }
}
