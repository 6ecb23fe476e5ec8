using System.Collections.Immutable;
using Microsoft.AspNetCore.Http.HttpResults;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.GuestApi;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Platform;

/// <summary>
/// Parley's own administration endpoints (documented in README): web messaging deployments, the guest sessions a bot
/// can reach, and the termination audit. OAuth clients: OAuth/ClientsApi.cs.
/// </summary>
public static class ParleyApi
{
    public static void MapParleyApi(this IEndpointRouteBuilder app)
    {
        const string json = "application/json";
        var deployments = app.MapPlatformGroup("/parley", "Parley: deployments");
        deployments.MapGet("/deployments", ListDeploymentsAsync).RequirePermission(Permissions.DeploymentView).Errors(400);
        deployments.MapGet("/deployments/{deploymentId}", GetDeploymentAsync).RequirePermission(Permissions.DeploymentView).Errors(404);
        deployments.MapPost("/deployments", (HttpContext http, IDirectoryStore d, TimeProvider clock, CancellationToken ct) =>
            SaveDeploymentAsync(http, d, clock, null, ct)).RequirePermission(Permissions.DeploymentAdmin)
            .Accepts<DeploymentWire>(json).Produces<DeploymentWire>(201).Errors(400, 413, 415);
        deployments.MapPut("/deployments/{deploymentId}", (string deploymentId, HttpContext http, IDirectoryStore d, TimeProvider clock,
            CancellationToken ct) => SaveDeploymentAsync(http, d, clock, deploymentId, ct)).RequirePermission(Permissions.DeploymentAdmin)
            .Accepts<DeploymentWire>(json).Produces<DeploymentWire>().Errors(400, 404, 413, 415);
        deployments.MapDelete("/deployments/{deploymentId}", DeleteDeploymentAsync).RequirePermission(Permissions.DeploymentAdmin).Errors(404);

        var parley = app.MapPlatformGroup("/parley", "Parley: sessions and audit");
        parley.MapGet("/webmessaging/sessions", ListSessionsAsync).RequirePermission(Permissions.ConversationView).Errors(400);
        parley.MapGet("/audit/terminations", ListTerminationsAsync).RequirePermission(Permissions.AuditView).Errors(400);
    }

    static DeploymentWire ToWire(Deployment d) => new()
    {
        Id = d.Id, Name = d.Name, AllowedOrigins = [.. d.AllowedOrigins],
        ConversationDisconnect = new ConversationDisconnectConfig(d.DisconnectEnabled, d.DisconnectType.ToString()),
        ConversationClear = new EnabledFlag(d.ClearEnabled), DateCreated = Wire.Time(d.DateCreated),
        InactivityTimeoutSeconds = (int)(d.InactivityTimeout?.TotalSeconds ?? 0),
        GuestMessagesPerSecond = d.GuestMessagesPerSecond, QueueId = d.QueueId,
        SelfUri = $"/api/v2/parley/deployments/{d.Id}",
    };

    static async Task<Results<WireJson<EntityListing<DeploymentWire>>, ApiError>> ListDeploymentsAsync(int? pageSize, int? pageNumber, IDirectoryStore directory, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await directory.ListDeploymentsAsync(size, number, ct);
        return PlatformResults.Json(PlatformRequest.Listing(page.Entities.Select(ToWire).ToList(), "/api/v2/parley/deployments", size, number,
            page.Total, page.PageCount), ParleyJson.Wire.EntityListingDeploymentWire);
    }

    static async Task<Results<WireJson<DeploymentWire>, ApiError>> GetDeploymentAsync(string deploymentId, IDirectoryStore directory,
        CancellationToken ct) =>
        await directory.GetDeploymentAsync(deploymentId, ct) is { } d
            ? PlatformResults.Json(ToWire(d), ParleyJson.Wire.DeploymentWire)
            : ApiError.NotFound("deployment", deploymentId);

