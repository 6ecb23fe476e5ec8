using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Primitives;
using Parley.Core;
using Parley.Server.OAuth;

namespace Parley.Server.Users;

/// <summary>
/// <c>/oauth/authorize</c>: OAuth for browser apps (docs/users.md). <c>GET</c> checks the request and shows a login page
/// (plain HTML, no script, no external asset, a strict CSP); <c>POST</c> checks the username and password and redirects
/// to the client's registered redirect URI with a code (RFC 6749 §4.1, with PKCE S256, RFC 7636) or, for the implicit
/// grant (§4.2), a token in the fragment, as the official JavaScript SDK's <c>loginImplicitGrant</c> reads it.
/// An unknown client or an unregistered redirect URI is shown on the page and never redirected to (§4.1.2.1); other
/// request errors go back to the client as <c>error=…</c>. A wrong password, or an unknown user, is one message (no user
/// enumeration), after the same hashing work; failures are throttled like the token endpoint's.
/// </summary>
public static class AuthorizeEndpoint
{
    public const string Path = "/oauth/authorize";
    /// <summary>The form's anti-forgery cookie: SameSite=Strict, so a login posted from another site carries none.</summary>
    const string FormCookie = "parley_login";
    const int MaxParameterLength = 2048;
    const int MaxUsernameLength = 256;

