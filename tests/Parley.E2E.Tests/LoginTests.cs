using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Parley.Core;
using Parley.Server;
using Parley.Server.Users;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>
/// One server for the login tests: the admin's password set (as PARLEY_DEMO_ADMIN_PASSWORD would), a supervisor created
/// through the user API, and an implicit-grant client. Chosen passwords are hashed with fewer PBKDF2 iterations than the
/// shipped 600,000 here, only so that the many logins of these tests stay fast on a loaded machine;
/// <see cref="AdminBootstrapTests"/> checks the shipped cost.
/// </summary>
public sealed class LoginServer : IAsyncLifetime
{
    public const string AdminPassword = "admin-password-for-tests";
    public const string SupervisorPassword = "supervisor-password-1";
    public ParleyServer Server { get; private set; } = null!;
    public LogCapture Logs { get; } = new();
    public string SupervisorId { get; private set; } = "";
    public string TokenClientId { get; private set; } = "";
    public const string TokenRedirect = "http://127.0.0.1:9/app";

    public async Task InitializeAsync()
    {
        Server = await ParleyServer.StartAsync(o => o with { DemoAdminPassword = AdminPassword, PasswordIterations = 10_000 },
            services: s => s.AddSingleton<ILoggerProvider>(Logs));
        using var demo = await Server.PlatformAsync();
        var (created, user) = await demo.PostAsync("/api/v2/users",
            new { name = "Sam Supervisor", email = "sam@example.com", password = SupervisorPassword, roles = new[] { "supervisor" } });
        Assert.True(created.StatusCode == HttpStatusCode.OK, user?.ToJsonString());
        SupervisorId = user!["id"]!.GetValue<string>();
        var (made, client) = await demo.PostAsync("/api/v2/oauth/clients",
            new { name = "implicit app", authorizedGrantType = "TOKEN", permissions = new[] { "*" }, registeredRedirectUri = new[] { TokenRedirect } });
        Assert.True(made.StatusCode == HttpStatusCode.OK, client?.ToJsonString());
        TokenClientId = client!["id"]!.GetValue<string>();
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>A user's token through the console client's code + PKCE flow.</summary>
    public async Task<string> LogInAsync(string username, string password, string source = "127.0.0.1")
    {
        using var browser = new LoginBrowser(Server, source);
        var (verifier, challenge) = LoginBrowser.Pkce();
        var redirect = browser.Own("/console/");
        var (response, html) = await browser.LoginAsync(LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId),
            ("redirect_uri", redirect), ("code_challenge", challenge), ("code_challenge_method", "S256")), username, password);
        Assert.True(response.StatusCode == HttpStatusCode.Found, $"login: {(int)response.StatusCode} {html}");
        var code = LoginBrowser.Parameters(response, fragment: false)["code"];
        var (status, body) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, code, redirect, verifier);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        return body!["access_token"]!.GetValue<string>();
    }
}

public sealed class LoginTests(LoginServer fixture) : IClassFixture<LoginServer>
{
    ParleyServer Server => fixture.Server;

    static async Task<(HttpStatusCode Status, JsonNode? Body)> CallAsync(PlatformClient client, HttpMethod method, string path, object? body = null)
    {
        var (response, json) = await client.SendAsync(method, path, body);
        return (response.StatusCode, json);
    }

