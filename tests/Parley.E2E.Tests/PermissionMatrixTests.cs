using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Parley.Core;
using Parley.Server.OAuth;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>
/// The permission matrix: every Platform API endpoint the running app maps (read from its endpoint data source, so
/// endpoints added later are covered without touching this test) × no token, an expired token, a token without the
/// endpoint's permission, a guest token, and another client's resource where a resource belongs to a client. The answers
/// are asserted, and docs/permissions.md must be this table exactly. Regenerate it with
/// <c>PARLEY_WRITE_PERMISSIONS=1 dotnet test tests/Parley.E2E.Tests -c Release --filter FullyQualifiedName~PermissionMatrix</c>.
/// </summary>
public sealed class PermissionMatrixTests
{
    /// <summary>Endpoints under /api/v2 that are not Platform API endpoints, and what authenticates them instead.</summary>
    static readonly Dictionary<string, string> NotPlatform = new()
    {
        ["/api/v2/webmessaging/messages"] = "Guest API history: the guest's JWT from getJwt",
        ["/api/v2/conversations/messaging/events"] =
            "no such endpoint, on Genesys Cloud either: a 404 to anyone that names the endpoints that end a conversation",
        ["/api/v2/conversations/messaging/{conversationId}/participants/{participantId}/events"] = "the same",
        ["/api/v2/users/me"] = "any valid Platform token, no permission (as on the platform): a user's token gets its user, " +
            "a client-credentials token 400 `bad.request` (docs/users.md)",
    };

    sealed record Row(string Method, string Path, string Permission, string NoToken, string Expired, string Without, string Guest,
        string WithPermission, string OtherClient);

    /// <summary>A request against a resource that belongs to another client; null where resources are the organisation's.</summary>
    sealed record OtherCase(string Path, object? Body, HttpStatusCode Expected, string Why);

    [Fact]
    public async Task EveryPlatformEndpoint_AnswersAsTheMatrixSays_AndTheDocIsCurrent()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        using var http = From(server);