    public static void MapAuthorizeEndpoint(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, ShowAsync);
        app.MapPost(Path, LoginAsync).DisableAntiforgery();
    }

    /// <summary>A checked authorization request.</summary>
    sealed record Request(OAuthClient Client, string ResponseType, string RedirectUri, string? State, string? CodeChallenge);

    /// <summary>The request's parameters, checked in RFC 6749 §4.1.2.1's order: what cannot be redirected to is shown here.</summary>
    static async Task<(Request? Request, IResult? Refusal)> CheckAsync(HttpContext http, Func<string, string?> field, ICredentialStore store,
        CancellationToken ct)
    {
        string? Field(string name) => field(name) is { Length: > 0 } v ? v : null;
        var clientId = Field("client_id");
        if (clientId is null || clientId.Length > 256) return (null, Page.Problem(http, 400, "The request names no client (client_id)."));
        var client = await store.GetClientAsync(clientId, ct);
        if (client is null || client.AuthorizedGrantType is not (OAuthClient.Code or OAuthClient.Token))
            return (null, Page.Problem(http, 400, "This application is not known here as one that people log in to (unknown client_id, or a client-credentials client)."));
        var redirect = RegisteredRedirect(http, client, Field("redirect_uri"));
        if (redirect is null)
            return (null, Page.Problem(http, 400, "The address this application asked to return to is not one it registered (redirect_uri): nothing was sent there."));

        var state = Field("state");
        var responseType = Field("response_type");
        var fragment = responseType == "token";
        if (state?.Length > MaxParameterLength) return (null, Back(redirect, fragment, "invalid_request", "state is too long", null));
        if (responseType is not ("code" or "token"))
            return (null, Back(redirect, fragment, "unsupported_response_type", "response_type must be code or token", state));
        if ((responseType == "code") != (client.AuthorizedGrantType == OAuthClient.Code))
            return (null, Back(redirect, fragment, "unauthorized_client", $"this client is registered for the {client.AuthorizedGrantType} grant", state));
        var challenge = Field("code_challenge");
        if (responseType == "code")
        {
            if (challenge is not null && Field("code_challenge_method") != "S256")
                return (null, Back(redirect, fragment, "invalid_request", "code_challenge_method must be S256", state));
            if (challenge is not null && !Pkce.IsChallenge(challenge))
                return (null, Back(redirect, fragment, "invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)", state));
            // A public client has no secret to authenticate the code's redemption: PKCE is what binds the code to it.
            if (challenge is null && client.IsPublic)
                return (null, Back(redirect, fragment, "invalid_request", "this client must send a PKCE code_challenge (S256)", state));
        }
        return (new Request(client, responseType, redirect, state, responseType == "code" ? challenge : null), null);
    }

    /// <summary>
    /// The redirect URI if the client registered it (exact match, RFC 9700 §4.1.3), or the only one it registered when the
    /// request names none. A registered path (<c>/console/</c>) stands for that path on this server's own address.
    /// </summary>
    static string? RegisteredRedirect(HttpContext http, OAuthClient client, string? asked)
    {
        var own = PublicAddress.Of(http).Http;
        var registered = client.RedirectUris.Select(r => r.StartsWith('/') ? own + r : r).ToList();
        if (asked is null) return registered.Count == 1 ? registered[0] : null;
        return registered.Contains(asked, StringComparer.Ordinal) ? asked : null;
    }

    static async Task<IResult> ShowAsync(HttpContext http, ICredentialStore store, CancellationToken ct)
    {
        var query = http.Request.Query;
        var (request, refusal) = await CheckAsync(http, n => One(query[n]), store, ct);
        if (refusal is not null) return refusal;
        return Page.Login(http, Hidden(query), request!, username: null, error: null, status: 200);
    }

    static async Task<IResult> LoginAsync(HttpContext http, ICredentialStore store, UserDirectory users, Tokens tokens, TokenThrottle throttle,
        ParleyOptions options, TimeProvider clock, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!http.Request.HasFormContentType) return Page.Problem(http, 400, "Log in with the form on this page.");
        IFormCollection form;
        try { form = await http.Request.ReadFormAsync(ct); }
        catch (InvalidDataException) { return Page.Problem(http, 400, "The form could not be read."); }
        var (request, refusal) = await CheckAsync(http, n => One(form[n]), store, ct);
        if (refusal is not null) return refusal;
        var hidden = Hidden(form);
        // The form must come from this server's own page, in this browser: the SameSite=Strict cookie set with it.
        if (One(form["form_token"]) is not { Length: > 0 } token || http.Request.Cookies[FormCookie] is not { } cookie
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(token), Encoding.ASCII.GetBytes(cookie)))
            return Page.Login(http, hidden, request!, null, "The login form expired or came from another page. Please log in again.", 400);

        var username = One(form["username"])?.Trim() ?? "";
        var password = One(form["password"]) ?? "";
        var address = http.Connection.RemoteIpAddress;
        var key = "login:" + User.Normalize(username.Length <= MaxUsernameLength ? username : username[..MaxUsernameLength]);
        var log = loggers.CreateLogger(ParleyLog.OAuth);
        if (await throttle.CheckAsync(key, address, ct) is { } wait)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            if (throttle.ShouldReport(key, address)) log.LoginThrottled(address, seconds);
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return Page.Login(http, hidden, request!, username, $"Too many failed attempts. Try again in {seconds} seconds.", 429);
        }

        // The same work whatever is wrong: look the user up, then one PBKDF2 against its hash or a dummy one.
        var user = username.Length is > 0 and <= MaxUsernameLength ? await users.Store.FindByUsernameAsync(username, ct) : null;
        var presented = password.Length is > 0 and <= Passwords.MaxLength ? password : "";
        var matches = Passwords.Matches(presented, user?.PasswordHash ?? UnknownUserHash(options));
        if (user is null || presented.Length == 0 || !matches)
        {
            await throttle.FailedAsync(key, address, CancellationToken.None);
            log.LoginRefused(request!.Client.Id, address);
            return Page.Login(http, hidden, request, username, "Wrong username or password.", 200);
        }
        await throttle.SucceededAsync(key, address, CancellationToken.None);
        log.LoggedIn(user.Id, request!.Client.Id, request.ResponseType);

        if (request.ResponseType == "token")
        {
            var (access, expiresIn) = tokens.IssueAccessToken(request.Client.Id, [], request.Client.CredentialVersion, user);
            return Redirect(http, request.RedirectUri, fragment: true,
                [("access_token", access), ("token_type", "bearer"), ("expires_in", expiresIn.ToString(CultureInfo.InvariantCulture)), ("state", request.State)]);
        }
        var code = Base64Url(RandomNumberGenerator.GetBytes(32));
        var now = clock.GetUtcNow();
        await users.Store.SaveCodeAsync(new AuthorizationCode(CodeHash(code), request.Client.Id, user.Id, request.RedirectUri, request.CodeChallenge,
            now + options.AuthorizationCodeLifetime, user.CredentialVersion), purgeBefore: now - TimeSpan.FromHours(1), ct);
        return Redirect(http, request.RedirectUri, fragment: false, [("code", code), ("state", request.State)]);
    }

    static string? _unknownUserHash;

    /// <summary>A hash no password matches, at the configured cost, so an unknown username costs what a wrong password does.</summary>
    internal static string UnknownUserHash(ParleyOptions options)
    {
        var hash = _unknownUserHash;
        if (hash is null || Passwords.IterationsOf(hash) != options.PasswordIterations)
            _unknownUserHash = hash = Passwords.Hash(Base64Url(RandomNumberGenerator.GetBytes(32)), options.PasswordIterations);
        return hash;
    }

    /// <summary>Codes are stored by their SHA-256 only: a copy of the store redeems nothing.</summary>
    public static string CodeHash(string code) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(code)));

    static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    static string? One(StringValues values) => values.Count == 1 ? values[0] : null;

    /// <summary>The request's own parameters, carried by the form's hidden fields (checked again when it is posted).</summary>
    static List<(string Name, string Value)> Hidden(IEnumerable<KeyValuePair<string, StringValues>> source) =>
        source.Where(p => p.Key is "response_type" or "client_id" or "redirect_uri" or "state" or "code_challenge" or "code_challenge_method"
                && p.Value.Count == 1 && p.Value[0]!.Length <= MaxParameterLength)
            .Select(p => (p.Key, p.Value[0]!)).ToList();

    /// <summary>An error sent back to the client (RFC 6749 §4.1.2.1, §4.2.2.1): in the query for code, the fragment for token.</summary>
    static IResult Back(string redirect, bool fragment, string error, string description, string? state) =>
        new RedirectResult(redirect, fragment, [("error", error), ("error_description", description), ("state", state)]);

    static IResult Redirect(HttpContext http, string redirect, bool fragment, (string, string?)[] parameters) =>
        new RedirectResult(redirect, fragment, parameters);

    /// <summary>A 302 to the client, never cached, telling no referrer.</summary>
    sealed class RedirectResult(string redirect, bool fragment, (string Name, string? Value)[] parameters) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            var pairs = string.Join("&", parameters.Where(p => p.Value is not null)
                .Select(p => Uri.EscapeDataString(p.Name) + "=" + Uri.EscapeDataString(p.Value!)));
            var target = fragment ? redirect.Split('#')[0] + "#" + pairs
                : redirect.Split('#')[0] + (redirect.Contains('?') ? "&" : "?") + pairs;
            http.Response.Headers.CacheControl = "no-store";
            http.Response.Headers["Referrer-Policy"] = "no-referrer";
            http.Response.StatusCode = 302;
            http.Response.Headers.Location = target;
            return Task.CompletedTask;
        }
    }

    /// <summary>The login page and the problem page: server-rendered, every value HTML-encoded.</summary>
    static class Page
    {
        public static IResult Problem(HttpContext http, int status, string message) =>
            new HtmlResult(status, "Cannot log in", $"<p class=\"error\">{Enc(message)}</p>", formAction: null);

        public static IResult Login(HttpContext http, List<(string Name, string Value)> hidden, Request request, string? username, string? error, int status)
        {
            var token = Base64Url(RandomNumberGenerator.GetBytes(24));
            http.Response.Cookies.Append(FormCookie, token, new CookieOptions
            {
                HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = http.Request.PathBase.Add(Path), MaxAge = TimeSpan.FromMinutes(30),
            });
            var body = new StringBuilder();
            body.Append($"<p>Log in to continue to <strong>{Enc(request.Client.Name)}</strong>.</p>");
            if (error is not null) body.Append($"<p class=\"error\" role=\"alert\">{Enc(error)}</p>");
            body.Append($"<form method=\"post\" action=\"{Enc(http.Request.PathBase.Add(Path))}\">");
            foreach (var (name, value) in hidden) body.Append($"<input type=\"hidden\" name=\"{Enc(name)}\" value=\"{Enc(value)}\">");
            body.Append($"<input type=\"hidden\" name=\"form_token\" value=\"{token}\">");
            body.Append("<label for=\"username\">Username</label>");
            body.Append($"<input id=\"username\" name=\"username\" autocomplete=\"username\" required maxlength=\"{MaxUsernameLength}\" value=\"{Enc(username ?? "")}\"{(username is null ? " autofocus" : "")}>");
            body.Append("<label for=\"password\">Password</label>");
            body.Append($"<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"{Passwords.MaxLength}\"{(username is null ? "" : " autofocus")}>");
            body.Append("<button type=\"submit\">Log in</button></form>");
            return new HtmlResult(status, "Log in to Parley", body.ToString(), formAction: new Uri(request.RedirectUri).GetLeftPart(UriPartial.Authority));
        }

        static string Enc(string value) => WebUtility.HtmlEncode(value);
    }

    /// <summary>
    /// An HTML page under a strict Content-Security-Policy: nothing loads (no script, image or font), the one style block
    /// is allowed by its nonce, the form posts only here (and follows the redirect to the client's origin), no framing.
    /// </summary>
    sealed class HtmlResult(int status, string title, string body, string? formAction) : IResult
    {
        public async Task ExecuteAsync(HttpContext http)
        {
            var nonce = Base64Url(RandomNumberGenerator.GetBytes(16));
            http.Response.StatusCode = status;
            http.Response.ContentType = "text/html; charset=utf-8";
            http.Response.Headers.CacheControl = "no-store";
            http.Response.Headers["Content-Security-Policy"] =
                $"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'{(formAction is null ? "" : " " + formAction)}; " +
                "frame-ancestors 'none'; base-uri 'none'";
            http.Response.Headers["X-Frame-Options"] = "DENY";
            http.Response.Headers["X-Content-Type-Options"] = "nosniff";
            http.Response.Headers["Referrer-Policy"] = "no-referrer";
            await http.Response.WriteAsync($$"""
                <!doctype html>
                <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
                <title>{{WebUtility.HtmlEncode(title)}}</title>
                <style nonce="{{nonce}}">
                body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
                main{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;width:20rem}
                h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem}
                input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
                button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;background:#1f5fbf;color:#fff;border:0;border-radius:4px}
                .error{color:#a40000;background:#fde8e8;padding:.5rem;border-radius:4px}
                </style></head>
                <body><main><h1>{{WebUtility.HtmlEncode(title)}}</h1>{{body}}</main></body></html>
                """);
        }
    }
}

/// <summary>PKCE (RFC 7636) with S256 only: the challenge is BASE64URL(SHA256(ASCII(verifier))).</summary>
public static class Pkce
{
    public static bool IsChallenge(string challenge) => challenge.Length == 43 && challenge.All(IsBase64Url);

    /// <summary>A verifier is 43 to 128 unreserved characters (RFC 7636 §4.1).</summary>
    public static bool IsVerifier(string verifier) =>
        verifier.Length is >= 43 and <= 128 && verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~');

    public static bool Verifies(string verifier, string challenge)
    {
        if (!IsVerifier(verifier)) return false;
        var computed = Convert.ToBase64String(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(computed), Encoding.ASCII.GetBytes(challenge));
    }

    static bool IsBase64Url(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';
}
