using System.Globalization;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Terminations;

/// <summary>
/// Termination policies (docs/ending-sessions.md "Policies"), a Parley extension: CRUD under
/// <c>/api/v2/parley/terminationpolicies</c>, the dry-run preview of a stored or an unsaved policy, and <c>apply</c> (end now
/// what the policy says is due now). <see cref="PolicySweeper"/> applies every enabled policy each sweep period.
/// </summary>
public static class PoliciesApi
{
    const string Root = "/api/v2/parley/terminationpolicies";
    /// <summary>Most entries a preview lists (soonest first); <c>total</c> still counts them all.</summary>
    public const int PreviewMax = 1000;

    public static void MapTerminationPolicies(this IEndpointRouteBuilder app)
    {
        const string json = "application/json";
        var api = app.MapPlatformGroup("/parley", "Parley: termination policies");
        // Creating, changing or applying a policy ends conversations, so each also needs the permission to end them; a preview
        // lists live conversations, so it also needs the permission to see them.
        api.MapGet("/terminationpolicies", ListAsync).RequirePermission(Permissions.TerminationPolicyView)
            .Produces<EntityListing<TerminationPolicyWire>>().Errors(400);
        api.MapPost("/terminationpolicies", CreateAsync).RequirePermission(Permissions.TerminationPolicyEdit, Permissions.ConversationDisconnect)
            .Accepts<TerminationPolicyRequest>(json).Produces<TerminationPolicyWire>(201).Errors(400, 413, 415);
        api.MapGet("/terminationpolicies/{policyId}", GetAsync).RequirePermission(Permissions.TerminationPolicyView)
            .Produces<TerminationPolicyWire>().Errors(404);
        api.MapPut("/terminationpolicies/{policyId}", UpdateAsync).RequirePermission(Permissions.TerminationPolicyEdit, Permissions.ConversationDisconnect)
            .Accepts<TerminationPolicyRequest>(json).Produces<TerminationPolicyWire>().Errors(400, 404, 413, 415);
        api.MapDelete("/terminationpolicies/{policyId}", DeleteAsync).RequirePermission(Permissions.TerminationPolicyEdit)
            .Produces(204).Errors(404);
        api.MapGet("/terminationpolicies/{policyId}/preview", PreviewStoredAsync).RequirePermission(Permissions.TerminationPolicyView, Permissions.ConversationView)
            .Produces<PolicyPreviewWire>().Errors(404);
        api.MapPost("/terminationpolicies/preview", PreviewUnsavedAsync).RequirePermission(Permissions.TerminationPolicyView, Permissions.ConversationView)
            .Accepts<TerminationPolicyRequest>(json).Produces<PolicyPreviewWire>().Errors(400, 413, 415);
        api.MapPost("/terminationpolicies/{policyId}/apply", ApplyAsync).RequirePermission(Permissions.TerminationPolicyEdit, Permissions.ConversationDisconnect)
            .Produces<BulkTerminationWire>().Produces<BulkTerminationWire>(202).Errors(404);
    }

    public static TerminationPolicyWire ToWire(TerminationPolicy p) => new()
    {
        Id = p.Id, Name = p.Name, Type = TypeName(p.Type), Enabled = p.Enabled,
        DeploymentId = p.Channel == ChannelKind.WebMessaging ? p.ChannelId : null,
        IntegrationId = p.Channel == ChannelKind.Open ? p.ChannelId : null,
        MaxDurationSeconds = p.MaxDuration is { } m ? (int)m.TotalSeconds : null,
        Campaign = p.Campaign, StartedBy = p.StartedBy, EndAt = p.EndAt is { } e ? Wire.Time(e) : null,
        CloseAt = p.CloseAt?.ToString("HH:mm", CultureInfo.InvariantCulture), TimeZone = p.TimeZone,
        Days = p.Days.IsDefaultOrEmpty ? null : [.. p.Days.Select(d => d.ToString())],
        Reason = p.Reason, DateCreated = Wire.Time(p.DateCreated), DateModified = Wire.Time(p.DateModified),
        CreatedBy = new AddressableRef(p.CreatedBy), SelfUri = $"{Root}/{p.Id}",
    };