    [Fact]
    public async Task CodeWithPkce_GivesTheUsersToken_UsersMeNamesTheUser_AndAReusedCodeIsRefusedAndRevokesTheTokens()
    {
        using var browser = new LoginBrowser(Server);
        var (verifier, challenge) = LoginBrowser.Pkce();
        var redirect = browser.Own("/console/");
        var query = LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId), ("redirect_uri", redirect),
            ("state", "s-123"), ("code_challenge", challenge), ("code_challenge_method", "S256"));

        var (page, html) = await browser.OpenAsync(query);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'none'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.DoesNotContain("<script", html);

        var (login, _) = await browser.LoginAsync(query, "ADMIN", LoginServer.AdminPassword);   // usernames match in any case
        var back = LoginBrowser.Parameters(login, fragment: false);
        Assert.StartsWith(redirect + "?", login.Headers.Location!.ToString());
        Assert.Equal("s-123", back["state"]);

        var (status, token) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, back["code"], redirect, verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("bearer", token!["token_type"]!.GetValue<string>());
        Assert.True(token["expires_in"]!.GetValue<long>() > 0);
        using var admin = Bearer(Server, token["access_token"]!.GetValue<string>());
        var (meStatus, me) = await CallAsync(admin, HttpMethod.Get, "/api/v2/users/me?expand=authorization");
        Assert.Equal(HttpStatusCode.OK, meStatus);
        Assert.Equal(("admin", "active"), (me!["username"]!.GetValue<string>(), me["state"]!.GetValue<string>()));
        Assert.Equal($"/api/v2/users/{me["id"]}", me["selfUri"]!.GetValue<string>());
        Assert.Contains("admin", me["authorization"]!["roles"]!.AsArray().Select(r => r!["name"]!.GetValue<string>()));
        Assert.Null(me["password"]);
        Assert.DoesNotContain("pbkdf2", me.ToJsonString());

        // The same code again (RFC 6749 §4.1.2): refused, and the tokens issued from it stop working.
        var (again, error) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, back["code"], redirect, verifier);
        Assert.Equal(HttpStatusCode.BadRequest, again);
        Assert.Equal("invalid_grant", error!["error"]!.GetValue<string>());
        var (after, refused) = await CallAsync(admin, HttpMethod.Get, "/api/v2/users/me");
        Assert.Equal((HttpStatusCode.Unauthorized, "bad.credentials"), (after, refused!["code"]!.GetValue<string>()));
    }

    [Fact]
    public async Task PkceVerifier_MissingOrWrong_IsInvalidGrant_AndSpendsTheCode()
    {
        using var browser = new LoginBrowser(Server, "127.0.0.3");
        var redirect = browser.Own("/console/");
        foreach (var presented in new[] { null, LoginBrowser.Pkce().Verifier })
        {
            var (verifier, challenge) = LoginBrowser.Pkce();
            var (login, _) = await browser.LoginAsync(LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId),
                ("redirect_uri", redirect), ("code_challenge", challenge), ("code_challenge_method", "S256")), "sam@example.com", LoginServer.SupervisorPassword);
            var code = LoginBrowser.Parameters(login, fragment: false)["code"];

            var (status, body) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, code, redirect, presented);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("invalid_grant", body!["error"]!.GetValue<string>());
            Assert.Null(body["access_token"]);
            // The failed attempt spent the code: the right verifier no longer gets a token for it.
            var (late, _) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, code, redirect, verifier);
            Assert.Equal(HttpStatusCode.BadRequest, late);
        }
        // The console client is public: a code request without a PKCE challenge goes back as an error, with no code.
        var (noPkce, _) = await browser.OpenAsync(LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId),
            ("redirect_uri", redirect), ("state", "x")));
        var refused = LoginBrowser.Parameters(noPkce, fragment: false);
        Assert.Equal(("invalid_request", "x"), (refused["error"], refused["state"]));
        Assert.False(refused.ContainsKey("code"));
    }

    [Fact]
    public async Task WrongPassword_ShowsTheError_WithNoRedirectAndNoCode_UnknownUserTheSame_AndGuessingIsThrottled()
    {
        using var browser = new LoginBrowser(Server, "127.0.0.4");
        var query = LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId), ("redirect_uri", browser.Own("/console/")),
            ("code_challenge", LoginBrowser.Pkce().Challenge), ("code_challenge_method", "S256"));

        var (wrong, wrongHtml) = await browser.LoginAsync(query, "sam@example.com", "not-the-password");
        var (unknown, unknownHtml) = await browser.LoginAsync(query, "nobody@example.com", "not-the-password");
        foreach (var (response, html) in new[] { (wrong, wrongHtml), (unknown, unknownHtml) })
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Null(response.Headers.Location);
            Assert.Contains("Wrong username or password.", html);
            Assert.DoesNotContain("code=", html);
            Assert.DoesNotContain("not-the-password", html);   // the password is never shown back
        }

        // Guessing one user's password from one address: after the allowance, refused before any password is checked.
        HttpResponseMessage last = wrong;
        for (var i = 0; i < 10 && last.StatusCode != HttpStatusCode.TooManyRequests; i++)
            (last, _) = await browser.LoginAsync(query, "sam@example.com", "guess-" + i);
        Assert.Equal(HttpStatusCode.TooManyRequests, last.StatusCode);
        Assert.NotNull(last.Headers.RetryAfter);
        var (right, rightHtml) = await browser.LoginAsync(query, "sam@example.com", LoginServer.SupervisorPassword);
        Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode);
        Assert.Null(right.Headers.Location);
        Assert.Contains("Too many failed attempts", rightHtml);
        // Another address is not held back by this one's guesses.
        Assert.False(string.IsNullOrEmpty(await fixture.LogInAsync("sam@example.com", LoginServer.SupervisorPassword, "127.0.0.5")));
    }

    [Fact]
    public async Task UnregisteredRedirectUri_OrUnknownClient_IsShownOnThePage_AndNeverRedirectedTo()
    {
        using var browser = new LoginBrowser(Server);
        var challenge = LoginBrowser.Pkce().Challenge;
        foreach (var (client, redirect) in new[]
        {
            (ParleyOptions.ConsoleClientId, "https://attacker.example/console/"),
            (ParleyOptions.ConsoleClientId, browser.Own("/console/evil")),
            ("no-such-client", "https://attacker.example/cb"),
            (ParleyOptions.DefaultClientId, "https://attacker.example/cb"),   // a client-credentials client logs nobody in
        })
        {
            var query = LoginBrowser.Query(("response_type", "code"), ("client_id", client), ("redirect_uri", redirect), ("code_challenge", challenge),
                ("code_challenge_method", "S256"));
            var (page, html) = await browser.OpenAsync(query);
            Assert.Equal(HttpStatusCode.BadRequest, page.StatusCode);
            Assert.Null(page.Headers.Location);
            Assert.DoesNotContain("attacker.example", html);
            Assert.DoesNotContain("<form", html);

            // Posting the form anyway (credentials and all) is refused the same way.
            var form = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["response_type"] = "code", ["client_id"] = client, ["redirect_uri"] = redirect, ["code_challenge"] = challenge,
                ["code_challenge_method"] = "S256", ["username"] = "admin", ["password"] = LoginServer.AdminPassword,
            });
            var posted = await browser.Http.PostAsync("/oauth/authorize", form);
            Assert.Equal(HttpStatusCode.BadRequest, posted.StatusCode);
            Assert.Null(posted.Headers.Location);
        }
    }

    [Fact]
    public async Task LoginFormPostedWithoutItsCookie_IsRefused()
    {
        using var page = new LoginBrowser(Server);
        var query = LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId), ("redirect_uri", page.Own("/console/")),
            ("code_challenge", LoginBrowser.Pkce().Challenge), ("code_challenge_method", "S256"));
        var (_, html) = await page.OpenAsync(query);
        var fields = LoginBrowser.HiddenFields(html);
        fields.Add(new("username", "admin"));
        fields.Add(new("password", LoginServer.AdminPassword));
        // Another site's page posting the same form: the browser sends no SameSite=Strict cookie with it.
        using var elsewhere = new LoginBrowser(Server);
        var posted = await elsewhere.Http.PostAsync("/oauth/authorize", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.BadRequest, posted.StatusCode);
        Assert.Null(posted.Headers.Location);
    }

    [Fact]
    public async Task ImplicitGrant_RedirectsWithTheTokenInTheFragment_AsTheJsSdkReadsIt()
    {
        using var browser = new LoginBrowser(Server);
        var (login, _) = await browser.LoginAsync(LoginBrowser.Query(("response_type", "token"), ("client_id", fixture.TokenClientId),
            ("redirect_uri", LoginServer.TokenRedirect), ("state", "st/ate 1")), "sam@example.com", LoginServer.SupervisorPassword);

        Assert.StartsWith(LoginServer.TokenRedirect + "#access_token=", login.Headers.Location!.ToString());
        var fragment = LoginBrowser.Parameters(login, fragment: true);
        Assert.Equal(("bearer", "st/ate 1"), (fragment["token_type"], fragment["state"]));
        Assert.True(long.Parse(fragment["expires_in"]) > 0);
        using var supervisor = Bearer(Server, fragment["access_token"]);
        var (status, me) = await CallAsync(supervisor, HttpMethod.Get, "/api/v2/users/me");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal((fixture.SupervisorId, "Sam Supervisor"), (me!["id"]!.GetValue<string>(), me["name"]!.GetValue<string>()));

        // The implicit client asking for a code, and the console asking for a token, go back as unauthorized_client.
        var (wrongType, _) = await browser.OpenAsync(LoginBrowser.Query(("response_type", "code"), ("client_id", fixture.TokenClientId),
            ("redirect_uri", LoginServer.TokenRedirect)));
        Assert.Equal("unauthorized_client", LoginBrowser.Parameters(wrongType, fragment: false)["error"]);
    }

    [Fact]
    public async Task Supervisor_IsRefusedAdministration_AndAllowedToWatchAndEnd()
    {
        using var supervisor = Bearer(Server, await fixture.LogInAsync("sam@example.com", LoginServer.SupervisorPassword));
        foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
        {
            (HttpMethod.Get, "/api/v2/oauth/clients", null),
            (HttpMethod.Post, "/api/v2/users", new { name = "x", email = "x@example.com", password = "password-123", roles = new[] { "admin" } }),
            (HttpMethod.Get, "/api/v2/users", null),
            (HttpMethod.Post, "/api/v2/parley/deployments", new { name = "x" }),
            (HttpMethod.Post, "/api/v2/conversations/messages/agentless", new { textBody = "x" }),
        })
        {
            var (status, error) = await CallAsync(supervisor, method, path, body);
            Assert.True(status == HttpStatusCode.Forbidden, $"{method} {path}: {(int)status} {error?.ToJsonString()}");
            Assert.Equal("missing.permissions", error!["code"]!.GetValue<string>());
        }
        foreach (var path in new[] { "/api/v2/parley/audit/terminations", "/api/v2/conversations/messages", "/api/v2/parley/openmessaging/deliveries?state=Dead" })
        {
            var (status, body) = await CallAsync(supervisor, HttpMethod.Get, path);
            Assert.True(status == HttpStatusCode.OK, $"GET {path}: {(int)status} {body?.ToJsonString()}");
        }
        // A client-credentials token is no user: users/me answers as the platform does.
        using var demo = await Server.PlatformAsync();
        var (notUser, refusal) = await CallAsync(demo, HttpMethod.Get, "/api/v2/users/me");
        Assert.Equal(HttpStatusCode.BadRequest, notUser);
        Assert.Contains("requires a user context", refusal!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task UsersToken_Terminates_AndTheAuditAndTheLogNameTheUser()
    {
        using var demo = await Server.PlatformAsync();
        await using var guest = await Server.GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (string)(await demo.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);

        using var supervisor = Bearer(Server, await fixture.LogInAsync("sam@example.com", LoginServer.SupervisorPassword));
        var (ended, _) = await supervisor.PostAsync($"/api/v2/conversations/{conversationId}/disconnect");
        Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
        await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));

        var (_, audit) = await supervisor.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}");
        var row = Assert.Single(audit!["entities"]!.AsArray())!;
        Assert.Equal(ParleyOptions.ConsoleClientId, row["client"]!["id"]!.GetValue<string>());
        Assert.Equal((fixture.SupervisorId, "Sam Supervisor"), (row["user"]!["id"]!.GetValue<string>(), row["user"]!["name"]!.GetValue<string>()));
        var line = await fixture.Logs.WaitForAsync(e => e.EventId == 3001 && e.Field("ConversationId") == conversationId, TimeSpan.FromSeconds(10));
        Assert.Contains($"for user {fixture.SupervisorId} (Sam Supervisor)", line.Message);
    }

    [Fact]
    public async Task ChangedRoles_NewPassword_OrDeletion_EndTheUsersTokens()
    {
        using var demo = await Server.PlatformAsync();
        var (_, created) = await demo.PostAsync("/api/v2/users",
            new { name = "Temp", username = "temp-user", password = "temp-password-1", roles = new[] { "supervisor" } });
        var id = created!["id"]!.GetValue<string>();
        Assert.Null(created["password"]);

        async Task<HttpStatusCode> MeAsync(string token)
        {
            using var client = Bearer(Server, token);
            return (await client.GetAsync("/api/v2/users/me")).Response.StatusCode;
        }

        var first = await fixture.LogInAsync("temp-user", "temp-password-1", "127.0.0.6");
        Assert.Equal(HttpStatusCode.OK, await MeAsync(first));
        Assert.Equal(HttpStatusCode.OK, (await demo.PatchAsync($"/api/v2/users/{id}", new { roles = new[] { "admin" } })).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(first));

        var second = await fixture.LogInAsync("temp-user", "temp-password-1", "127.0.0.6");
        Assert.Equal(HttpStatusCode.NoContent, (await demo.PostAsync($"/api/v2/users/{id}/password", new { newPassword = "temp-password-2" })).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(second));

        var third = await fixture.LogInAsync("temp-user", "temp-password-2", "127.0.0.6");
        Assert.Equal(HttpStatusCode.NoContent, (await demo.SendAsync(HttpMethod.Delete, $"/api/v2/users/{id}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(third));
    }

    [Fact]
    public async Task ACallerCannotCreateOrChangeAUserStrongerThanItself()
    {
        using var demo = await Server.PlatformAsync();
        var (id, secret) = await CreateClientAsync(demo, "user admin", "directory:user:add", "directory:user:edit", "directory:user:view");
        using var limited = await AsClientAsync(Server, id, secret);
        var (status, error) = await CallAsync(limited, HttpMethod.Post, "/api/v2/users",
            new { name = "Boss", username = "boss", password = "boss-password-1", roles = new[] { "admin" } });
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("missing.permissions", error!["code"]!.GetValue<string>());
        var (taken, _) = await CallAsync(demo, HttpMethod.Post, "/api/v2/users",
            new { name = "Again", email = "SAM@example.com", password = "another-password", roles = new[] { "supervisor" } });
        Assert.Equal(HttpStatusCode.Conflict, taken);
        var (weak, _) = await CallAsync(demo, HttpMethod.Post, "/api/v2/users", new { name = "Weak", username = "weak", password = "short" });
        Assert.Equal(HttpStatusCode.BadRequest, weak);
    }

    [Fact]
    public async Task UnknownUser_IsCheckedAtTheCostOfTheKnownUsersHashes()
    {
        var options = Server.Services.GetRequiredService<ParleyOptions>();
        var store = Server.Services.GetRequiredService<IUserStore>();
        var unknown = Passwords.IterationsOf(AuthorizeEndpoint.UnknownUserHash(options));
        Assert.Equal(options.PasswordIterations, unknown);
        foreach (var name in new[] { "admin", "sam@example.com" })
            Assert.Equal(unknown, Passwords.IterationsOf((await store.FindByUsernameAsync(name, default))!.PasswordHash));
    }

    [Fact]
    public async Task Login_ThroughTheSdkGatewayPrefix_Works_WithTheFormAndItsCookieUnderThePrefix()
    {
        const string prefix = "/gateway/login";
        using var browser = new LoginBrowser(Server, "127.0.0.9") { Prefix = prefix };
        var (verifier, challenge) = LoginBrowser.Pkce();
        var redirect = browser.Own("/console/");
        var query = LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId), ("redirect_uri", redirect),
            ("code_challenge", challenge), ("code_challenge_method", "S256"));
        var (page, html) = await browser.OpenAsync(query);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains($"<form method=\"post\" action=\"{prefix}/oauth/authorize\">", html);
        Assert.Contains(page.Headers.GetValues("Set-Cookie"), c => c.Contains($"path={prefix}/oauth/authorize", StringComparison.OrdinalIgnoreCase));

        var (login, loginHtml) = await browser.LoginAsync(query, "admin", LoginServer.AdminPassword);
        Assert.True(login.StatusCode == HttpStatusCode.Found, loginHtml);
        var (status, body) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, LoginBrowser.Parameters(login, false)["code"], redirect, verifier);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        using var admin = Bearer(Server, body!["access_token"]!.GetValue<string>());
        var (me, user) = await CallAsync(admin, HttpMethod.Get, "/gateway/api/api/v2/users/me");
        Assert.Equal(HttpStatusCode.OK, me);
        Assert.Equal("admin", user!["username"]!.GetValue<string>());
    }

    [Fact]
    public async Task QueueMadeWithAUsersToken_NamesTheUser_AndWithAClientsToken_TheClient()
    {
        using var admin = Bearer(Server, await fixture.LogInAsync("admin", LoginServer.AdminPassword, "127.0.0.10"));
        var (_, me) = await CallAsync(admin, HttpMethod.Get, "/api/v2/users/me");
        var (made, queue) = await CallAsync(admin, HttpMethod.Post, "/api/v2/routing/queues", new { name = "made by a user " + Guid.NewGuid().ToString("N") });
        Assert.True(made == HttpStatusCode.OK, queue?.ToJsonString());
        Assert.Equal(me!["id"]!.GetValue<string>(), queue!["createdBy"]!.GetValue<string>());
        Assert.Equal(me["id"]!.GetValue<string>(), queue["modifiedBy"]!.GetValue<string>());

        using var demo = await Server.PlatformAsync();
        var (_, byClient) = await CallAsync(demo, HttpMethod.Post, "/api/v2/routing/queues", new { name = "made by a client " + Guid.NewGuid().ToString("N") });
        Assert.Equal(Server.Services.GetRequiredService<ParleyOptions>().DemoClientId, byClient!["createdBy"]!.GetValue<string>());
    }
}

