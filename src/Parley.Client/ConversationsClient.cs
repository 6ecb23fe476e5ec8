using System.Net.Http.Json;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>Message conversations (Genesys Cloud calls; docs/compatibility.md §Conversation endpoints).</summary>
public sealed class ConversationsClient
{
    /// <summary>Parley's header naming the guest sockets a termination told.</summary>
    public const string SocketsNotifiedHeader = "Parley-Sockets-Notified";

    /// <summary>Parley's header naming the termination (its audit row's id, which is its receipt's id).</summary>
    public const string TerminationIdHeader = "Parley-Termination-Id";

    /// <summary>Parley's header carrying a termination's reason (ASCII only; otherwise the reason goes in the body).</summary>
    public const string ReasonHeader = "Parley-Termination-Reason";

    readonly Http _api;

    internal ConversationsClient(Http api) => _api = api;

    /// <summary><c>GET /api/v2/conversations/messages</c>: the live message conversations, a page at a time.</summary>
    public Task<EntityListing<MessageConversation>> ListLiveAsync(int? pageSize = null, int? pageNumber = null, CancellationToken ct = default) =>
        _api.GetAsync(Http.Query("/api/v2/conversations/messages", ("pageSize", pageSize), ("pageNumber", pageNumber)),
            ParleyJson.Wire.EntityListingMessageConversation, ct);

    /// <summary>Every live message conversation, page after page.</summary>
    public async IAsyncEnumerable<MessageConversation> ListAllLiveAsync(int pageSize = 100,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        for (var page = 1; ; page++)
        {
            var listing = await ListLiveAsync(pageSize, page, ct);
            foreach (var c in listing.Entities) yield return c;
            if (listing.Entities.Count == 0 || page >= listing.PageCount) yield break;
        }
    }

    /// <summary><c>GET /api/v2/conversations/{id}</c>: the generic conversation (participants with their communications).</summary>
    public Task<ConversationWire> GetAsync(string conversationId, CancellationToken ct = default) =>
        _api.GetAsync($"/api/v2/conversations/{Http.Segment(conversationId)}", ParleyJson.Wire.ConversationWire, ct);

    /// <summary><c>GET /api/v2/conversations/messages/{id}</c>: the message conversation.</summary>
    public Task<MessageConversation> GetMessageConversationAsync(string conversationId, CancellationToken ct = default) =>
        _api.GetAsync($"/api/v2/conversations/messages/{Http.Segment(conversationId)}", ParleyJson.Wire.MessageConversation, ct);

    /// <summary>
    /// <c>POST /api/v2/conversations/messages/agentless</c>: the bot writes first. <see cref="AgentlessRequest.Campaign"/>
    /// tags the conversation it starts (a Parley extension, for policies and bulk terminations; Genesys Cloud does not know it).
    /// </summary>
    public Task<AgentlessResponse> SendAgentlessAsync(AgentlessRequest request, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post, "/api/v2/conversations/messages/agentless", request, ParleyJson.Wire.AgentlessRequest,
            ParleyJson.Wire.AgentlessResponse, ct);

    /// <summary><c>POST /api/v2/conversations/messages/{id}/communications/{communicationId}/messages</c>: send as the bot or agent.</summary>
    public Task<MessageData> SendMessageAsync(string conversationId, string communicationId, string text, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post,
            $"/api/v2/conversations/messages/{Http.Segment(conversationId)}/communications/{Http.Segment(communicationId)}/messages",
            new AdditionalMessage { TextBody = text }, ParleyJson.Wire.AdditionalMessage, ParleyJson.Wire.MessageData, ct);

    /// <summary>
    /// One lever, no verification: <c>PATCH /api/v2/conversations/messages/{id}/participants/{pid}</c> <c>{"state":"disconnected"}</c>.
    /// Throws for anything but 2xx (409 when it was already disconnected). Prefer <see cref="ParleyClient.TerminateAsync"/>.
    /// </summary>
    public async Task<LeverAnswer> DisconnectParticipantAsync(string conversationId, string participantId, string? reason = null,
        CancellationToken ct = default)
    {
        var answer = await PatchParticipantAsync(conversationId, participantId, reason, ct);
        answer.EnsureSuccess();
        return LeverAnswer.From(answer);
    }