    static string TypeName(PolicyType t) => t switch
    {
        PolicyType.MaxDuration => TerminationPolicyTypes.MaxDuration,
        PolicyType.Campaign => TerminationPolicyTypes.Campaign,
        _ => TerminationPolicyTypes.BusinessHours,
    };

    static async Task<IResult> ListAsync(string? deploymentId, string? integrationId, int? pageSize, int? pageNumber,
        ITerminationPolicyStore policies, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        if (deploymentId is not null && integrationId is not null)
            return ApiError.BadRequest("Give deploymentId or integrationId, not both: a policy belongs to one channel.", "integrationId");
        var all = await policies.ListAsync(deploymentId is not null ? ChannelKind.WebMessaging : integrationId is not null ? ChannelKind.Open : null,
            deploymentId ?? integrationId, ct);
        var page = all.Skip((number - 1) * size).Take(size).Select(ToWire).ToList();
        var listing = PlatformRequest.Listing(page, Root, size, number, all.Count, (all.Count + size - 1) / size);
        return PlatformResults.Json(listing, ParleyJson.Wire.EntityListingTerminationPolicyWire);
    }

    static async Task<IResult> GetAsync(string policyId, ITerminationPolicyStore policies, CancellationToken ct) =>
        await policies.GetAsync(policyId, ct) is { } p
            ? PlatformResults.Json(ToWire(p), ParleyJson.Wire.TerminationPolicyWire)
            : ApiError.NotFound("termination policy", policyId);

    static async Task<IResult> CreateAsync(HttpContext http, ITerminationPolicyStore policies, IDirectoryStore directory, TimeProvider clock,
        CancellationToken ct)
    {
        var (body, error) = await ReadRequestAsync(http);
        if (error is not null) return error;
        var now = clock.GetUtcNow();
        var (policy, invalid) = await ValidateAsync(body!, Guid.CreateVersion7().ToString(), now, now, http.Caller().ClientId, directory, ct);
        if (invalid is not null) return invalid;
        if (!await policies.CreateAsync(policy!, ct)) return ChannelGone(policy!);
        return PlatformResults.Created(ToWire(policy!), ParleyJson.Wire.TerminationPolicyWire);
    }

    static async Task<IResult> UpdateAsync(string policyId, HttpContext http, ITerminationPolicyStore policies, IDirectoryStore directory,
        TimeProvider clock, CancellationToken ct)
    {
        var (body, error) = await ReadRequestAsync(http);
        if (error is not null) return error;
        if (await policies.GetAsync(policyId, ct) is not { } existing) return ApiError.NotFound("termination policy", policyId);
        var (policy, invalid) = await ValidateAsync(body!, existing.Id, existing.DateCreated, clock.GetUtcNow(), existing.CreatedBy, directory, ct);
        if (invalid is not null) return invalid;
        if (!await policies.UpdateAsync(policy!, ct))
            return await policies.GetAsync(policyId, ct) is null ? ApiError.NotFound("termination policy", policyId) : ChannelGone(policy!);
        return PlatformResults.Json(ToWire(policy!), ParleyJson.Wire.TerminationPolicyWire);
    }

    static async Task<IResult> DeleteAsync(string policyId, ITerminationPolicyStore policies, CancellationToken ct) =>
        await policies.DeleteAsync(policyId, ct) ? Results.NoContent() : ApiError.NotFound("termination policy", policyId);

    static async Task<IResult> PreviewStoredAsync(string policyId, ITerminationPolicyStore policies, IConversationStore store, TimeProvider clock,
        CancellationToken ct) =>
        await policies.GetAsync(policyId, ct) is { } p
            ? PlatformResults.Json(await PreviewAsync(p, store, clock.GetUtcNow(), ct), ParleyJson.Wire.PolicyPreviewWire)
            : ApiError.NotFound("termination policy", policyId);

    static async Task<IResult> PreviewUnsavedAsync(HttpContext http, IConversationStore store, IDirectoryStore directory, TimeProvider clock,
        CancellationToken ct)
    {
        var (body, error) = await ReadRequestAsync(http);
        if (error is not null) return error;
        var now = clock.GetUtcNow();
        var (policy, invalid) = await ValidateAsync(body!, "preview", now, now, http.Caller().ClientId, directory, ct);
        if (invalid is not null) return invalid;
        return PlatformResults.Json(await PreviewAsync(policy!, store, now, ct) with { PolicyId = null }, ParleyJson.Wire.PolicyPreviewWire);
    }