/// <summary>The admin user at start: generated once and printed, or set by PARLEY_DEMO_ADMIN_PASSWORD at every start; never logged.</summary>
public sealed class AdminBootstrapTests
{
    [Fact]
    public async Task AdminPassword_FromTheSetting_IsAppliedAtEveryStart_EndsOldTokens_HashedAtTheShippedCost_AndNeverLogged()
    {
        var logs = new LogCapture();
        var password = "first-admin-password";
        await using var server = await ParleyServer.StartAsync(o => o with { DemoAdminPassword = password },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var stored = await server.Services.GetRequiredService<IUserStore>().FindByUsernameAsync("admin", default);
        Assert.Equal(Passwords.DefaultIterations, Passwords.IterationsOf(stored!.PasswordHash));
        Assert.Null(server.Services.GetRequiredService<AdminSeed>().GeneratedPassword);
        var token = await LogInAsync(server, password);

        password = "second-admin-password";
        await server.RestartAsync();

        using (var old = Bearer(server, token))
            Assert.Equal(HttpStatusCode.Unauthorized, (await old.GetAsync("/api/v2/users/me")).Response.StatusCode);
        using (var browser = new LoginBrowser(server))
        {
            var (refused, html) = await browser.LoginAsync(ConsoleQuery(browser, LoginBrowser.Pkce().Challenge), "admin", "first-admin-password");
            Assert.Contains("Wrong username or password.", html);
        }
        await LogInAsync(server, password);

        var leaked = logs.All.Where(e => e.Contains("first-admin-password") || e.Contains("second-admin-password")).ToList();
        Assert.True(leaked.Count == 0, "passwords in the log: " + string.Join("\n", leaked.Select(e => e.Message)));
        Assert.Contains(logs.All, e => e.EventId == 8101);   // the logins were logged (without their passwords)
    }

    [Fact]
    public async Task WithoutTheSetting_APasswordIsGeneratedOnce_PrintedThen_AndKeptOnlyAsAHash()
    {
        var logs = new LogCapture();
        await using var server = await ParleyServer.StartAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var seed = server.Services.GetRequiredService<AdminSeed>();
        var generated = seed.GeneratedPassword!;
        Assert.True(generated.Length >= 20);
        var banner = Banner.Text(["http://127.0.0.1:5000"], server.Services.GetRequiredService<ParleyOptions>(), _ => null, null, seed);
        Assert.Contains($"\n  admin user      admin\n  admin password  {generated}  (", banner);
        Assert.Contains("\n  links ", banner);   // the lines after it keep their place
        var stored = (await server.Services.GetRequiredService<IUserStore>().FindByUsernameAsync("admin", default))!;
        Assert.DoesNotContain(generated, stored.PasswordHash);
        // Hashed at the cost an unknown username is checked at, so the admin's name cannot be told apart by timing.
        var options = server.Services.GetRequiredService<ParleyOptions>();
        Assert.Equal(options.PasswordIterations, Passwords.IterationsOf(stored.PasswordHash));
        Assert.Equal(Passwords.IterationsOf(AuthorizeEndpoint.UnknownUserHash(options)), Passwords.IterationsOf(stored.PasswordHash));

        await server.RestartAsync();
        var again = server.Services.GetRequiredService<AdminSeed>();
        Assert.Null(again.GeneratedPassword);   // not stored in clear, so not printable again
        Assert.DoesNotContain(generated, Banner.Text(["http://127.0.0.1:5000"], server.Services.GetRequiredService<ParleyOptions>(), _ => null, null, again));
        await LogInAsync(server, generated);    // and still the password
        Assert.DoesNotContain(logs.All, e => e.Contains(generated));
    }

    [Fact]
    public async Task AdminRole_TakenFromTheAdminUser_IsPutBackAtTheNextStart()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { DemoAdminPassword = "admin-role-password", PasswordIterations = 10_000 });
        var users = server.Services.GetRequiredService<IUserStore>();
        var id = (await users.FindByUsernameAsync("admin", default))!.Id;
        using (var demo = await server.PlatformAsync())
        {
            var (response, body) = await demo.PatchAsync($"/api/v2/users/{id}", new { roles = new[] { "supervisor" } });
            Assert.True(response.StatusCode == HttpStatusCode.OK, body?.ToJsonString());
        }
        Assert.DoesNotContain("admin", (await users.FindByUsernameAsync("admin", default))!.Roles);

