using System.Text.Json;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.GuestApi;

/// <summary>
/// Guest REST (docs/compatibility.md §Guest REST): the history of the guest's current conversation with the JWT from <c>getJwt</c>, newest
/// first; and the deployment's <c>config.json</c>, which the official clients read before they connect.
/// </summary>
public static class GuestHistoryApi
{
    public const string CorsPolicy = "guest";

    public static void MapGuestRest(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v2/webmessaging/messages", HistoryAsync).RequireCors(CorsPolicy);
        app.MapGet("/webdeployments/v1/deployments/{deploymentId}/config.json", ConfigAsync).RequireCors(CorsPolicy);
    }

    static async Task<IResult> HistoryAsync(HttpContext http, Tokens tokens, IGuestSessionStore sessions, IConversationStore store,
        Conversations conversations, int? pageSize, int? pageNumber, CancellationToken ct)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return ApiError.AuthenticationRequired;
        switch (tokens.CheckGuestJwt(header[7..].Trim(), out var guest))
        {
            case TokenCheck.Expired: return ApiError.CredentialsExpired;
            case TokenCheck.Invalid: return ApiError.BadCredentials;
        }
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;

        // A session the guest cleared (or is clearing) opens nothing, from the moment the Clear was taken.
        if (conversations.IsClearing(guest!.SessionId)) return ApiError.BadCredentials;
        var session = await sessions.GetAsync(guest.SessionId, ct);
        if (session is null || conversations.IsClearing(guest.SessionId)) return ApiError.BadCredentials;
        if (session.ConversationId is not { } cid)
            return Results.Json(new WebMessagingMessageEntityList([], size, number, 0, 0), ParleyJson.Wire.WebMessagingMessageEntityList);
        var page = await store.ListMessagesAsync(cid, size, number, ct);
        return Results.Json(
            new WebMessagingMessageEntityList(page.Entities.Select(GuestFrames.ToWire).ToList(), size, number, page.Total, page.PageCount),
            ParleyJson.Wire.WebMessagingMessageEntityList);
    }

    static async Task<IResult> ConfigAsync(HttpContext http, string deploymentId, IDirectoryStore directory, CancellationToken ct)
    {
        if (await directory.GetDeploymentAsync(deploymentId, ct) is not { } d) return ApiError.NotFound("deployment", deploymentId);
        var (api, socket) = PublicAddress.Of(http);
        var config = new DeploymentConfig(d.Id, "1", ["en-us"], "en-us", api, "Active",
            new MessengerConfig(true, new() { ["primaryColor"] = "#1f6feb" }, new() { ["visibility"] = "On" },
                new FileUploadConfig([]),
                new AppsConfig(new ConversationsConfig(socket, true, true, new EnabledFlag(false),
                    new ConversationDisconnectConfig(d.DisconnectEnabled, d.DisconnectType == DisconnectMode.Send ? "Send" : "ReadOnly"),
                    new EnabledFlag(d.ClearEnabled), new NotificationsConfig(false, "ExcludeMessagesContent"),
                    new EnabledFlag(false), new EnabledFlag(false)))),
            new EnabledFlag(false), new AuthConfig(false, false));
        return Results.Json(config, ParleyJson.Wire.DeploymentConfig);
    }
}