    /// <summary>
    /// One lever, no verification: <c>POST /api/v2/conversations/{id}/disconnect</c> (the platform's teardown). Throws for
    /// anything but 2xx. Prefer <see cref="ParleyClient.TerminateAsync"/>.
    /// </summary>
    public async Task<LeverAnswer> DisconnectAsync(string conversationId, string? reason = null, CancellationToken ct = default)
    {
        var answer = await PostDisconnectAsync(conversationId, reason, ct);
        answer.EnsureSuccess();
        return LeverAnswer.From(answer);
    }

    internal Task<Answer> PatchParticipantAsync(string conversationId, string participantId, string? reason, CancellationToken ct) =>
        SendLeverAsync(new HttpMethod("PATCH"),
            $"/api/v2/conversations/messages/{Http.Segment(conversationId)}/participants/{Http.Segment(participantId)}",
            new StateChangeRequest { State = "disconnected" }, reason, ct);

    internal Task<Answer> PostDisconnectAsync(string conversationId, string? reason, CancellationToken ct) =>
        SendLeverAsync(HttpMethod.Post, $"/api/v2/conversations/{Http.Segment(conversationId)}/disconnect",
            reason is null ? null : new StateChangeRequest(), reason, ct);

    /// <summary>
    /// The reason travels in Parley's header when it is ASCII (other servers ignore an unknown header), else in the body's
    /// <c>reason</c> field (HTTP headers are ASCII).
    /// </summary>
    Task<Answer> SendLeverAsync(HttpMethod method, string path, StateChangeRequest? body, string? reason, CancellationToken ct)
    {
        var ascii = reason is null || reason.All(ch => ch is >= ' ' and <= '~');
        if (reason is not null && !ascii) body = (body ?? new StateChangeRequest()) with { Reason = reason };
        var headers = reason is not null && ascii ? new[] { KeyValuePair.Create(ReasonHeader, reason) } : null;
        return _api.SendAsync(method, path, body is null ? null : JsonContent.Create(body, ParleyJson.Wire.StateChangeRequest), ct, headers);
    }
}

/// <summary>
/// What a lever's call answered: its status and, on Parley, how many guest sockets took the Disconnect and the
/// termination's id (its receipt: <c>GET /api/v2/parley/receipts/{id}</c>).
/// </summary>
public sealed record LeverAnswer(int Status, int? SocketsNotified, string? TerminationId, string? ContextId)
{
    internal static LeverAnswer From(Answer a) =>
        new(a.Status, int.TryParse(a.Header(ConversationsClient.SocketsNotifiedHeader), out var n) ? n : null,
            a.Header(ConversationsClient.TerminationIdHeader), a.Header(Http.CorrelationHeader));
}

/// <summary>Conversation details (a Genesys Cloud call; docs/compatibility.md §Analytics details).</summary>
public sealed class AnalyticsClient
{
    readonly Http _api;

    internal AnalyticsClient(Http api) => _api = api;

    /// <summary><c>GET /api/v2/analytics/conversations/{id}/details</c>; <c>conversationEnd</c> is set once it ended.</summary>
    public Task<AnalyticsConversation> GetDetailsAsync(string conversationId, CancellationToken ct = default) =>
        _api.GetAsync($"/api/v2/analytics/conversations/{Http.Segment(conversationId)}/details", ParleyJson.Wire.AnalyticsConversation, ct);

    /// <summary><c>POST /api/v2/analytics/conversations/details/query</c>.</summary>
    public Task<AnalyticsQueryResponse> QueryAsync(ConversationQuery query, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post, "/api/v2/analytics/conversations/details/query", query, ParleyJson.Wire.ConversationQuery,
            ParleyJson.Wire.AnalyticsQueryResponse, ct);
}
