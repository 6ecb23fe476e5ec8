using System.Net;
using Parley.Server;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>
/// Notification channels belong to the client and the user of the token that made them (docs/notifications.md
/// "Ownership"): two users of the one console client cannot see or touch each other's channels, each has their own cap of
/// 20, and a deleted user's channel is closed.
/// </summary>
public sealed class NotificationOwnershipTests
{
    const string Channels = "/api/v2/notifications/channels";

    static async Task<ParleyServer> StartAsync() =>
        await ParleyServer.StartAsync(o => o with { DemoAdminPassword = "admin-password-for-tests", PasswordIterations = 10_000 });

    static async Task<(string Id, PlatformClient Client)> SupervisorAsync(ParleyServer server, PlatformClient demo, string name)
    {
        var password = "supervisor-password-" + name;
        var (created, user) = await demo.PostAsync("/api/v2/users",
            new { name, email = $"{name}@example.com", password, roles = new[] { "supervisor" } });
        Assert.True(created.StatusCode == HttpStatusCode.OK, user?.ToJsonString());
        return (user!["id"]!.GetValue<string>(), Bearer(server, await LogInAsync(server, $"{name}@example.com", password)));
    }

    /// <summary>A user's token through the console client's code + PKCE flow.</summary>
    static async Task<string> LogInAsync(ParleyServer server, string username, string password)
    {
        using var browser = new LoginBrowser(server);
        var (verifier, challenge) = LoginBrowser.Pkce();
        var redirect = browser.Own("/console/");
        var (response, html) = await browser.LoginAsync(LoginBrowser.Query(("response_type", "code"), ("client_id", ParleyOptions.ConsoleClientId),
            ("redirect_uri", redirect), ("code_challenge", challenge), ("code_challenge_method", "S256")), username, password);
        Assert.True(response.StatusCode == HttpStatusCode.Found, $"login: {(int)response.StatusCode} {html}");
        var (status, body) = await browser.RedeemAsync(ParleyOptions.ConsoleClientId, LoginBrowser.Parameters(response, fragment: false)["code"], redirect, verifier);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        return body!["access_token"]!.GetValue<string>();
    }

    static async Task<List<string>> ListAsync(PlatformClient client, string query = "")
    {
        var (response, body) = await client.GetAsync(Channels + query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. body!["entities"]!.AsArray().Select(c => c!["id"]!.GetValue<string>())];
    }