        var endpoints = server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api/v2/", StringComparison.Ordinal) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"])
                .Select(m => (Method: m, Path: e.RoutePattern.RawText!,
                    Required: e.Metadata.GetOrderedMetadata<RequiredPermission>().Select(r => r.Permission).ToArray())))
            .Where(e => !NotPlatform.ContainsKey(e.Path))
            .OrderBy(e => e.Path, StringComparer.Ordinal).ThenBy(e => e.Method, StringComparer.Ordinal)
            .ToList();
        Assert.True(endpoints.Count > 30, $"only {endpoints.Count} endpoints found");
        var undeclared = endpoints.Where(e => e.Required.Length == 0).Select(e => $"{e.Method} {e.Path}").ToList();
        Assert.True(undeclared.Count == 0, "Platform endpoints without a declared permission (.RequirePermission): " + string.Join(", ", undeclared));
        var unknown = endpoints.SelectMany(e => e.Required).Distinct().Where(p => !Permissions.Known.Contains(p)).ToList();
        Assert.True(unknown.Count == 0, "Permissions no client can be granted (add them to Permissions.Known): " + string.Join(", ", unknown));

        // The tokens of each column.
        // The key exists already: the store keeps it and ignores the one offered.
        var key = await server.Services.GetRequiredService<IDirectoryStore>().GetOrCreateSigningKeyAsync(() => new byte[32], default);
        var (expired, _) = new Tokens(key, new PastClock(TimeSpan.FromDays(2))).IssueAccessToken(DemoId, ["*"]);
        string guestJwt;
        await using (var guest = await server.GuestAsync())
        {
            await guest.ConfigureAsync();
            guestJwt = await guest.JwtAsync();
        }
        var holding = new Dictionary<string, string>();      // the endpoint's permissions (Key) → a token holding only those
        var allBut = new Dictionary<string, string>();       // permission → a token holding every other permission
        foreach (var required in endpoints.Select(e => e.Required).DistinctBy(Key))
        {
            var (onlyId, onlySecret) = await CreateClientAsync(admin, "only " + Key(required), required);
            holding[Key(required)] = await TokenAsync(http, onlyId, onlySecret);
        }
        foreach (var permission in endpoints.SelectMany(e => e.Required).Distinct())
        {
            var (butId, butSecret) = await CreateClientAsync(admin, "all but " + permission, [.. Permissions.Known.Where(p => p != permission)]);
            allBut[permission] = await TokenAsync(http, butId, butSecret);
        }

        // Resources that belong to a client: the demo client's notification channel, and a client stronger than the caller.
        var (_, channel) = await admin.PostAsync("/api/v2/notifications/channels");
        var channelId = channel!["id"]!.GetValue<string>();
        // The admin user holds every permission: a caller holding only the endpoint's may read it, not change or delete it.
        var adminUser = (await server.Services.GetRequiredService<IUserStore>().FindByUsernameAsync(Parley.Server.ParleyOptions.DefaultAdminUser, default))!.Id;
        var others = new Dictionary<string, OtherCase>
        {
            ["GET /api/v2/users/{userId}"] = new($"/api/v2/users/{adminUser}", null, HttpStatusCode.OK,
                "a stronger user: readable (users are the organisation's; no password is shown)"),
            ["PATCH /api/v2/users/{userId}"] = new($"/api/v2/users/{adminUser}", new { name = "taken over" }, HttpStatusCode.Forbidden,
                "a user holding a permission the caller lacks"),
            ["POST /api/v2/users/{userId}/password"] = new($"/api/v2/users/{adminUser}/password", new { newPassword = "taken-over-1" },
                HttpStatusCode.Forbidden, "a user holding a permission the caller lacks"),
            ["DELETE /api/v2/users/{userId}"] = new($"/api/v2/users/{adminUser}", null, HttpStatusCode.Forbidden,
                "a user holding a permission the caller lacks"),
            ["HEAD /api/v2/notifications/channels/{channelId}"] = new($"/api/v2/notifications/channels/{channelId}", null, HttpStatusCode.NotFound,
                "another client's channel"),
            ["GET /api/v2/notifications/channels/{channelId}/subscriptions"] = new($"/api/v2/notifications/channels/{channelId}/subscriptions", null,
                HttpStatusCode.NotFound, "another client's channel"),
            ["POST /api/v2/notifications/channels/{channelId}/subscriptions"] = new($"/api/v2/notifications/channels/{channelId}/subscriptions",
                new JsonArray(), HttpStatusCode.NotFound, "another client's channel"),
            ["PUT /api/v2/notifications/channels/{channelId}/subscriptions"] = new($"/api/v2/notifications/channels/{channelId}/subscriptions",
                new JsonArray(), HttpStatusCode.NotFound, "another client's channel"),
            ["DELETE /api/v2/notifications/channels/{channelId}/subscriptions"] = new($"/api/v2/notifications/channels/{channelId}/subscriptions", null,
                HttpStatusCode.NotFound, "another client's channel"),
            ["GET /api/v2/oauth/clients/{clientId}"] = new($"/api/v2/oauth/clients/{DemoId}", null, HttpStatusCode.OK,
                "a stronger client: readable (clients are the organisation's; no secret is shown)"),
            ["PUT /api/v2/oauth/clients/{clientId}"] = new($"/api/v2/oauth/clients/{DemoId}", new { name = "taken over" }, HttpStatusCode.Forbidden,
                "a client holding a permission the caller lacks"),
            ["DELETE /api/v2/oauth/clients/{clientId}"] = new($"/api/v2/oauth/clients/{DemoId}", null, HttpStatusCode.Forbidden,
                "a client holding a permission the caller lacks"),
            ["POST /api/v2/oauth/clients/{clientId}/secret"] = new($"/api/v2/oauth/clients/{DemoId}/secret", null, HttpStatusCode.Forbidden,
                "a client holding a permission the caller lacks"),
        };

        var rows = new List<Row>();
        var failures = new List<string>();
        foreach (var (method, path, required) in endpoints)
        {
            var permission = Key(required);
            var url = Concrete(path);
            var noToken = await CallAsync(server, method, url, null);
            var expiredAnswer = await CallAsync(server, method, url, expired);
            // Each required permission is needed: lacking any one of them is a 403 naming it.
            var withouts = new List<(HttpStatusCode Status, string Text, string Message)>();
            foreach (var lacking in required)
            {
                var answer = await CallAsync(server, method, url, allBut[lacking]);
                withouts.Add(answer);
                Expect(failures, method, path, "without " + lacking, answer, HttpStatusCode.Forbidden);
                if (method != "HEAD" && !answer.Message.Contains(lacking, StringComparison.Ordinal))   // a HEAD answer has no body
                    failures.Add($"{method} {path}, without {lacking}: the 403 does not name it: {answer.Message}");
            }
            var without = withouts[0];
            var guestAnswer = await CallAsync(server, method, url, guestJwt);
            var with = await CallAsync(server, method, url, holding[permission]);
            var other = "n/a";
            if (others.TryGetValue($"{method} {path}", out var c))
            {
                var answer = await CallAsync(server, method, c.Path, holding[permission], c.Body);
                other = $"{answer.Text} ({c.Why})";
                if (answer.Status != c.Expected) failures.Add($"{method} {path}, {c.Why}: {answer.Text}, expected {(int)c.Expected}");
            }
            Expect(failures, method, path, "no token", noToken, HttpStatusCode.Unauthorized);
            Expect(failures, method, path, "expired token", expiredAnswer, HttpStatusCode.Unauthorized);
            Expect(failures, method, path, "guest token", guestAnswer, HttpStatusCode.Unauthorized);
            if (with.Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                failures.Add($"{method} {path} with only {permission}: {with.Text} (the declared permissions must suffice)");
            rows.Add(new Row(method, path, string.Join(" + ", required.Select(p => $"`{p}`")), noToken.Text, expiredAnswer.Text, without.Text, guestAnswer.Text, "allowed", other));
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Empty(others.Keys.Except(rows.Select(r => $"{r.Method} {r.Path}")));   // every declared case was exercised

        var doc = Render(rows);
        var file = Path.Combine(RepositoryRoot(), "docs", "permissions.md");
        if (Environment.GetEnvironmentVariable("PARLEY_WRITE_PERMISSIONS") == "1") await File.WriteAllTextAsync(file, doc);
        var current = File.Exists(file) ? (await File.ReadAllTextAsync(file)).ReplaceLineEndings("\n") : "";
        Assert.True(current == doc, "docs/permissions.md is out of date. Regenerate it: " +
            "PARLEY_WRITE_PERMISSIONS=1 dotnet test tests/Parley.E2E.Tests -c Release --filter FullyQualifiedName~PermissionMatrix");
    }

    /// <summary>An endpoint's required permissions as one key (they are all required).</summary>
    static string Key(string[] required) => string.Join(" + ", required);

    static void Expect(List<string> failures, string method, string path, string column, (HttpStatusCode Status, string Text, string Message) answer, HttpStatusCode expected)
    {
        if (answer.Status != expected) failures.Add($"{method} {path}, {column}: {answer.Text}, expected {(int)expected}");
    }

    /// <summary>A route pattern with each parameter filled in (the permission check answers before any id is looked up).</summary>
    static string Concrete(string pattern) =>
        System.Text.RegularExpressions.Regex.Replace(pattern, @"\{([^}:?]+)[^}]*\}", m => "matrix-" + m.Groups[1].Value);

    static async Task<(HttpStatusCode Status, string Text, string Message)> CallAsync(ParleyServer server, string method, string path, string? token, object? body = null)
    {
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (token is not null) request.Headers.Authorization = new("Bearer", token);
        if (body is not null) request.Content = JsonContent.Create(body);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        string? code = null, message = null;
        try { var json = JsonNode.Parse(text); (code, message) = ((string?)json?["code"], (string?)json?["message"]); } catch (Exception) { }
        return (response.StatusCode, code is null ? $"{(int)response.StatusCode}" : $"{(int)response.StatusCode} `{code}`", message ?? "");
    }

    static string Render(List<Row> rows)
    {
        var b = new StringBuilder();
        b.Append("""
            # Permission matrix

            <!-- Generated by tests/Parley.E2E.Tests/PermissionMatrixTests.cs from the running server; do not edit by hand. -->
            <!-- Regenerate: PARLEY_WRITE_PERMISSIONS=1 dotnet test tests/Parley.E2E.Tests -c Release --filter FullyQualifiedName~PermissionMatrix -->

            Every Platform API endpoint Parley maps, the permission it requires, and what it answers to each kind of caller.
            The list comes from the running app's endpoint data source, so an endpoint added anywhere appears here (and the test
            fails until this file is regenerated, or if the endpoint declares no permission). Every cell below was answered
            over a real socket by a running server; the test asserts the rule of each column and that this file is current.

            Columns:

            - **No token**: no `Authorization` header. Always 401 `authentication.required`.
            - **Expired**: a correctly signed access token past its `exp`. Always 401 `credentials.expired`.
            - **Without the permission**: a client holding every permission except the endpoint's. Always 403 `missing.permissions`,
              naming the permission. Where an endpoint requires several (all of them), each is left out in turn: always 403, naming
              the one left out.
            - **Guest token**: a guest JWT from the Guest API's `getJwt`. Always 401: guest and Platform tokens are apart (different audience).
            - **With it**: a client holding only the endpoint's permission (or permissions) gets past the check (the answer is then the endpoint's own:
              404 for an unknown id, 400 for a missing body, and so on).
            - **Another client's resource**: where a resource belongs to one OAuth client, the answer when another client with the
              permission asks for it. Notification channels are their creator's (404 to anyone else, as if absent). An OAuth client
              can be read by any holder of `oauth:client:view`, but changed, deleted or given a new secret only by a caller holding
              every permission it holds (otherwise taking its secret would be a way to gain them); a user likewise, by a caller
              holding every permission of the user's roles (docs/users.md). Conversations, deployments,
              integrations, deliveries and audits belong to the organisation, not to one client: any client holding the
              permission reaches them, as on the platform ("n/a").

            A token is also refused (401 `bad.credentials`) once its client is deleted or has had its secret regenerated, when its
            signing key has retired, and when it names a client that does not exist: see [oauth.md](oauth.md).

            Not Platform API, so not in the table: `POST /oauth/token` (client credentials, [oauth.md](oauth.md)), the guest socket
            `/v1`, the notification channel socket `/channels/{id}` (the channel id is the credential), `GET /healthz`, `/readyz` and `/health` ([health.md](health.md)),
            `GET /webdeployments/v1/deployments/{id}/config.json` (public, as the platform's CDN file), and:

            """);
        foreach (var (endpoint, why) in NotPlatform.OrderBy(p => p.Key, StringComparer.Ordinal)) b.Append($"- `{endpoint}`: {why}\n");
        b.Append("""

            | Method | Path | Permission | No token | Expired | Without the permission | Guest token | With it | Another client's resource |
            |---|---|---|---|---|---|---|---|---|

            """);
        foreach (var r in rows)
            b.Append($"| {r.Method} | `{r.Path}` | {r.Permission} | {r.NoToken} | {r.Expired} | {r.Without} | {r.Guest} | {r.WithPermission} | {r.OtherClient} |\n");
        return b.ToString();
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parley.slnx"))) return dir.FullName;
        throw new InvalidOperationException("Parley.slnx not found above " + AppContext.BaseDirectory);
    }

    sealed class PastClock(TimeSpan ago) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() - ago;
    }
}
