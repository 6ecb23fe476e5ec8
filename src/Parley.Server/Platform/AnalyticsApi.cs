using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Platform;

/// <summary>
/// Conversation details (docs/compatibility.md §Analytics details), read from the same rows the termination commits: analytics can never show a
/// conversation live that the Conversations API says has ended (Genesys indexes asynchronously; Parley does not).
/// </summary>
public static class AnalyticsApi
{
    public const string SupportedDimensions = "conversationEnd (exists|notExists), conversationId, mediaType (message), messageType (webmessaging|open), queueId";

    public static void MapAnalyticsApi(this IEndpointRouteBuilder app)
    {
        var view = Permissions.AnalyticsView;
        var api = app.MapPlatformGroup("/analytics/conversations", "Analytics");
        api.MapGet("/{conversationId}/details", GetAsync).RequirePermission(view).Errors(404);
        api.MapGet("/details", GetManyAsync).RequirePermission(view);
        api.MapPost("/details/query", QueryAsync).RequirePermission(view).Accepts<ConversationQuery>("application/json").Errors(400, 413, 415);
    }

    static async Task<Results<WireJson<AnalyticsConversation>, ApiError>> GetAsync(string conversationId, IConversationStore store, CancellationToken ct) =>
        await store.LoadAsync(conversationId, ct) is { } c
            ? PlatformResults.Json(PlatformWire.ToAnalytics(c), ParleyJson.Wire.AnalyticsConversation)
            : ApiError.NotFound("conversation", conversationId);

    /// <param name="id">The conversations' ids (the query parameter repeats).</param>
    static async Task<WireJson<AnalyticsConversationList>> GetManyAsync(string[]? id, IConversationStore store, CancellationToken ct)
    {
        var list = new List<AnalyticsConversation>();
        foreach (var one in id ?? [])
            if (await store.LoadAsync(one, ct) is { } c) list.Add(PlatformWire.ToAnalytics(c));
        return PlatformResults.Json(new AnalyticsConversationList(list), ParleyJson.Wire.AnalyticsConversationList);
    }