        await server.RestartAsync();
        users = server.Services.GetRequiredService<IUserStore>();
        Assert.Equal(["admin", "supervisor"], (await users.FindByUsernameAsync("admin", default))!.Roles.Order());
        using var admin = Bearer(server, await LogInAsync(server, "admin-role-password"));
        var (created, _) = await admin.PostAsync("/api/v2/users",
            new { name = "Made After", email = "after@example.com", password = "after-password-1", roles = new[] { "admin" } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);   // an admin again
    }

    static string ConsoleQuery(LoginBrowser browser, string challenge) => LoginBrowser.Query(("response_type", "code"),
        ("client_id", ParleyOptions.ConsoleClientId), ("redirect_uri", browser.Own("/console/")), ("code_challenge", challenge), ("code_challenge_method", "S256"));

    static async Task<string> LogInAsync(ParleyServer server, string password)
    {
        using var browser = new LoginBrowser(server);
        var (verifier, challenge) = LoginBrowser.Pkce();
        var (login, html) = await browser.LoginAsync(ConsoleQuery(browser, challenge), "admin", password);
        Assert.True(login.StatusCode == HttpStatusCode.Found, html);
        var (status, body) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, LoginBrowser.Parameters(login, false)["code"],
            browser.Own("/console/"), verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        return body!["access_token"]!.GetValue<string>();
    }
}
