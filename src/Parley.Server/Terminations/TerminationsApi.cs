using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Terminations;

/// <summary>
/// Bulk terminations (docs/ending-sessions.md "Bulk terminations"): <c>POST /api/v2/parley/terminations</c> ends every live
/// conversation a filter selects, answering <c>200</c> with the final counts when it selects few
/// (<see cref="ParleyOptions.TerminationAnswerAtOnceMax"/>), else <c>202</c> and a job read back by id. Every run is
/// stored (so any node answers for it, and the listing shows them all).
/// </summary>
public static class TerminationsApi
{
    public const string Path = "/api/v2/parley/terminations";

    public static IServiceCollection AddTerminations(this IServiceCollection services)
    {
        services.AddSingleton<BulkTerminator>();
        services.AddSingleton<BulkTerminationJobs>();
        services.AddHostedService(sp => sp.GetRequiredService<BulkTerminationJobs>());
        return services;
    }

    public static void MapTerminations(this IEndpointRouteBuilder app)
    {
        var api = app.MapPlatformGroup("/parley", "Parley: terminations");
        api.MapPost("/terminations", StartAsync).RequirePermission(Permissions.ConversationDisconnect)
            .Accepts<BulkTerminationRequest>("application/json").Produces<BulkTerminationWire>(202).Errors(400, 413, 415);
        api.MapGet("/terminations", ListAsync).RequirePermission(Permissions.ConversationDisconnect).Errors(400);
        api.MapGet("/terminations/{terminationId}", GetAsync).RequirePermission(Permissions.ConversationDisconnect).Errors(404);
    }

    /// <summary>What a bulk request's body must have before its filter is read; the start and its dry run refuse alike.</summary>
    internal static ApiError? Refusal(BulkTerminationRequest body)
    {
        if (body.Filter is null)
            return ApiError.BadRequest("The field 'filter' is required: name the conversations to end (deploymentId, integrationId, queueId, " +
                "startedBefore, startedAfter, campaign, customerId, startedBy).", "filter");
        if (body.Reason is { Length: > ParleyOptions.MaxTerminationReasonLength })
            return ApiError.BadRequest($"The field 'reason' may be at most {ParleyOptions.MaxTerminationReasonLength} characters.", "reason");
        return null;
    }

    static async Task<Results<WireJson<BulkTerminationWire>, WireAccepted<BulkTerminationWire>, ApiError>> StartAsync(HttpContext http,
        IDirectoryStore directory, BulkTerminationJobs jobs, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.BulkTerminationRequest);
        if (error is not null) return error;
        if (Refusal(body!) is { } bad) return bad;
        var filter = body!.Filter!;
        var (live, refused) = await ToLiveFilterAsync(filter, directory, ct);
        if (refused is not null) return refused;

