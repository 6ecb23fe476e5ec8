using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Parley.Server.OAuth;

namespace Parley.E2E.Tests;

/// <summary>
/// The published contract: the OpenAPI document a running server serves is valid OpenAPI 3 (read and validated by the
/// reference library, Microsoft.OpenApi), lists every Platform endpoint the server maps with its permission and security
/// requirement, and the reference page loads with its scripts from the server itself.
/// </summary>
public sealed class OpenApiTests
{
    [Fact]
    public async Task Document_IsValidOpenApi3_AndDescribesEveryPlatformEndpoint()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.GetAsync("/openapi/v1.json");   // public, like the platform's published document
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();

        var read = OpenApiDocument.Parse(text, "json");
        Assert.True(read.Diagnostic?.Errors.Count is null or 0, "read: " + string.Join("; ", read.Diagnostic!.Errors.Select(e => e.ToString())));
        Assert.Equal(OpenApiSpecVersion.OpenApi3_0, read.Diagnostic!.SpecificationVersion);
        var errors = read.Document!.Validate(ValidationRuleSet.GetDefaultRuleSet())?.ToList() ?? [];
        Assert.True(errors.Count == 0, "validation: " + string.Join("; ", errors.Select(e => $"{e.Pointer}: {e.Message}")));

        var doc = JsonNode.Parse(text)!;
        var schemes = doc["components"]!["securitySchemes"]!;
        Assert.Equal("/oauth/token", (string?)schemes["oauth"]!["flows"]!["clientCredentials"]!["tokenUrl"]);
        Assert.Equal("/oauth/authorize", (string?)schemes["oauth"]!["flows"]!["authorizationCode"]!["authorizationUrl"]);
        Assert.Equal("bearer", (string?)schemes["bearer"]!["scheme"]);
        var schemas = doc["components"]!["schemas"]!.AsObject();
        var errorBody = schemas["ErrorBody"]!["properties"]!.AsObject();
        foreach (var field in new[] { "message", "code", "status", "contextId", "details", "errors" }) Assert.True(errorBody.ContainsKey(field), field);

