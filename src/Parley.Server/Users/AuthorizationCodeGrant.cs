using System.Globalization;
using System.Text;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;

namespace Parley.Server.Users;

/// <summary>
/// <c>POST /oauth/token</c> with <c>grant_type=authorization_code</c> (RFC 6749 §4.1.3, RFC 7636 §4.5): the code, the
/// redirect URI it was issued for, the client id, and the PKCE verifier when the code carries a challenge (a confidential
/// client without PKCE authenticates with its secret instead). The answer has the client-credentials shape. A code is
/// redeemed once: the first presentation spends it whatever follows (so a verifier cannot be guessed at), and a second is
/// a replay (§4.1.2): <c>invalid_grant</c>, and every token of the user is revoked (its credential version goes up).
/// </summary>
public static class AuthorizationCodeGrant
{
    public static async Task<IResult> RedeemAsync(HttpContext http, IFormCollection form, ICredentialStore store, UserDirectory users, Tokens tokens,
        TokenThrottle throttle, TimeProvider clock, ILoggerFactory loggers, CancellationToken ct)
    {
        string? Field(string name) => form[name].Count == 1 && form[name][0] is { Length: > 0 and <= 2048 } v ? v : null;
        var (clientId, secret) = (Field("client_id"), Field("client_secret"));
        var auth = http.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(auth["Basic ".Length..].Trim()));
                if (pair.IndexOf(':') is > 0 and var colon) (clientId, secret) = (pair[..colon], pair[(colon + 1)..]);
            }
            catch (FormatException) { }
        }
        if (clientId is null || clientId.Length > 256) return TokenApi.Error(401, "invalid_client", "authentication failed");
        var address = http.Connection.RemoteIpAddress;
        if (await throttle.CheckAsync(clientId, address, ct) is { } wait)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            return TokenApi.Error(429, "temporarily_unavailable", "Too many failed attempts; retry later.");
        }
        var client = await store.GetClientAsync(clientId, ct);
        // A secret, when sent, must be right (a public client has none to send).
        var authenticated = secret is not null && client is not null && Tokens.SecretMatches(secret, client.SecretHash);
        if (client is null || (secret is not null && !authenticated))
        {
            await throttle.FailedAsync(clientId, address, CancellationToken.None);
            return TokenApi.Error(401, "invalid_client", "authentication failed");
        }
        if (client.AuthorizedGrantType != OAuthClient.Code)
            return TokenApi.Error(400, "unauthorized_client", $"This client is registered for the {client.AuthorizedGrantType} grant.");
        if (Field("code") is not { } code || Field("redirect_uri") is not { } redirect)
            return TokenApi.Error(400, "invalid_request", "Send code, redirect_uri and client_id (and code_verifier with PKCE).");

        var now = clock.GetUtcNow();
        var (outcome, stored) = await users.Store.RedeemCodeAsync(AuthorizeEndpoint.CodeHash(code), now, ct);
        if (outcome == CodeRedemption.AlreadyRedeemed && stored is not null)
        {
            await RevokeUserAsync(users, stored, now, ct);
            loggers.CreateLogger(ParleyLog.OAuth).CodeReplayed(stored.ClientId, stored.UserId);
        }
        const string Invalid = "The authorization code is invalid, expired, already used, or was issued to another client or redirect URI.";
        if (outcome != CodeRedemption.Redeemed || stored is null || stored.ExpiresAt <= now || stored.ClientId != client.Id || stored.RedirectUri != redirect)
        {
            await throttle.FailedAsync(clientId, address, CancellationToken.None);
            return TokenApi.Error(400, "invalid_grant", Invalid);
        }
        if (stored.CodeChallenge is { } challenge)
        {
            if (Field("code_verifier") is not { } verifier || !Pkce.Verifies(verifier, challenge))
            {
                await throttle.FailedAsync(clientId, address, CancellationToken.None);
                return TokenApi.Error(400, "invalid_grant", "The code_verifier does not match the code's challenge (PKCE, S256).");
            }
        }
        else if (!authenticated) return TokenApi.Error(401, "invalid_client", "authentication failed");   // no PKCE: the secret binds the code

        // The user must still be there with the same password and roles as at login.
        if (await users.GetAsync(stored.UserId, ct) is not { } user || user.CredentialVersion != stored.UserCredentialVersion)
            return TokenApi.Error(400, "invalid_grant", Invalid);
        await throttle.SucceededAsync(clientId, address, CancellationToken.None);
        var (token, expiresIn) = tokens.IssueAccessToken(client.Id, [], client.CredentialVersion, user);
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers.Pragma = "no-cache";
        return Results.Json(new TokenResponse(token, "bearer", expiresIn), ParleyJson.Wire.TokenResponse);
    }

    /// <summary>RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it; Parley ends every token of the user.</summary>
    static async Task RevokeUserAsync(UserDirectory users, AuthorizationCode code, DateTimeOffset now, CancellationToken ct)
    {
        if (await users.Store.GetUserAsync(code.UserId, ct) is not { } user) return;
        await users.SaveAsync(user with { CredentialVersion = user.CredentialVersion + 1, DateModified = now },
            new CredentialAudit(Guid.NewGuid().ToString(), CredentialAction.AuthorizationCodeReplayed, user.Id, code.ClientId, now,
                "an authorization code was presented twice; the user's tokens were revoked"), CancellationToken.None);
    }
}
