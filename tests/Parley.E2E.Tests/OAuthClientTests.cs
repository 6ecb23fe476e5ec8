using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Parley.Core;
using Parley.Server.OAuth;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>Issue 10 item 3: OAuth clients cannot grant more than they hold, and can be listed, changed, rotated and revoked.</summary>
public sealed class OAuthClientTests
{
    [Fact]
    public async Task ClientHoldingOnlyAdd_CannotCreateAStrongerClient()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        var (id, secret) = await CreateClientAsync(admin, "adder", Permissions.OAuthClientAdd);
        using var adder = await AsClientAsync(server, id, secret);

        // The attack as reported: a client holding only oauth:client:add asks for "*".
        var (response, body) = await adder.PostAsync("/api/v2/oauth/clients", new { name = "escalated", permissions = new[] { "*" } });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("missing.permissions", (string?)body!["code"]);
        Assert.EndsWith("missing the following permission(s): *", (string?)body["message"]);

        (response, body) = await adder.PostAsync("/api/v2/oauth/clients",
            new { name = "escalated", permissions = new[] { Permissions.OAuthClientAdd, Permissions.ConversationDisconnect, Permissions.AuditView } });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.EndsWith($"{Permissions.ConversationDisconnect}, {Permissions.AuditView}", (string?)body!["message"]);