        // Every Platform endpoint the running app maps (read from its endpoint data source, as the permission matrix does).
        var endpoints = server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Endpoint: e, Permissions: e.Metadata.GetOrderedMetadata<RequiredPermission>().Select(r => r.Permission).ToArray()))
            .Where(e => e.Permissions.Length > 0)
            .SelectMany(e => e.Endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()!.HttpMethods
                .Select(m => (Method: m.ToLowerInvariant(), Path: e.Endpoint.RoutePattern.RawText!, e.Permissions)))
            .ToList();
        Assert.True(endpoints.Count > 30, $"only {endpoints.Count} endpoints");
        var paths = doc["paths"]!.AsObject();
        var ids = new List<string>();
        foreach (var (method, path, permissions) in endpoints)
        {
            var operation = paths[path]?[method];
            Assert.True(operation is not null, $"{method} {path} is not in the document");
            var where = $"{method} {path}";
            ids.Add((string?)operation["operationId"] ?? throw new Xunit.Sdk.XunitException(where + ": no operationId"));
            // One permission: ANY of it; several (a policy endpoint that also ends or lists conversations): ALL of them.
            var requires = operation["x-inin-requires-permissions"]!;
            Assert.Equal(permissions, requires["permissions"]!.AsArray().Select(p => (string)p!));
            Assert.Equal(permissions.Length == 1 ? "ANY" : "ALL", (string?)requires["type"]);
            var security = operation["security"]!.AsArray().Select(r => r!.AsObject().Single().Key).ToList();
            Assert.True(security.SequenceEqual(["oauth", "bearer"]), $"{where}: security {string.Join(",", security)}");
            foreach (var status in new[] { "401", "403" })
                Assert.True((string?)operation["responses"]![status]?["content"]?["application/json"]?["schema"]?["$ref"] == "#/components/schemas/ErrorBody",
                    $"{where}: {status} is not the platform's error body");
            Assert.True(operation["responses"]!.AsObject().Any(r => r.Key.StartsWith('2')), $"{where}: no success response");
        }
        Assert.Equal(ids.Count, ids.Distinct().Count());
        // Only the Platform API: the guest history (guest JWT) and the endpoints that do not exist are not in it.
        // And the endpoints any caller may use (GET /api/v2/users/me): in it with their security, without a permission.
        var open = server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<AnyCaller>() is not null).Select(e => e.RoutePattern.RawText!).ToList();
        Assert.Equal(["/api/v2/users/me"], open);
        var me = paths["/api/v2/users/me"]?["get"];
        Assert.True(me is not null, "GET /api/v2/users/me is not in the document");
        ids.Add((string)me["operationId"]!);
        Assert.Null(me["x-inin-requires-permissions"]);
        Assert.True(me["security"]!.AsArray().Select(r => r!.AsObject().Single().Key).SequenceEqual(["oauth", "bearer"]));
        Assert.Equal("#/components/schemas/ErrorBody", (string?)me["responses"]!["401"]!["content"]!["application/json"]!["schema"]!["$ref"]);
        Assert.Equal("#/components/schemas/UserWire", (string?)me["responses"]!["200"]!["content"]!["application/json"]!["schema"]!["$ref"]);
        Assert.Equal(endpoints.Select(e => e.Path).Concat(open).Distinct().Count(), paths.Count);
        Assert.Null(paths["/api/v2/webmessaging/messages"]);

        // The official SDK's method names.
        foreach (var official in new[] { "getConversationsMessage", "getConversationsMessages", "postConversationsMessagesAgentless",
                     "postAnalyticsConversationsDetailsQuery", "getAnalyticsConversationDetails", "patchConversationsMessageParticipant",
                     "patchConversationParticipant", "postConversationDisconnect", "postConversationsMessageCommunicationMessages",
                     "getOauthClients", "postOauthClientSecret", "getNotificationsAvailabletopics", "postNotificationsChannels",
                     "getRoutingQueues", "getRoutingQueue", "getUsersMe",
                     "getConversationsMessagingIntegrationsOpenIntegrationId", "postConversationsMessageInboundOpenMessage" })
            Assert.Contains(official, ids);

        // Request and response bodies are the protocol library's types.
        var get = paths["/api/v2/conversations/messages/{conversationId}"]!["get"]!;
        Assert.Equal("#/components/schemas/MessageConversation", (string?)get["responses"]!["200"]!["content"]!["application/json"]!["schema"]!["$ref"]);
        Assert.Equal("#/components/schemas/ErrorBody", (string?)get["responses"]!["404"]!["content"]!["application/json"]!["schema"]!["$ref"]);
        var agentless = paths["/api/v2/conversations/messages/agentless"]!["post"]!;
        Assert.Equal("#/components/schemas/AgentlessRequest", (string?)agentless["requestBody"]!["content"]!["application/json"]!["schema"]!["$ref"]);
        Assert.True(schemas["AgentlessRequest"]!["properties"]!.AsObject().ContainsKey("toAddressMessengerType"));
        Assert.True(schemas["MessageConversation"]!["properties"]!.AsObject().ContainsKey("participants"));

        // The areas mapped after the conversations declare their answers too: queues, users, channels and topics.
        string? Schema(string path, string method, string status = "200") =>
            (string?)paths[path]![method]!["responses"]![status]?["content"]?["application/json"]?["schema"]?["$ref"];
        Assert.Equal("#/components/schemas/QueueWire", Schema("/api/v2/routing/queues/{queueId}", "get"));
        Assert.Equal("#/components/schemas/ErrorBody", Schema("/api/v2/routing/queues/{queueId}", "get", "404"));
        Assert.StartsWith("#/components/schemas/EntityListingOf", Schema("/api/v2/routing/queues", "get"));
        Assert.Equal("#/components/schemas/QueueWire", Schema("/api/v2/routing/queues", "post"));
        Assert.Equal("#/components/schemas/UserWire", Schema("/api/v2/users/{userId}", "get"));
        Assert.Equal("#/components/schemas/ChannelWire", Schema("/api/v2/notifications/channels", "post"));
        Assert.StartsWith("#/components/schemas/EntitiesWireOf", Schema("/api/v2/notifications/availabletopics", "get"));
        foreach (var tag in new[] { "Routing", "Users", "Notifications" })
            Assert.Contains(doc["tags"]!.AsArray(), t => (string?)t!["name"] == tag);
    }

    [Fact]
    public async Task ReferencePage_LoadsItsScriptsFromTheServer_WithNoExternalAddress()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

        var index = await http.GetStringAsync("/");
        Assert.Contains("href=\"/api-docs/\"", index);
        Assert.Contains("href=\"/openapi/v1.json\"", index);

        using var page = await http.GetAsync("/api-docs/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotMatch(new Regex(@"(https?:)?//[a-z0-9]", RegexOptions.IgnoreCase), html);   // no CDN, no fonts from elsewhere
        Assert.Contains("\"telemetry\":false", html);
        Assert.Contains("openapi/v1.json", html);

        var scripts = Regex.Matches(html, "<script[^>]*src=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(scripts);
        foreach (var script in scripts)
        {
            using var js = await http.GetAsync(new Uri(new Uri(server.BaseAddress, "/api-docs/"), script));
            Assert.True(js.StatusCode == HttpStatusCode.OK, $"{script}: {(int)js.StatusCode}");
            Assert.Contains("javascript", js.Content.Headers.ContentType?.MediaType);
            Assert.True((await js.Content.ReadAsByteArrayAsync()).Length > 1000, script);
        }
    }
}
