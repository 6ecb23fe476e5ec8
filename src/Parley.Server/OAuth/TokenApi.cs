using System.Globalization;
using System.Text;
using Parley.Core;
using Parley.Protocol;

namespace Parley.Server.OAuth;

/// <summary>
/// <c>POST /oauth/token</c>: the client-credentials grant (docs/compatibility.md §OAuth token), Basic auth or form fields. Every failed client
/// authentication gets one answer (RFC 6749 §5.2 <c>invalid_client</c>, 401), whether the id is unknown or the secret
/// wrong, after the same hashing work; failures are logged (never the secret) and throttled (<see cref="TokenThrottle"/>).
/// </summary>
public static class TokenApi
{
    /// <summary>Longest client id looked up; a longer one cannot exist and fails like any unknown id.</summary>
    const int MaxClientIdLength = 256;
    /// <summary>Longest secret hashed; bounds the work one request can ask of PBKDF2.</summary>
    const int MaxSecretLength = 1024;

    public static void MapTokenApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/oauth/token", IssueAsync);   // also under a gateway prefix: ParleyApp.StripGatewayPrefix
    }

    static async Task<IResult> IssueAsync(HttpContext http, ICredentialStore store, Tokens tokens, TokenThrottle throttle,
        ILoggerFactory loggers, Users.UserDirectory users, TimeProvider clock, CancellationToken ct)
    {
        if (!http.Request.HasFormContentType)
            return Error(400, "invalid_request", "Send grant_type=client_credentials as application/x-www-form-urlencoded.");
        IFormCollection form;
        try { form = await http.Request.ReadFormAsync(ct); }
        catch (InvalidDataException) { return Error(400, "invalid_request", "The form could not be read."); }
        if (form["grant_type"] == "authorization_code")
            return await Users.AuthorizationCodeGrant.RedeemAsync(http, form, store, users, tokens, throttle, clock, loggers, ct);
        if (form["grant_type"] != "client_credentials")
            return Error(400, "unsupported_grant_type", "grant_type must be client_credentials or authorization_code.");

        string? id = form["client_id"], secret = form["client_secret"];
        var auth = http.Request.Headers.Authorization.ToString();
        var basic = auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase);
        if (basic)
        {
            (id, secret) = (null, null);
            try
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(auth["Basic ".Length..].Trim()));
                var colon = pair.IndexOf(':');
                if (colon > 0) (id, secret) = (pair[..colon], pair[(colon + 1)..]);
            }
            catch (FormatException) { }
        }
        id ??= "";
        var address = http.Connection.RemoteIpAddress;
        if (await throttle.CheckAsync(id, address, ct) is { } wait)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            if (throttle.ShouldReport(id, address))
            {
                var known = id.Length is > 0 and <= MaxClientIdLength && await store.GetClientAsync(id, ct) is not null;
                loggers.CreateLogger(ParleyLog.Refusals).TokenThrottled(known ? Shown(id) : Hashed(id), address, seconds);
            }
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return Error(429, "temporarily_unavailable", "Too many failed authentication attempts; retry later.");
        }

        // The same work whatever is wrong: look the id up (when it could exist), then one PBKDF2 against its hash or a dummy.
        var client = id.Length is > 0 and <= MaxClientIdLength ? await store.GetClientAsync(id, ct) : null;
        var presented = secret is { Length: > 0 and <= MaxSecretLength } ? secret : "";
        var matches = Tokens.SecretMatches(presented, client?.SecretHash ?? Tokens.UnknownClientHash);
        var ok = client is not null && presented.Length > 0 && matches;
        if (!ok)
        {
            await throttle.FailedAsync(id, address, CancellationToken.None);   // counted even if the caller went away
            // An unknown id may be a secret pasted in the wrong field: only its hash is written down.
            loggers.CreateLogger(ParleyLog.Refusals).TokenRefused(client is null ? "unknown client" : "wrong secret",
                client is null ? Hashed(id) : Shown(id), address);
            if (basic) http.Response.Headers.WWWAuthenticate = "Basic realm=\"parley\", charset=\"UTF-8\"";
            return Error(401, "invalid_client", "authentication failed");   // the platform's text for a wrong secret, now for every failure
        }

        await throttle.SucceededAsync(id, address, CancellationToken.None);
        // A browser app's client (CODE, TOKEN) gets tokens only for a user who logged in (docs/users.md).
        if (client!.AuthorizedGrantType != OAuthClient.ClientCredentials)
            return Error(400, "unauthorized_client", $"This client is registered for the {client.AuthorizedGrantType} grant, not client credentials.");
        var (token, expiresIn) = tokens.IssueAccessToken(client!.Id, client.Permissions, client.CredentialVersion);
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers.Pragma = "no-cache";
        return Results.Json(new TokenResponse(token, "bearer", expiresIn), ParleyJson.Wire.TokenResponse);
    }

    /// <summary>
    /// An unknown client id as logged: <c>sha256:</c> and the first 8 hex digits of its SHA-256 (UTF-8), enough to tell
    /// one caller's repeated attempts apart, never the value (a caller that swapped id and secret presents its secret).
    /// </summary>
    internal static string Hashed(string id) =>
        "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..8];

        /// <summary>A client id as logged: bounded, printable.</summary>
    static string Shown(string id)
    {
        var clipped = id.Length <= 64 ? id : id[..64] + "…";
        return new string(clipped.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }

    internal static IResult Error(int status, string error, string description) => new OAuthErrorResult(status, new OAuthError(error, description, description));

    /// <summary>RFC 6749 §5.2 error body, never cached.</summary>
    sealed class OAuthErrorResult(int status, OAuthError body) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            http.Response.Headers.CacheControl = "no-store";
            http.Response.Headers.Pragma = "no-cache";
            ParleyTelemetry.Refused(status, body.Error);
            return Results.Json(body, ParleyJson.Wire.OAuthError, statusCode: status).ExecuteAsync(http);
        }
    }
}
