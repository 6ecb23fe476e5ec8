using Microsoft.AspNetCore.Http.HttpResults;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Platform;

/// <summary>
/// Routing queues (docs/compatibility.md §Queues): the platform's <c>GET /api/v2/routing/queues</c>, <c>GET …/{queueId}</c>
/// and <c>POST /api/v2/routing/queues</c>, in its shapes (<c>QueueEntityListing</c>, <c>Queue</c>). Every deployment and
/// Open Messaging integration routes to a queue; the demo queue is created at start beside the demo deployment.
/// </summary>
public static class RoutingApi
{
    const string QueuesPath = "/api/v2/routing/queues";
    public const string DemoQueueName = "Parley demo queue";
    /// <summary>The most queue ids one listing may name (<c>id=a&amp;id=b…</c>).</summary>
    const int MaxIds = 100;

    public static void MapRoutingApi(this IEndpointRouteBuilder app)
    {
        var routing = app.MapPlatformGroup("/routing", "Routing");
        routing.MapGet("/queues", ListAsync).RequirePermission(Permissions.RoutingQueueView).Errors(400);
        routing.MapGet("/queues/{queueId}", GetAsync).RequirePermission(Permissions.RoutingQueueView).Errors(404);
        routing.MapPost("/queues", CreateAsync).RequirePermission(Permissions.RoutingQueueAdd)
            .Accepts<QueueWire>("application/json").Errors(400, 409, 413, 415);
    }

    public static QueueWire ToWire(Queue q) => new()
    {
        Id = q.Id, Name = q.Name, Description = q.Description,
        DateCreated = Wire.Time(q.DateCreated), DateModified = Wire.Time(q.DateModified),
        CreatedBy = q.CreatedBy, ModifiedBy = q.ModifiedBy,
        MemberCount = 0, UserMemberCount = 0, JoinedMemberCount = 0,
        SelfUri = PlatformWire.QueueUri(q.Id),
    };