    /// <summary>
    /// The dry run: every live conversation of the policy's channel it will end, with when, soonest first, as of
    /// <paramref name="now"/>. A disabled policy is previewed as if it were enabled (what enabling it would do).
    /// </summary>
    public static async Task<PolicyPreviewWire> PreviewAsync(TerminationPolicy policy, IConversationStore store, DateTimeOffset now, CancellationToken ct)
    {
        // Only the soonest PreviewMax are kept (a heap whose top is the latest kept, evicted when a sooner one comes), and a
        // running total: a channel with many live conversations is not held and sorted whole per call.
        var kept = new PriorityQueue<(DateTimeOffset EndsAt, LiveConversation Conversation), (DateTimeOffset EndsAt, string Id)>(LatestFirst);
        var total = 0;
        var scope = PolicySchedule.Scope(policy);
        for (string? after = null; ;)
        {
            var page = await store.ListLiveAsync(scope, 500, after, ct);
            foreach (var c in page)
            {
                if (PolicySchedule.EndsAt(policy, c.StartTime, c.Campaign, c.StartedBy, now) is not { } endsAt) continue;
                total++;
                if (kept.Count < PreviewMax) kept.Enqueue((endsAt, c), (endsAt, c.Id));
                else if (kept.TryPeek(out _, out var latest) && LatestFirst.Compare((endsAt, c.Id), latest) > 0)
                    kept.EnqueueDequeue((endsAt, c), (endsAt, c.Id));
            }
            if (page.Count < 500) break;
            after = page[^1].Id;
        }
        return new PolicyPreviewWire
        {
            PolicyId = policy.Id, EvaluatedAt = Wire.Time(now), Total = total,
            Entities = [.. kept.UnorderedItems.Select(e => e.Element).OrderBy(e => e.EndsAt).ThenBy(e => e.Conversation.Id, StringComparer.Ordinal)
                .Select(e => new PolicyPreviewEntry
                {
                    ConversationId = e.Conversation.Id, StartTime = Wire.Time(e.Conversation.StartTime), EndsAt = Wire.Time(e.EndsAt),
                    QueueId = e.Conversation.QueueId, Campaign = e.Conversation.Campaign,
                })],
        };
    }

    /// <summary>The preview's order reversed (latest end, then greatest id, first): the top of the heap is the first to drop.</summary>
    static readonly Comparer<(DateTimeOffset EndsAt, string Id)> LatestFirst = Comparer<(DateTimeOffset EndsAt, string Id)>.Create((a, b) =>
        b.EndsAt.CompareTo(a.EndsAt) is var c and not 0 ? c : string.CompareOrdinal(b.Id, a.Id));

    /// <summary>
    /// Ends now what the policy says is due now (even a disabled policy: an operator asked), as a bulk termination: a small
    /// set at once (200, FULFILLED), a large one as a job (202, PENDING; <c>GET /api/v2/parley/terminations/{id}</c>).
    /// Lever <c>Policy</c>, the policy's reason; the ends' actor is client <c>parley:policy:{id}</c> with the user who pressed
    /// apply (if a user did), and the job's <c>createdBy</c> is the caller, so the audit and the job name both.
    /// </summary>
    static async Task<IResult> ApplyAsync(string policyId, HttpContext http, ITerminationPolicyStore policies, BulkTerminationJobs jobs,
        TimeProvider clock, CancellationToken ct)
    {
        if (await policies.GetAsync(policyId, ct) is not { } p) return ApiError.NotFound("termination policy", policyId);
        // Nothing due: a filter that selects nothing (started before the epoch), so the answer is still a FULFILLED job row.
        var due = PolicySchedule.Due(p with { Enabled = true }, clock.GetUtcNow())
            ?? PolicySchedule.Scope(p) with { StartedBefore = DateTimeOffset.UnixEpoch };
        var filter = new TerminationFilter
        {
            DeploymentId = due.Channel == ChannelKind.WebMessaging ? due.ChannelId : null,
            IntegrationId = due.Channel == ChannelKind.Open ? due.ChannelId : null,
            StartedBefore = due.StartedBefore is { } before ? Wire.Time(before) : null, Campaign = due.Campaign, StartedBy = due.StartedBy,
        };
        var caller = http.Caller();
        var job = await jobs.StartAsync(filter, due, p.EndReason, caller.Actor, ct, EndLever.Policy,
            endsAs: new Actor(p.Actor.ClientId, caller.UserId, caller.UserName));
        var wire = TerminationsApi.ToWire(job);
        return job.State == TerminationJobStates.Pending
            ? PlatformResults.Accepted(wire, ParleyJson.Wire.BulkTerminationWire)
            : PlatformResults.Json(wire, ParleyJson.Wire.BulkTerminationWire);
    }