    static async Task<IResult> SaveDeploymentAsync(HttpContext http, IDirectoryStore directory, TimeProvider clock, string? id, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.DeploymentWire);
        if (error is not null) return error;
        var b = body!;
        if (string.IsNullOrWhiteSpace(b.Name)) return ApiError.BadRequest("The field 'name' is required.", "name");
        var type = b.ConversationDisconnect?.Type ?? "ReadOnly";
        if (type is not ("ReadOnly" or "Send")) return ApiError.InvalidValue("conversationDisconnect.type", type, "ReadOnly, Send");
        if (b.InactivityTimeoutSeconds is < 0 or > 31_536_000)
            return ApiError.InvalidValue("inactivityTimeoutSeconds", b.InactivityTimeoutSeconds.ToString()!, "0 (never) to 31536000");
        if (b.GuestMessagesPerSecond is < 1 or > Deployment.MaxGuestMessagesPerSecond)
            return ApiError.InvalidValue("guestMessagesPerSecond", b.GuestMessagesPerSecond.ToString()!,
                $"1 to {Deployment.MaxGuestMessagesPerSecond} (absent: the platform's {Deployment.PlatformGuestMessagesPerSecond})");
        var existing = id is null ? null : await directory.GetDeploymentAsync(id, ct);
        if (id is not null && existing is null) return ApiError.NotFound("deployment", id);
        var (queueId, unrouted) = await RoutingApi.RouteAsync(directory, b.QueueId, existing?.QueueId,
            http.RequestServices.GetRequiredService<ParleyOptions>(), ct);
        if (unrouted is not null) return unrouted;
        var d = new Deployment(id ?? Guid.NewGuid().ToString(), b.Name, [.. b.AllowedOrigins ?? ["*"]],
            b.ConversationDisconnect?.Enabled ?? true, Enum.Parse<DisconnectMode>(type), b.ConversationClear?.Enabled ?? true,
            existing?.DateCreated ?? clock.GetUtcNow(),
            b.InactivityTimeoutSeconds is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : null, b.GuestMessagesPerSecond ?? Deployment.PlatformGuestMessagesPerSecond)
        {
            QueueId = queueId!,
        };
        await directory.UpsertDeploymentAsync(d, ct);
        return Results.Json(ToWire(d), ParleyJson.Wire.DeploymentWire, statusCode: id is null ? 201 : 200);
    }

    static async Task<Results<NoContent, ApiError>> DeleteDeploymentAsync(string deploymentId, IDirectoryStore directory, CancellationToken ct) =>
        await directory.DeleteDeploymentAsync(deploymentId, ct) ? TypedResults.NoContent() : ApiError.NotFound("deployment", deploymentId);

    /// <summary>Web guest sessions, paged; <c>customerId</c> filters on the guest's <c>journeyContext.customer.id</c>.</summary>
    static async Task<Results<WireJson<EntityListing<GuestSessionWire>>, ApiError>> ListSessionsAsync(string? deploymentId, string? customerId, int? pageSize, int? pageNumber,
        IGuestSessionStore sessions, IConversationStore store, ISessionBackplane backplane, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await sessions.ListAsync(new SessionFilter(deploymentId, ChannelKind.WebMessaging, customerId), size, number, ct);
        var list = new List<GuestSessionWire>(page.Entities.Count);
        foreach (var s in page.Entities)
        {
            var sockets = await backplane.CountSocketsAsync(s.Id, ct);   // on every node
            var conversation = s.ConversationId is { } cid ? await store.LoadAsync(cid, ct) : null;
            list.Add(new GuestSessionWire(s.Id, s.DeploymentId, conversation is { IsEnded: false } ? conversation.Id : null, sockets > 0,
                sockets, conversation?.IsReadOnlyForGuest ?? false, Wire.Time(s.CreatedAt), s.Address, s.AddressType));
        }
        return PlatformResults.Json(new EntityListing<GuestSessionWire>
        {
            Entities = list, PageSize = size, PageNumber = number, Total = page.Total, PageCount = page.PageCount,
        }, ParleyJson.Wire.EntityListingGuestSessionWire);
    }

    static async Task<Results<WireJson<EntityListing<TerminationAuditWire>>, ApiError>> ListTerminationsAsync(string? conversationId, int? pageSize, int? pageNumber, IAuditLog audit, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await audit.ListAsync(conversationId, size, number, ct);
        return PlatformResults.Json(new EntityListing<TerminationAuditWire>
        {
            Entities = page.Entities.Select(a => new TerminationAuditWire(a.Id, a.ConversationId, a.ParticipantId, a.Lever.ToString(),
                new AddressableRef(a.ClientId), a.Reason, Wire.Time(a.At), a.SocketsNotified,
                $"/api/v2/parley/audit/terminations?conversationId={a.ConversationId}",
                a.UserId is { } user ? new AddressableRef(user, a.UserName, $"/api/v2/users/{user}") : null,
                Terminations.ReceiptReader.UriOf(a.Id))).ToList(),
            PageSize = size, PageNumber = number, Total = page.Total, PageCount = page.PageCount,
        }, ParleyJson.Wire.EntityListingTerminationAuditWire);
    }
}
