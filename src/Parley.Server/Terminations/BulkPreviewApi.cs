using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Terminations;

/// <summary>
/// The bulk termination's dry run (docs/ending-sessions.md "Bulk terminations"): <c>POST /api/v2/parley/terminations/preview</c>
/// takes the same <see cref="BulkTerminationRequest"/> as <c>POST /api/v2/parley/terminations</c>, refuses what it refuses
/// (the same 400s), and answers the live conversations the filter matches now, ending nothing. Every entry's <c>endsAt</c>
/// is <c>evaluatedAt</c>: a bulk termination ends what it matches at once.
/// </summary>
public static class BulkPreviewApi
{
    public static void MapBulkTerminationPreview(this IEndpointRouteBuilder app)
    {
        var api = app.MapPlatformGroup("/parley", "Parley: terminations");
        // The permission of the termination it previews: whoever may end these may see which they are.
        api.MapPost("/terminations/preview", PreviewAsync).RequirePermission(Permissions.ConversationDisconnect)
            .Accepts<BulkTerminationRequest>("application/json").Produces<PolicyPreviewWire>().Errors(400, 413, 415);
    }

    static async Task<IResult> PreviewAsync(HttpContext http, IDirectoryStore directory, IConversationStore store, TimeProvider clock,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.BulkTerminationRequest);
        if (error is not null) return error;
        if (TerminationsApi.Refusal(body!) is { } bad) return bad;
        var (live, refused) = await TerminationsApi.ToLiveFilterAsync(body!.Filter!, directory, ct);
        if (refused is not null) return refused;

        var now = clock.GetUtcNow();
        var matched = new List<LiveConversation>();
        for (string? after = null; ;)
        {
            var page = await store.ListLiveAsync(live!, 500, after, ct);
            matched.AddRange(page);
            if (page.Count < 500) break;
            after = page[^1].Id;
        }
        var evaluatedAt = Wire.Time(now);
        return PlatformResults.Json(new PolicyPreviewWire
        {
            EvaluatedAt = evaluatedAt, Total = matched.Count,
            Entities = [.. matched.OrderBy(c => c.StartTime).ThenBy(c => c.Id, StringComparer.Ordinal).Take(PoliciesApi.PreviewMax)
                .Select(c => new PolicyPreviewEntry
                {
                    ConversationId = c.Id, StartTime = Wire.Time(c.StartTime), EndsAt = evaluatedAt, QueueId = c.QueueId, Campaign = c.Campaign,
                })],
        }, ParleyJson.Wire.PolicyPreviewWire);
    }
}