        var job = await jobs.StartAsync(filter, live!, body.Reason, http.Caller().Actor, ct);
        return job.State == TerminationJobStates.Pending
            ? PlatformResults.Accepted(ToWire(job), ParleyJson.Wire.BulkTerminationWire)
            : PlatformResults.Json(ToWire(job), ParleyJson.Wire.BulkTerminationWire);
    }

    static async Task<Results<WireJson<BulkTerminationWire>, ApiError>> GetAsync(string terminationId, ITerminationJobStore store, CancellationToken ct) =>
        await store.GetAsync(terminationId, ct) is { } job
            ? PlatformResults.Json(ToWire(job), ParleyJson.Wire.BulkTerminationWire)
            : ApiError.NotFound("termination", terminationId);

    static async Task<Results<WireJson<EntityListing<BulkTerminationWire>>, ApiError>> ListAsync(int? pageSize, int? pageNumber,
        ITerminationJobStore store, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await store.ListAsync(size, number, ct);
        return PlatformResults.Json(PlatformRequest.Listing(page.Entities.Select(ToWire).ToList(), Path, size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingBulkTerminationWire);
    }

    /// <summary>Longest id a filter field may carry (ids are GUIDs; customer ids are channel addresses).</summary>
    const int MaxIdLength = 256;

    /// <summary>
    /// The request's filter as the store's, or the 400 that names the field: an empty filter, an empty or overlong value,
    /// a malformed time, an empty window, a deployment, integration or queue that does not exist. Never "end everything".
    /// </summary>
    public static async Task<(LiveFilter? Filter, ApiError? Error)> ToLiveFilterAsync(TerminationFilter f, IDirectoryStore directory, CancellationToken ct)
    {
        string[] names = ["deploymentId", "integrationId", "queueId", "startedBefore", "startedAfter", "campaign", "customerId", "startedBy"];
        string?[] values = [f.DeploymentId, f.IntegrationId, f.QueueId, f.StartedBefore, f.StartedAfter, f.Campaign, f.CustomerId, f.StartedBy];
        if (values.All(v => v is null))
            return (null, ApiError.BadRequest("The filter is empty: set at least one of deploymentId, integrationId, queueId, startedBefore, " +
                "startedAfter, campaign, customerId, startedBy. A bulk termination never ends every conversation.", "filter"));
        for (var i = 0; i < names.Length; i++)
        {
            var max = names[i] == "campaign" ? ParleyOptions.MaxCampaignLength : MaxIdLength;
            if (values[i] is { } v && (v.Trim().Length == 0 || v.Length > max))
                return (null, ApiError.BadRequest($"The filter field '{names[i]}' must be 1 to {max} characters (not blank); leave it out to not filter on it.",
                    "filter." + names[i]));
        }
        if (f.DeploymentId is not null && f.IntegrationId is not null)
            return (null, ApiError.BadRequest("Set deploymentId or integrationId, not both: a conversation lives on one of them.", "filter.integrationId"));

        DateTimeOffset? before = null, after = null;
        if (f.StartedBefore is { } b && (before = Time(b)) is null)
            return (null, ApiError.BadRequest($"The filter field 'startedBefore' is not an ISO-8601 time such as 2026-12-01T09:00:00.000Z: '{ApiError.Clip(b)}'.", "filter.startedBefore"));
        if (f.StartedAfter is { } a && (after = Time(a)) is null)
            return (null, ApiError.BadRequest($"The filter field 'startedAfter' is not an ISO-8601 time such as 2026-12-01T09:00:00.000Z: '{ApiError.Clip(a)}'.", "filter.startedAfter"));
        if (before is { } x && after is { } y && y >= x)
            return (null, ApiError.BadRequest("The filter's startedAfter must be earlier than its startedBefore (both are exclusive).", "filter.startedAfter"));

        if (f.DeploymentId is { } deployment && await directory.GetDeploymentAsync(deployment, ct) is null)
            return (null, ApiError.BadRequest($"The filter's deploymentId {ApiError.Clip(deployment)} is not a deployment.", "filter.deploymentId"));
        if (f.IntegrationId is { } integration && await directory.GetIntegrationAsync(integration, ct) is null)
            return (null, ApiError.BadRequest($"The filter's integrationId {ApiError.Clip(integration)} is not an open messaging integration.", "filter.integrationId"));
        if (f.QueueId is { } queue && await directory.GetQueueAsync(queue, ct) is null)
            return (null, ApiError.BadRequest($"The filter's queueId {ApiError.Clip(queue)} is not a queue.", "filter.queueId"));

        return (new LiveFilter(
            ChannelId: f.DeploymentId ?? f.IntegrationId,
            Channel: f.DeploymentId is not null ? ChannelKind.WebMessaging : f.IntegrationId is not null ? ChannelKind.Open : null,
            QueueId: f.QueueId, StartedBefore: before, StartedAfter: after, Campaign: f.Campaign, CustomerId: f.CustomerId, StartedBy: f.StartedBy), null);
    }

    /// <summary>An ISO-8601 time with its offset (or Z); a time without one is taken as UTC, as the platform's interval parameters are.</summary>
    static DateTimeOffset? Time(string s) =>
        DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
        && s.Contains('T') ? t : null;

    public static BulkTerminationWire ToWire(TerminationJob j) => new()
    {
        Id = j.Id,
        State = j.State,
        Filter = JsonSerializer.Deserialize(j.Filter, ParleyJson.Wire.TerminationFilter),
        Reason = j.Reason,
        Matched = j.Counts.Matched,
        Ended = j.Counts.Ended,
        AlreadyEnded = j.Counts.AlreadyEnded,
        Failed = j.Counts.Failed,
        SocketsNotified = j.Counts.SocketsNotified,
        ChannelsNotified = j.Counts.ChannelsNotified,
        ErrorMessage = j.ErrorMessage,
        // The caller: the user when a user's token made the call, else the OAuth client.
        CreatedBy = j.CreatedBy.UserId is { } user
            ? new AddressableRef(user, j.CreatedBy.UserName, $"/api/v2/users/{user}")
            : new AddressableRef(j.CreatedBy.ClientId, SelfUri: $"/api/v2/oauth/clients/{j.CreatedBy.ClientId}"),
        DateCreated = Wire.Time(j.CreatedAt),
        DateCompleted = Wire.Time(j.CompletedAt),
        SelfUri = $"{Path}/{j.Id}",
    };
}
