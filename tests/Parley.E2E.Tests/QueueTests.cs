using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Parley.Server;
using Parley.Server.OAuth;
using static Parley.E2E.Tests.OAuthHelpers;

namespace Parley.E2E.Tests;

/// <summary>
/// Issue 13 item 1, queues: the demo queue beside the demo deployment, the routing API in the platform's shapes (list with
/// paging, name filter and sort; get; create), its permissions, deployments and integrations that route to a queue (an
/// unknown one refused), and the queue a conversation shows in the Conversations and Analytics APIs. All over HTTP.
/// </summary>
public sealed class QueueTests
{
    const string Queues = "/api/v2/routing/queues";
    const string DemoQueue = ParleyOptions.DefaultQueueId;

    static async Task<JsonNode> CreateQueueAsync(PlatformClient platform, string name, string? description = null)
    {
        var (response, body) = await platform.PostAsync(Queues, new { name, description });
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"create queue: {(int)response.StatusCode} {body?.ToJsonString()}");
        return body!;
    }

    static string[] Names(JsonNode? listing) => [.. listing!["entities"]!.AsArray().Select(q => q!["name"]!.GetValue<string>())];

    static void AssertPlatformError(JsonNode? body, int status, string code)
    {
        Assert.Equal(status, (int)body!["status"]!);
        Assert.Equal(code, (string?)body["code"]);
        Assert.False(string.IsNullOrEmpty((string?)body["message"]));
        Assert.False(string.IsNullOrEmpty((string?)body["contextId"]));
    }

    [Fact]
    public async Task DemoQueue_IsCreatedAtStart_InThePlatformsShape_AndTheDemoDeploymentRoutesToIt()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();

        var (response, queue) = await platform.GetAsync($"{Queues}/{DemoQueue}");
        var (_, deployment) = await platform.GetAsync($"/api/v2/parley/deployments/{ParleyServer.DeploymentId}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(DemoQueue, (string?)queue!["id"]);
        Assert.Equal("Parley demo queue", (string?)queue["name"]);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", (string)queue["dateCreated"]!);
        Assert.Equal(0, (int)queue["memberCount"]!);
        Assert.Equal($"{Queues}/{DemoQueue}", (string?)queue["selfUri"]);
        Assert.Equal(DemoQueue, (string?)deployment!["queueId"]);

        // A restart finds them and creates nothing twice.
        await server.RestartAsync();
        using var again = await server.PlatformAsync();
        var (_, listing) = await again.GetAsync(Queues);
        Assert.Equal(["Parley demo queue"], Names(listing));
    }

    [Fact]
    public async Task AConfiguredDemoQueueId_IsCreated_AndTheDemoDeploymentMovesToIt_WhileAnUnsafeIdRefusesTheStart()
    {
        string? configured = null;
        await using var server = await ParleyServer.StartAsync(o => configured is null ? o : o with { DemoQueueId = configured, DemoQueueIdConfigured = true });
        configured = "team-queue";   // the default demo queue exists; now the same store starts with another id configured
        await server.RestartAsync();
        using var platform = await server.PlatformAsync();

        var (_, deployment) = await platform.GetAsync($"/api/v2/parley/deployments/{ParleyServer.DeploymentId}");
        var (status, queue) = await platform.GetAsync($"{Queues}/team-queue");

        Assert.Equal("team-queue", (string?)deployment!["queueId"]);
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        Assert.Equal("Parley demo queue", (string?)queue!["name"]);

        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Parley:Demo:QueueId"] = "a.b" }).Build();
        var refused = Assert.Throws<StartupRefused>(() => ParleyOptions.FromEnvironment(config));
        Assert.Contains("Parley:Demo:QueueId", refused.Message);
        var legacy = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["PARLEY_DEMO_QUEUE_ID"] = "q-1" }).Build();
        Assert.Equal(("q-1", true), (ParleyOptions.FromEnvironment(legacy).DemoQueueId, ParleyOptions.FromEnvironment(legacy).DemoQueueIdConfigured));
    }

    [Fact]
    public async Task Queues_ArePagedSortedByName_FilteredByName_AndById_AsThePlatformDoes()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var sales = await CreateQueueAsync(platform, "Sales", "Pre-sales questions");
        await CreateQueueAsync(platform, "sales EMEA");
        await CreateQueueAsync(platform, "Support");
        var billing = await CreateQueueAsync(platform, "Billing");

        var (_, first) = await platform.GetAsync($"{Queues}?pageSize=2&pageNumber=1");
        var (_, third) = await platform.GetAsync($"{Queues}?pageSize=2&pageNumber=3");
        var (_, descending) = await platform.GetAsync($"{Queues}?sortOrder=desc");
        var (_, exact) = await platform.GetAsync($"{Queues}?name=SALES");
        var (_, prefix) = await platform.GetAsync($"{Queues}?name=sales*");
        var (_, contains) = await platform.GetAsync($"{Queues}?name=*al*");
        var (_, byId) = await platform.GetAsync($"{Queues}?id={billing["id"]}&id={sales["id"]}");
        var (_, byIdList) = await platform.GetAsync($"{Queues}?id={billing["id"]},{sales["id"]}");   // as the JS SDK sends a list
        var (_, got) = await platform.GetAsync($"{Queues}/{sales["id"]}");

        Assert.Equal(["Billing", "Parley demo queue"], Names(first));
        Assert.Equal((5, 3, 2, 1), ((int)first!["total"]!, (int)first["pageCount"]!, (int)first["pageSize"]!, (int)first["pageNumber"]!));
        Assert.Equal($"{Queues}?pageSize=2&pageNumber=2", (string?)first["nextUri"]);
        Assert.Equal(["Support"], Names(third));
        Assert.Equal(["Support", "sales EMEA", "Sales", "Parley demo queue", "Billing"], Names(descending));
        Assert.Equal(["Sales"], Names(exact));
        Assert.Equal(["Sales", "sales EMEA"], Names(prefix));
        Assert.Equal(["Sales", "sales EMEA"], Names(contains));
        Assert.Equal(["Billing", "Sales"], Names(byId));
        Assert.Equal(["Billing", "Sales"], Names(byIdList));
        Assert.Equal(("Sales", "Pre-sales questions", 0), ((string?)got!["name"], (string?)got["description"], (int)got["memberCount"]!));
        Assert.Equal(DemoId, (string?)got["createdBy"]);
    }

    [Fact]
    public async Task UnknownQueue_BadParameters_AndBadCreates_AreRefused_InThePlatformsErrorForm()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await CreateQueueAsync(platform, "Sales");

        var (missing, missingBody) = await platform.GetAsync($"{Queues}/no-such-queue");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        AssertPlatformError(missingBody, 404, "not.found");
        Assert.Contains("no-such-queue", (string)missingBody!["message"]!);

        var (_, sort) = await platform.GetAsync($"{Queues}?sortOrder=sideways");
        AssertPlatformError(sort, 400, "invalid.value");
        var (_, size) = await platform.GetAsync($"{Queues}?pageSize=501");
        AssertPlatformError(size, 400, "invalid.value");
        var (_, longName) = await platform.GetAsync($"{Queues}?name={new string('n', 5000)}");
        AssertPlatformError(longName, 400, "bad.request");
        Assert.True(((string)longName!["message"]!).Length < 300, "the answer never echoes the unbounded name");

        var (_, noName) = await platform.PostAsync(Queues, new { description = "nameless" });
        AssertPlatformError(noName, 400, "bad.request");
        var (_, duplicate) = await platform.PostAsync(Queues, new { name = " SALES " });
        AssertPlatformError(duplicate, 409, "queue.name.exists");
        var (_, star) = await platform.PostAsync(Queues, new { name = "Sales*" });
        AssertPlatformError(star, 400, "invalid.value");
        var (_, listing) = await platform.GetAsync(Queues);
        Assert.Equal(["Parley demo queue", "Sales"], Names(listing));
    }

    [Fact]
    public async Task ViewingQueues_NeedsRoutingQueueView_AndCreatingOne_RoutingQueueAdd()
    {
        await using var server = await ParleyServer.StartAsync();
        using var admin = await server.PlatformAsync();
        var (viewerId, viewerSecret) = await CreateClientAsync(admin, "viewer", Permissions.RoutingQueueView);
        var (otherId, otherSecret) = await CreateClientAsync(admin, "conversations only", Permissions.ConversationView);
        using var viewer = await AsClientAsync(server, viewerId, viewerSecret);
        using var other = await AsClientAsync(server, otherId, otherSecret);

        var (list, listBody) = await other.GetAsync(Queues);
        var (get, getBody) = await other.GetAsync($"{Queues}/{DemoQueue}");
        var (create, createBody) = await viewer.PostAsync(Queues, new { name = "Not allowed" });
        var (viewed, _) = await viewer.GetAsync($"{Queues}/{DemoQueue}");

        Assert.Equal((HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden), (list.StatusCode, get.StatusCode, create.StatusCode));
        AssertPlatformError(listBody, 403, "missing.permissions");
        Assert.Contains("routing:queue:view", (string)getBody!["message"]!);
        Assert.Contains("routing:queue:add", (string)createBody!["message"]!);
        Assert.Equal(HttpStatusCode.OK, viewed.StatusCode);
        var (_, listing) = await admin.GetAsync(Queues);
        Assert.Equal(["Parley demo queue"], Names(listing));
    }

    [Fact]
    public async Task ADeploymentRoutesToTheQueueItNames_AndItsConversationShowsTheQueue_InConversationsAndAnalytics()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var queueId = (string)(await CreateQueueAsync(platform, "Web sales"))["id"]!;

        var (unknown, unknownBody) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "nowhere", queueId = "no-such-queue" });
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        AssertPlatformError(unknownBody, 400, "bad.request");
        Assert.Equal("queueId", (string?)unknownBody!["details"]![0]!["fieldName"]);
        var (created, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "shop", queueId });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(queueId, (string?)deployment!["queueId"]);
        var (_, unrouted) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "default" });
        Assert.Equal(DemoQueue, (string?)unrouted!["queueId"]);
        var deploymentId = (string)deployment["id"]!;
        var (_, kept) = await platform.SendAsync(HttpMethod.Put, $"/api/v2/parley/deployments/{deploymentId}", new { name = "shop, renamed" });
        Assert.Equal(queueId, (string?)kept!["queueId"]);   // an update that leaves it out keeps the route

        await using var guest = await server.GuestAsync(deploymentId: deploymentId);
        await guest.ConfigureAsync();
        await guest.SendTextAsync("hello, sales?");
        var conversationId = await platform.ConversationOfSessionAsync(await guest.SessionIdAsync());

        var generic = await platform.ConversationAsync(conversationId);
        var (_, messaging) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}");
        var (_, details) = await platform.GetAsync($"/api/v2/analytics/conversations/{conversationId}/details");

        foreach (var p in generic["participants"]!.AsArray())
            Assert.Equal(((string)p!["purpose"]!, (string)p["purpose"]! == "customer" ? null : queueId), ((string)p["purpose"]!, (string?)p["queueId"]));
        foreach (var p in messaging!["participants"]!.AsArray())
        {
            var queue = p!["queue"];
            if ((string)p["purpose"]! == "customer") Assert.Null(queue);
            else Assert.Equal((queueId, $"{Queues}/{queueId}"), ((string?)queue!["id"], (string?)queue["selfUri"]));
        }
        var segments = details!["participants"]!.AsArray().SelectMany(p => p!["sessions"]!.AsArray()).SelectMany(s => s!["segments"]!.AsArray()).ToList();
        Assert.NotEmpty(segments);
        Assert.All(segments, s => Assert.Equal(queueId, (string?)s!["queueId"]));

        async Task<string[]> QueryAsync(string queue)
        {
            var (response, body) = await platform.PostAsync("/api/v2/analytics/conversations/details/query", new
            {
                interval = $"{DateTime.UtcNow.AddHours(-1):yyyy-MM-ddTHH:mm:ss.fffZ}/{DateTime.UtcNow.AddHours(1):yyyy-MM-ddTHH:mm:ss.fffZ}",
                segmentFilters = new[] { new { type = "and", predicates = new[] { new { dimension = "queueId", value = queue } } } },
            });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return [.. (body!["conversations"]?.AsArray() ?? []).Select(c => c!["conversationId"]!.GetValue<string>())];
        }
        Assert.Equal([conversationId], await QueryAsync(queueId));
        Assert.Empty(await QueryAsync(DemoQueue));
    }

    [Fact]
    public async Task AnOpenIntegrationRoutesToTheQueueItNames_AndAPatchReroutesItsNextConversations()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var first = (string)(await CreateQueueAsync(platform, "SMS"))["id"]!;
        var second = (string)(await CreateQueueAsync(platform, "SMS overflow"))["id"]!;
        const string path = "/api/v2/conversations/messaging/integrations/open";
        object Body(string? queueId) => new
        {
            name = "Partner", outboundNotificationWebhookUrl = "https://partner.example/hook",
            outboundNotificationWebhookSignatureSecretToken = "a-secret-of-sixteen-or-more", queueId,
        };

        var (unknown, unknownBody) = await platform.PostAsync(path, Body("no-such-queue"));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal("queueId", (string?)unknownBody!["details"]![0]!["fieldName"]);
        var (_, integration) = await platform.PostAsync(path, Body(first));
        Assert.Equal(first, (string?)integration!["queueId"]);
        var id = (string)integration["id"]!;

        async Task<string> InboundAsync(string from)
        {
            var (response, body) = await platform.PostAsync($"/api/v2/conversations/messages/{id}/inbound/open/message?prefetchConversationId=true", new
            {
                channel = new { messageId = Guid.NewGuid().ToString(), time = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"), from = new { id = from, idType = "Phone" } },
                text = "hi",
            });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return body!["conversationId"]!.GetValue<string>();
        }
        var before = await InboundAsync("+4930111");
        var (badPatch, _) = await platform.PatchAsync($"{path}/{id}", new { queueId = "no-such-queue" });
        Assert.Equal(HttpStatusCode.BadRequest, badPatch.StatusCode);
        var (_, patched) = await platform.PatchAsync($"{path}/{id}", new { queueId = second });
        Assert.Equal(second, (string?)patched!["queueId"]);
        var after = await InboundAsync("+4930222");

        string? Queue(JsonNode c) => (string?)c["participants"]!.AsArray().First(p => (string)p!["purpose"]! != "customer")!["queueId"];
        Assert.Equal(first, Queue(await platform.ConversationAsync(before)));   // a conversation keeps the queue it started on
        Assert.Equal(second, Queue(await platform.ConversationAsync(after)));
    }
}