    /// <summary>
    /// A page of queues sorted by name. <c>name</c> matches the whole name, ignoring case; a leading or trailing <c>*</c>
    /// (or both) makes it a suffix, prefix or substring match, as the platform's SDK documents it.
    /// </summary>
    static async Task<Results<WireJson<EntityListing<QueueWire>>, ApiError>> ListAsync(HttpContext http, int? pageSize, int? pageNumber, string? sortOrder, string? name,
        IDirectoryStore directory, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number, maxSize: 500) is { } bad) return bad;
        var order = sortOrder?.ToLowerInvariant() ?? "asc";
        if (order is not ("asc" or "desc")) return ApiError.InvalidValue("sortOrder", sortOrder!, "asc, desc");
        if (name is { Length: > Queue.MaxNameLength + 2 })
            return ApiError.BadRequest($"The parameter 'name' may be at most {Queue.MaxNameLength} characters (plus a leading and a trailing '*').", "name");
        // Repeated (id=a&id=b) or comma-separated (id=a,b: how the official JS SDK sends a list).
        var ids = http.Request.Query["id"].SelectMany(i => (i ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct().ToList();
        if (ids.Count > MaxIds) return ApiError.BadRequest($"At most {MaxIds} queue ids may be given; {ids.Count} were.", "id");
        var page = await directory.ListQueuesAsync(new QueueFilter(string.IsNullOrEmpty(name) ? null : name, ids.Count == 0 ? null : ids,
            order == "desc", size, number), ct);
        return PlatformResults.Json(PlatformRequest.Listing(page.Entities.Select(ToWire).ToList(), QueuesPath, size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingQueueWire);
    }

    static async Task<Results<WireJson<QueueWire>, ApiError>> GetAsync(string queueId, IDirectoryStore directory, CancellationToken ct) =>
        await directory.GetQueueAsync(queueId, ct) is { } q
            ? PlatformResults.Json(ToWire(q), ParleyJson.Wire.QueueWire)
            : ApiError.NotFound("queue", queueId);

    /// <summary>
    /// Creates a queue from <c>name</c> (required, unique ignoring case) and <c>description</c>; the platform's other
    /// settings (media, routing rules, members…) mean nothing here and are not read.
    /// </summary>
    static async Task<Results<WireJson<QueueWire>, ApiError>> CreateAsync(HttpContext http, IDirectoryStore directory, TimeProvider clock, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.QueueWire);
        if (error is not null) return error;
        var name = body!.Name?.Trim();
        if (string.IsNullOrEmpty(name)) return ApiError.BadRequest("The field 'name' is required.", "name");
        if (name.Length > Queue.MaxNameLength) return ApiError.BadRequest($"The field 'name' may be at most {Queue.MaxNameLength} characters.", "name");
        if (name.Contains('*')) return ApiError.InvalidValue("name", name, "a name without '*' (the listing's name filter uses it as a wildcard)");
        if (body.Description is { Length: > Queue.MaxDescriptionLength })
            return ApiError.BadRequest($"The field 'description' may be at most {Queue.MaxDescriptionLength} characters.", "description");
        // Checked, then written: two creates racing with one name can both pass (each write is one statement, last writer wins).
        if ((await directory.ListQueuesAsync(new QueueFilter(name, PageSize: 1), ct)).Total > 0)
            return ApiError.Conflict("queue.name.exists", $"A queue named '{ApiError.Clip(name)}' already exists; queue names are unique, ignoring case.");
        var now = clock.GetUtcNow();
        // Who made it: the user when a user's token made the call (as the Platform records a user id), else the client.
        var caller = http.Caller() is var c && c.UserId is { } userId ? userId : http.Caller().ClientId;
        var queue = new Queue(Guid.NewGuid().ToString(), name, string.IsNullOrWhiteSpace(body.Description) ? null : body.Description, now, now, caller, caller);
        await directory.UpsertQueueAsync(queue, ct);
        return PlatformResults.Json(ToWire(queue), ParleyJson.Wire.QueueWire);
    }

    /// <summary>
    /// The queue a deployment or integration being saved routes to: the one named (refused with 400 when there is no such
    /// queue), else <paramref name="current"/> (an update that leaves it out), else the demo queue.
    /// </summary>
    public static async Task<(string? QueueId, ApiError? Error)> RouteAsync(IDirectoryStore directory, string? requested, string? current,
        ParleyOptions options, CancellationToken ct)
    {
        if (requested is null) return (current ?? options.DemoQueueId, null);
        if (requested.Length == 0 || await directory.GetQueueAsync(requested, ct) is null)
            return (null, new ApiError(400, "bad.request",
                $"The field 'queueId' names no queue: '{ApiError.Clip(requested)}'. GET {QueuesPath} lists the queues; POST {QueuesPath} creates one.", "queueId"));
        return (requested, null);
    }

    /// <summary>The demo queue, created on first start at its configured id (<see cref="ParleyOptions.DemoQueueId"/>).</summary>
    public static async Task SeedDemoQueueAsync(IDirectoryStore directory, ParleyOptions o, TimeProvider clock)
    {
        if (await directory.GetQueueAsync(o.DemoQueueId, default) is not null) return;
        var now = clock.GetUtcNow();
        await directory.UpsertQueueAsync(new Queue(o.DemoQueueId, DemoQueueName, "Where the demo deployment routes its conversations; created at start.",
            now, now, "parley", "parley"), default);
    }

    /// <summary>
    /// The demo deployment routes to the demo queue when the demo queue id is configured (re-applied at every start, as
    /// the other demo settings are), or when its own queue no longer exists; otherwise it keeps the queue it was given.
    /// </summary>
    public static async Task<Deployment> DemoDeploymentRouteAsync(IDirectoryStore directory, Deployment demo, ParleyOptions o) =>
        demo.QueueId != o.DemoQueueId && (o.DemoQueueIdConfigured || await directory.GetQueueAsync(demo.QueueId, default) is null)
            ? demo with { QueueId = o.DemoQueueId }
            : demo;
}