        // Nothing was created by the refusals; what it holds itself it may grant.
        var (list, listing) = await admin.GetAsync("/api/v2/oauth/clients?pageSize=100");
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.DoesNotContain(listing!["entities"]!.AsArray(), c => (string?)c!["name"] == "escalated");
        (response, _) = await adder.PostAsync("/api/v2/oauth/clients", new { name = "peer", permissions = new[] { Permissions.OAuthClientAdd } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // Nor may a client with edit rights take over a stronger client by giving it a new secret or new permissions.
        var (editorId, editorSecret) = await CreateClientAsync(admin, "editor", Permissions.OAuthClientEdit, Permissions.OAuthClientView,
            Permissions.OAuthClientDelete);
        using var editor = await AsClientAsync(server, editorId, editorSecret);
        (response, body) = await editor.PostAsync($"/api/v2/oauth/clients/{DemoId}/secret");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.EndsWith(": *", (string?)body!["message"]);
        (response, _) = await editor.SendAsync(HttpMethod.Put, $"/api/v2/oauth/clients/{editorId}",
            new { name = "editor", permissions = new[] { "*" } });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        (response, _) = await editor.SendAsync(HttpMethod.Delete, $"/api/v2/oauth/clients/{DemoId}");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        using var http = From(server);
        await TokenAsync(http, DemoId, DemoSecret);   // the demo client's secret is unchanged
    }

    [Fact]
    public async Task Clients_AreListedReadUpdatedRotatedAndDeleted_AndEachChangeEndsWhatItShould()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        using var http = From(server);
        var (created, body) = await admin.PostAsync("/api/v2/oauth/clients",
            new { name = "bot", description = "the bot", permissions = new[] { Permissions.ConversationView, Permissions.AnalyticsView } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var id = body!["id"]!.GetValue<string>();
        var secret = body["secret"]!.GetValue<string>();

        // The create answer's selfUri resolves, and never shows the secret again.
        var (got, client) = await admin.GetAsync(body["selfUri"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        Assert.Equal("bot", (string?)client!["name"]);
        Assert.Equal("the bot", (string?)client["description"]);
        Assert.Null(client["secret"]);
        Assert.Equal(DemoId, (string?)client["createdBy"]!["id"]);
        var (_, listing) = await admin.GetAsync("/api/v2/oauth/clients");
        Assert.Contains(listing!["entities"]!.AsArray(), c => (string?)c!["id"] == id && c["secret"] is null);

        var token = await TokenAsync(http, id, secret);
        using var bot = Bearer(server, token);
        Assert.Equal(HttpStatusCode.OK, (await bot.GetAsync("/api/v2/conversations/messages")).Response.StatusCode);

        // Update: taking a permission away applies to tokens already issued.
        var (put, updated) = await admin.SendAsync(HttpMethod.Put, $"/api/v2/oauth/clients/{id}",
            new { name = "bot 2", permissions = new[] { Permissions.AnalyticsView } });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("bot 2", (string?)updated!["name"]);
        var (refused, error) = await bot.GetAsync("/api/v2/conversations/messages");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("missing.permissions", (string?)error!["code"]);

        // A new secret: the old secret and every token issued under it stop working at once; the new secret works.
        var (rotated, withSecret) = await admin.PostAsync($"/api/v2/oauth/clients/{id}/secret");
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var newSecret = withSecret!["secret"]!.GetValue<string>();
        Assert.NotEqual(secret, newSecret);
        var (old, oldError) = await bot.GetAsync("/api/v2/analytics/conversations/details?id=x");
        Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
        Assert.Equal("bad.credentials", (string?)oldError!["code"]);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(http, id, secret)).StatusCode);
        var newToken = await TokenAsync(http, id, newSecret);
        using var bot2 = Bearer(server, newToken);
        Assert.Equal(HttpStatusCode.OK, (await bot2.GetAsync("/api/v2/analytics/conversations/details?id=x")).Response.StatusCode);

        // Delete: its tokens and its secret are refused from then on, and it is gone from the listing.
        var (deleted, _) = await admin.SendAsync(HttpMethod.Delete, $"/api/v2/oauth/clients/{id}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bot2.GetAsync("/api/v2/analytics/conversations/details?id=x")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RequestTokenAsync(http, id, newSecret)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/api/v2/oauth/clients/{id}")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.SendAsync(HttpMethod.Delete, $"/api/v2/oauth/clients/{id}")).Response.StatusCode);

        // Every change is in the credential audit, newest first, naming who made it.
        var (_, audit) = await admin.GetAsync($"/api/v2/parley/audit/credentials?entityId={id}");
        var actions = audit!["entities"]!.AsArray().Select(a => (string)a!["action"]!).ToArray();
        Assert.Equal(["ClientDeleted", "ClientSecretRegenerated", "ClientUpdated", "ClientCreated"], actions);
        Assert.All(audit["entities"]!.AsArray(), a => Assert.Equal(DemoId, (string?)a!["client"]!["id"]));

        // The revocation survives a restart (it is in the store, not only in a cache).
        await server.RestartAsync();
        using var bot3 = Bearer(server, newToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bot3.GetAsync("/api/v2/analytics/conversations/details?id=x")).Response.StatusCode);
    }

    [Fact]
    public async Task RevokedClient_LosesItsNotificationChannel()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        var (id, secret) = await CreateClientAsync(admin, "listener", Permissions.ConversationView);
        using var listener = await AsClientAsync(server, id, secret);
        var (_, channel) = await listener.PostAsync("/api/v2/notifications/channels");
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri(channel!["connectUri"]!.GetValue<string>()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        var (deleted, _) = await admin.SendAsync(HttpMethod.Delete, $"/api/v2/oauth/clients/{id}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        // The server drops the socket: the next receive ends (a close or an aborted connection), within the timeout.
        var buffer = new byte[4096];
        var ended = false;
        try
        {
            while (!ended)
            {
                var r = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
                ended = r.MessageType == System.Net.WebSockets.WebSocketMessageType.Close;
            }
        }
        catch (System.Net.WebSockets.WebSocketException) { ended = true; }
        Assert.True(ended);
    }

    [Fact]
    public async Task TokenOfAClientThatDoesNotExist_IsRefused()
    {
        await using var server = await ParleyServer.StartAsync();
        // A correctly signed, unexpired token for a client id the store has never held (as a restored backup or a
        // leaked key would produce): the signature alone does not make a caller.
        var tokens = server.Services.GetRequiredService<Tokens>();
        var (ghost, _) = tokens.IssueAccessToken("no-such-client", ["*"]);
        using var client = Bearer(server, ghost);
        var (response, body) = await client.GetAsync("/api/v2/oauth/clients");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("bad.credentials", (string?)body!["code"]);
    }

    [Fact]
    public async Task NamesAndDescriptions_HaveLengthLimits_AndTheAnswerNamesTheField()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        var longName = new string('n', ClientsApi.MaxNameLength + 1);
        var (response, body) = await admin.PostAsync("/api/v2/oauth/clients", new { name = longName, permissions = Array.Empty<string>() });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("name", (string?)body!["details"]![0]!["fieldName"]);
        Assert.DoesNotContain(longName, body.ToJsonString());

        var longDescription = new string('d', ClientsApi.MaxDescriptionLength + 1);
        (response, body) = await admin.PostAsync("/api/v2/oauth/clients", new { name = "ok", description = longDescription });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("description", (string?)body!["details"]![0]!["fieldName"]);
        Assert.DoesNotContain(longDescription, body.ToJsonString());

        var (id, _) = await CreateClientAsync(admin, "short");
        (response, body) = await admin.SendAsync(HttpMethod.Put, $"/api/v2/oauth/clients/{id}", new { name = longName });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("name", (string?)body!["details"]![0]!["fieldName"]);

        // An unknown permission is named, clipped, never echoed whole.
        var bogus = "x:" + new string('p', 10_000);
        (response, body) = await admin.PostAsync("/api/v2/oauth/clients", new { name = "ok", permissions = new[] { bogus } });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(body!.ToJsonString().Length < 2_000);
    }

    [Fact]
    public async Task SigningKey_RotatesWithoutDowntime()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = From(server);
        var before = await TokenAsync(http, DemoId, DemoSecret);
        Assert.Null(Kid(before));   // the original key
        using var old = Bearer(server, before);

        var (rotated, key) = await old.PostAsync("/api/v2/parley/oauth/signingkeys/rotate");
        Assert.Equal(HttpStatusCode.Created, rotated.StatusCode);
        var kid = key!["kid"]!.GetValue<string>();
        Assert.True((bool)key["signing"]!);
        Assert.Null(key["key"]);

        // Through the overlap the old key's tokens keep working; new tokens are signed with the new key and work too.
        Assert.Equal(HttpStatusCode.OK, (await old.GetAsync("/api/v2/oauth/clients")).Response.StatusCode);
        var after = await TokenAsync(http, DemoId, DemoSecret);
        Assert.Equal(kid, Kid(after));
        using var fresh = Bearer(server, after);
        Assert.Equal(HttpStatusCode.OK, (await fresh.GetAsync("/api/v2/oauth/clients")).Response.StatusCode);
        // Guests too: a new guest JWT is signed with the new key and opens the history endpoint.
        await using (var guest = await server.GuestAsync())
        {
            await guest.ConfigureAsync();
            var jwt = await guest.JwtAsync();
            Assert.Equal(kid, Kid(jwt));
            using var history = new HttpClient { BaseAddress = server.BaseAddress };
            history.DefaultRequestHeaders.Authorization = new("Bearer", jwt);
            Assert.Equal(HttpStatusCode.OK, (await history.GetAsync("/api/v2/webmessaging/messages")).StatusCode);
        }

        var (_, keys) = await fresh.GetAsync("/api/v2/parley/oauth/signingkeys");
        var entities = keys!["entities"]!.AsArray();
        Assert.Equal(2, entities.Count);
        var original = entities.Single(k => (string?)k!["kid"] == SigningKey.OriginalKid)!;
        Assert.False((bool)original["signing"]!);
        Assert.True((bool)original["verifying"]!);
        Assert.NotNull(original["retiresAt"]);

        // The keys are in the store: after a restart both tokens still verify and the new key still signs.
        await server.RestartAsync();
        using var oldAfterRestart = Bearer(server, before);
        using var freshAfterRestart = Bearer(server, after);
        Assert.Equal(HttpStatusCode.OK, (await oldAfterRestart.GetAsync("/api/v2/oauth/clients")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await freshAfterRestart.GetAsync("/api/v2/oauth/clients")).Response.StatusCode);
        using var http2 = From(server);
        Assert.Equal(kid, Kid(await TokenAsync(http2, DemoId, DemoSecret)));

        // A leaked key: rotate with no overlap, and every token signed before stops working at once.
        var (now, _) = await freshAfterRestart.PostAsync("/api/v2/parley/oauth/signingkeys/rotate", new { overlapSeconds = 0 });
        Assert.Equal(HttpStatusCode.Created, now.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await oldAfterRestart.GetAsync("/api/v2/oauth/clients")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await freshAfterRestart.GetAsync("/api/v2/oauth/clients")).Response.StatusCode);
        using var newest = Bearer(server, await TokenAsync(http2, DemoId, DemoSecret));
        var (audit, rows) = await newest.GetAsync("/api/v2/parley/audit/credentials");
        Assert.Equal(HttpStatusCode.OK, audit.StatusCode);
        Assert.Equal(2, rows!["entities"]!.AsArray().Count(a => (string?)a!["action"] == "SigningKeyRotated"));
    }
}