    static async Task<Results<WireJson<AnalyticsQueryResponse>, ApiError>> QueryAsync(HttpContext http, IConversationStore store, CancellationToken ct)
    {
        var (query, error) = await http.ReadJsonAsync(ParleyJson.Wire.ConversationQuery);
        if (error is not null) return error;
        var q = query!;
        if (string.IsNullOrEmpty(q.Interval)) return ApiError.BadRequest("The field 'interval' is required, e.g. 2024-05-20T00:00:00.000Z/2024-05-21T00:00:00.000Z.", "interval");
        var bounds = q.Interval.Split('/');
        if (bounds.Length != 2
            || !DateTimeOffset.TryParse(bounds[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var from)
            || !DateTimeOffset.TryParse(bounds[1], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var to)
            || to <= from)
            return new ApiError(400, "invalid.date", "Dates must be specified as ISO-8601 strings. For example: yyyy-MM-ddTHH:mm:ss.SSSZ (interval is start/end, end after start)", "interval");
        if (PlatformRequest.Paging(q.Paging?.PageSize, q.Paging?.PageNumber, out var size, out var number, prefix: "paging.") is { } bad) return bad;
        var order = q.Order ?? "asc";
        if (order is not ("asc" or "desc" or "unordered")) return ApiError.InvalidValue("order", order, "asc, desc, unordered");
        var orderBy = q.OrderBy ?? "conversationStart";
        if (orderBy is not ("conversationStart" or "conversationEnd")) return ApiError.InvalidValue("orderBy", orderBy, "conversationStart, conversationEnd");

        if (Unsupported(q) is { } refused) return refused;
        var filter = new ConversationFilter(from, to, Descending: order == "desc", OrderBy: orderBy, PageSize: size, PageNumber: number);
        string? onlyId = null;
        var matchesNothing = false;
        foreach (var predicate in Predicates(q.ConversationFilters).Concat(Predicates(q.SegmentFilters)))
        {
            switch (predicate.Dimension, predicate.Operator ?? "matches")
            {
                case ("conversationEnd", "exists"): filter = filter with { Ended = true }; break;
                case ("conversationEnd", "notExists"): filter = filter with { Ended = false }; break;
                case ("conversationId", "matches"): onlyId = predicate.Value; break;
                case ("mediaType", "matches"): matchesNothing |= predicate.Value != "message"; break;
                case ("messageType", "matches") when predicate.Value is "webmessaging" or "open":
                    filter = filter with { Channel = predicate.Value == "open" ? ChannelKind.Open : ChannelKind.WebMessaging };
                    break;
                case ("messageType", "matches"): matchesNothing = true; break;
                // Two different queues in one "and" filter match nothing: a conversation has one queue.
                case ("queueId", "matches"):
                    matchesNothing |= filter.QueueId is { } other && other != predicate.Value;
                    filter = filter with { QueueId = predicate.Value ?? "" };
                    break;
                default:
                    return ApiError.BadRequest(
                        $"Unsupported predicate: dimension '{predicate.Dimension}' with operator '{predicate.Operator ?? "matches"}'. Supported: {SupportedDimensions}.");
            }
        }

        List<Conversation> found;
        long total;
        if (matchesNothing) (found, total) = ([], 0);
        else if (onlyId is not null)
        {
            var one = await store.LoadAsync(onlyId, ct);
            found = one is not null && one.StartTime >= from && one.StartTime < to
                && (filter.Ended is null || filter.Ended == one.IsEnded) && (filter.Channel is null || filter.Channel == one.Channel)
                && (filter.QueueId is null || filter.QueueId == one.QueueId)
                ? [one] : [];
            total = found.Count;
            if (number > 1) found = [];
        }
        else
        {
            var page = await store.QueryAsync(filter, ct);
            (found, total) = (page.Entities.ToList(), page.Total);
        }
        return PlatformResults.Json(new AnalyticsQueryResponse(found.Count == 0 ? null : found.Select(PlatformWire.ToAnalytics).ToList(), total),
            ParleyJson.Wire.AnalyticsQueryResponse);
    }

    static IEnumerable<QueryPredicate> Predicates(List<QueryFilter>? filters) =>
        filters?.SelectMany(f => (f.Predicates ?? []).Concat(Predicates(f.Clauses))) ?? [];

    /// <summary>
    /// What this query cannot honour is refused, never ignored: an answer that silently dropped a filter would be a 2xx
    /// for a query Parley did not run. Only "and" filters and the dimensions in <see cref="SupportedDimensions"/>.
    /// </summary>
    static ApiError? Unsupported(ConversationQuery q)
    {
        foreach (var (name, list) in new[] { ("evaluationFilters", q.EvaluationFilters), ("surveyFilters", q.SurveyFilters),
                     ("resolutionFilters", q.ResolutionFilters), ("aggregations", q.Aggregations) })
            if (list is { Count: > 0 }) return ApiError.BadRequest($"'{name}' is not supported; filter on {SupportedDimensions}.", name);
        return CheckFilters(q.ConversationFilters, "conversationFilters") ?? CheckFilters(q.SegmentFilters, "segmentFilters");
    }

    static ApiError? CheckFilters(List<QueryFilter>? filters, string field)
    {
        foreach (var f in filters ?? [])
        {
            if (f is null) return ApiError.BadRequest($"An entry of '{field}' is null.", field);
            if (f.Type is not (null or "and"))
                return ApiError.InvalidValue($"{field}[].type", f.Type, "and (or-filters are not supported yet)");
            foreach (var p in f.Predicates ?? [])
            {
                if (p is null) return ApiError.BadRequest($"An entry of '{field}[].predicates' is null.", field);
                if (p.Range is not null) return ApiError.BadRequest($"Predicate ranges are not supported; filter on {SupportedDimensions}.", field);
                if (p.Type is not (null or "dimension")) return ApiError.InvalidValue($"{field}[].predicates[].type", p.Type, "dimension");
            }
            if (CheckFilters(f.Clauses, field) is { } inner) return inner;
        }
        return null;
    }
}