    [Fact]
    public async Task TwoUsersOfTheConsoleClient_CannotSeeOrTouchEachOthersChannels_AndEachHasTheirOwnCap()
    {
        await using var server = await StartAsync();
        using var demo = await server.PlatformAsync();
        var (_, a) = await SupervisorAsync(server, demo, "alice");
        var (_, b) = await SupervisorAsync(server, demo, "bob");
        using var _a = a;
        using var _b = b;

        var (made, channel) = await a.PostAsync(Channels);
        Assert.Equal(HttpStatusCode.OK, made.StatusCode);
        var mine = channel!["id"]!.GetValue<string>();
        Assert.Equal([mine], await ListAsync(a));
        Assert.Equal([mine], await ListAsync(a, "?includechannels=oauthclient"));   // a user's token sees only its user's, either way

        // B, through the same client: not listed, and every per-channel call is not found.
        Assert.Empty(await ListAsync(b));
        Assert.Empty(await ListAsync(b, "?includechannels=oauthclient"));
        Assert.Equal(HttpStatusCode.NotFound, (await b.SendAsync(HttpMethod.Head, $"{Channels}/{mine}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.GetAsync($"{Channels}/{mine}/subscriptions")).Response.StatusCode);
        var topic = new[] { new { id = $"v2.routing.queues.{ParleyOptions.DefaultQueueId}.conversations" } };
        Assert.Equal(HttpStatusCode.NotFound, (await b.PostAsync($"{Channels}/{mine}/subscriptions", topic)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.SendAsync(HttpMethod.Put, $"{Channels}/{mine}/subscriptions", topic)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.SendAsync(HttpMethod.Delete, $"{Channels}/{mine}/subscriptions")).Response.StatusCode);
        // A still owns it, untouched.
        Assert.Equal(HttpStatusCode.OK, (await a.SendAsync(HttpMethod.Head, $"{Channels}/{mine}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await a.PostAsync($"{Channels}/{mine}/subscriptions", topic)).Response.StatusCode);

        // B's 21 channels evict B's oldest, never A's.
        var bs = new List<string>();
        for (var i = 0; i < 21; i++) bs.Add((await b.PostAsync(Channels)).Body!["id"]!.GetValue<string>());
        Assert.Equal(bs.Skip(1).Order(), (await ListAsync(b)).Order());
        Assert.Equal([mine], await ListAsync(a));

        Assert.Equal(HttpStatusCode.BadRequest, (await a.GetAsync(Channels + "?includechannels=everyone")).Response.StatusCode);
    }

    [Fact]
    public async Task ADeletedUsersChannelSocket_IsClosed_AndAnotherUsersStaysOpen()
    {
        await using var server = await StartAsync();
        using var demo = await server.PlatformAsync();
        var (aliceId, a) = await SupervisorAsync(server, demo, "alice");
        var (_, b) = await SupervisorAsync(server, demo, "bob");
        using var _a = a;
        using var _b = b;
        await using var aliceSocket = await NotificationSocket.OpenAsync(a);
        await using var bobSocket = await NotificationSocket.OpenAsync(b);

        var (deleted, _) = await demo.SendAsync(HttpMethod.Delete, $"/api/v2/users/{aliceId}");
        Assert.True(deleted.IsSuccessStatusCode, deleted.StatusCode.ToString());

        var notice = await aliceSocket.NextAsync(f => (string?)f["topicName"] == "v2.system.socket_closing");
        Assert.Equal("The channel was removed.", (string?)notice["eventBody"]!["message"]);
        Assert.Null(await aliceSocket.ReceiveAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token));
        await bobSocket.PingAsync();
        Assert.Single(await ListAsync(b));
    }

    [Fact]
    public async Task ARolesOrPasswordChange_ClosesTheUsersChannels_ANameChangeDoesNot()
    {
        await using var server = await StartAsync();
        using var demo = await server.PlatformAsync();
        var (aliceId, a) = await SupervisorAsync(server, demo, "alice");
        var (bobId, b) = await SupervisorAsync(server, demo, "bob");
        using var _a = a;
        using var _b = b;
        await using var aliceSocket = await NotificationSocket.OpenAsync(a);
        await using var bobSocket = await NotificationSocket.OpenAsync(b);

        var (renamed, _) = await demo.PatchAsync($"/api/v2/users/{aliceId}", new { name = "Alice Renamed" });
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        await aliceSocket.PingAsync();   // still open: the name is not a credential

        var (promoted, _) = await demo.PatchAsync($"/api/v2/users/{aliceId}", new { roles = new[] { "admin" } });
        Assert.Equal(HttpStatusCode.OK, promoted.StatusCode);
        Assert.Equal("The channel was removed.",
            (string?)(await aliceSocket.NextAsync(f => (string?)f["topicName"] == "v2.system.socket_closing"))["eventBody"]!["message"]);

        var (changed, body) = await demo.PostAsync($"/api/v2/users/{bobId}/password", new { newPassword = "a-new-password-for-bob" });
        Assert.True(changed.IsSuccessStatusCode, body?.ToJsonString());
        Assert.Equal("The channel was removed.",
            (string?)(await bobSocket.NextAsync(f => (string?)f["topicName"] == "v2.system.socket_closing"))["eventBody"]!["message"]);
    }

    [Fact]
    public async Task AClientCredentialsToken_ListsItsChannels_WithEitherIncludechannels()
    {
        await using var server = await StartAsync();
        using var demo = await server.PlatformAsync();
        var (mine, _) = await demo.PostAsync(Channels);
        var own = (await demo.PostAsync(Channels)).Body!["id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, mine.StatusCode);
        Assert.Equal(2, (await ListAsync(demo)).Count);
        Assert.Equal(2, (await ListAsync(demo, "?includechannels=oauthclient")).Count);
        Assert.Equal(HttpStatusCode.OK, (await demo.SendAsync(HttpMethod.Head, $"{Channels}/{own}")).Response.StatusCode);
    }
}