    static ApiError ChannelGone(TerminationPolicy p) => p.Channel == ChannelKind.WebMessaging
        ? ApiError.InvalidValue("deploymentId", p.ChannelId, "the id of an existing web messaging deployment")
        : ApiError.InvalidValue("integrationId", p.ChannelId, "the id of an existing open messaging integration");

    /// <summary>The body; an unknown field is refused by name (a misspelt field must not change what the policy ends).</summary>
    static Task<(TerminationPolicyRequest? Body, ApiError? Error)> ReadRequestAsync(HttpContext http) =>
        http.ReadJsonAsync(ParleyJson.Wire.TerminationPolicyRequest);

    /// <summary>
    /// The request as a policy, or the first thing wrong with it (400 naming the field). Type-specific fields are required for
    /// their type and refused on another (a maxDurationSeconds on a campaign policy is a mistake, not something to ignore).
    /// </summary>
    static async Task<(TerminationPolicy? Policy, ApiError? Error)> ValidateAsync(TerminationPolicyRequest b, string id, DateTimeOffset created,
        DateTimeOffset now, string createdBy, IDirectoryStore directory, CancellationToken ct)
    {
        static (TerminationPolicy?, ApiError?) Bad(ApiError e) => (null, e);
        static ApiError Required(string field, string type) => ApiError.BadRequest($"The field '{field}' is required for a {type} policy.", field);
        static ApiError NotFor(string field, string type) => ApiError.BadRequest($"The field '{field}' does not apply to a {type} policy.", field);

        if (string.IsNullOrWhiteSpace(b.Name)) return Bad(ApiError.BadRequest("The field 'name' is required.", "name"));
        if (b.Name.Length > TerminationPolicy.MaxNameLength)
            return Bad(ApiError.BadRequest($"The field 'name' is longer than {TerminationPolicy.MaxNameLength} characters.", "name"));
        if (b.Reason is { Length: > TerminationPolicy.MaxReasonLength })
            return Bad(ApiError.BadRequest($"The field 'reason' is longer than {TerminationPolicy.MaxReasonLength} characters.", "reason"));
        PolicyType? type = b.Type switch
        {
            TerminationPolicyTypes.MaxDuration => PolicyType.MaxDuration,
            TerminationPolicyTypes.Campaign => PolicyType.Campaign,
            TerminationPolicyTypes.BusinessHours => PolicyType.BusinessHours,
            _ => null,
        };
        if (type is null)
            return Bad(b.Type is null ? ApiError.BadRequest("The field 'type' is required: maxDuration, campaign or businessHours.", "type")
                : ApiError.InvalidValue("type", b.Type, "maxDuration, campaign, businessHours"));

        // The channel: exactly one, and it must exist.
        if ((b.DeploymentId is null) == (b.IntegrationId is null))
            return Bad(ApiError.BadRequest("Give exactly one of 'deploymentId' (a web messaging deployment) and 'integrationId' " +
                "(an open messaging integration): a policy belongs to one channel.", b.DeploymentId is null ? "deploymentId" : "integrationId"));
        var channel = b.DeploymentId is not null ? ChannelKind.WebMessaging : ChannelKind.Open;
        var channelId = (b.DeploymentId ?? b.IntegrationId)!;
        var exists = channel == ChannelKind.WebMessaging
            ? await directory.GetDeploymentAsync(channelId, ct) is not null
            : await directory.GetIntegrationAsync(channelId, ct) is not null;
        var policy = new TerminationPolicy(id, b.Name.Trim(), channel, channelId, type.Value, b.Enabled ?? true,
            string.IsNullOrWhiteSpace(b.Reason) ? null : b.Reason.Trim(), created, now, createdBy);
        if (!exists) return Bad(ChannelGone(policy));

        var typeName = b.Type!;
        if (type != PolicyType.MaxDuration && b.MaxDurationSeconds is not null) return Bad(NotFor("maxDurationSeconds", typeName));
        if (type != PolicyType.Campaign)
            foreach (var (field, value) in new[] { ("campaign", b.Campaign), ("startedBy", b.StartedBy), ("endAt", b.EndAt) })
                if (value is not null) return Bad(NotFor(field, typeName));
        if (type != PolicyType.BusinessHours)
        {
            foreach (var (field, value) in new[] { ("closeAt", b.CloseAt), ("timeZone", b.TimeZone) })
                if (value is not null) return Bad(NotFor(field, typeName));
            if (b.Days is not null) return Bad(NotFor("days", typeName));
        }

        switch (type)
        {
            case PolicyType.MaxDuration:
                if (b.MaxDurationSeconds is not { } seconds) return Bad(Required("maxDurationSeconds", typeName));
                var (min, max) = ((int)TerminationPolicy.MinMaxDuration.TotalSeconds, (int)TerminationPolicy.MaxMaxDuration.TotalSeconds);
                if (seconds < min || seconds > max)
                    return Bad(ApiError.InvalidValue("maxDurationSeconds", seconds.ToString(CultureInfo.InvariantCulture), $"{min} to {max}"));
                return (policy with { MaxDuration = TimeSpan.FromSeconds(seconds) }, null);

            case PolicyType.Campaign:
                if (b.Campaign is null && b.StartedBy is null)
                    return Bad(ApiError.BadRequest("A campaign policy needs 'campaign' (the campaign tag) and/or 'startedBy' (the OAuth client id of the bot).", "campaign"));
                if (b.Campaign is { } tag && (tag.Trim().Length == 0 || tag.Length > ParleyOptions.MaxCampaignLength))
                    return Bad(ApiError.InvalidValue("campaign", tag, $"1 to {ParleyOptions.MaxCampaignLength} characters"));
                if (b.StartedBy is { } bot && (bot.Length is 0 or > 200))
                    return Bad(ApiError.InvalidValue("startedBy", bot, "an OAuth client id"));
                DateTimeOffset endAt = created;   // default: when the policy was created
                if (b.EndAt is { } text && !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                        DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out endAt))
                    return Bad(ApiError.InvalidValue("endAt", text, "an ISO-8601 instant, e.g. 2026-12-01T18:00:00.000Z"));
                // The store keeps milliseconds: keep the same here, so what is answered is what is stored.
                endAt = DateTimeOffset.FromUnixTimeMilliseconds(endAt.ToUnixTimeMilliseconds());
                return (policy with { Campaign = b.Campaign, StartedBy = b.StartedBy, EndAt = endAt }, null);

            default:
                if (b.CloseAt is null) return Bad(Required("closeAt", typeName));
                if (!TimeOnly.TryParseExact(b.CloseAt, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var closeAt))
                    return Bad(ApiError.InvalidValue("closeAt", b.CloseAt, "a local time as HH:mm, 00:00 to 23:59"));
                if (b.TimeZone is null) return Bad(Required("timeZone", typeName));
                if (PolicySchedule.FindZone(b.TimeZone) is null)
                    return Bad(ApiError.InvalidValue("timeZone", b.TimeZone, "an IANA time zone id known to this server, e.g. Europe/Paris, America/New_York"));
                var days = new List<DayOfWeek>();
                foreach (var name in b.Days ?? [])
                {
                    if (name is null || PolicyDays.Find(name) is not { } day)
                        return Bad(ApiError.InvalidValue("days", name ?? "null", "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday"));
                    days.Add(day);
                }
                return (policy with { CloseAt = closeAt, TimeZone = b.TimeZone, Days = PolicyDays.Normalise(days) }, null);
        }
    }
}
