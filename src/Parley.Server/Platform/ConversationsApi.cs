using Microsoft.AspNetCore.Http.HttpResults;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Platform;

/// <summary>Everything a Platform handler needs, bound as one parameter.</summary>
public sealed class PlatformContext(Conversations conversations, IConversationStore store, IGuestSessionStore sessions,
    IDirectoryStore directory, IAuditLog audit, ParleyOptions options, TimeProvider clock, ILoggerFactory loggers)
{
    public ILoggerFactory Loggers => loggers;
    public ILogger Terminations => loggers.CreateLogger(ParleyLog.Termination);
    public TimeProvider Clock => clock;
    public Conversations Conversations => conversations;
    public IConversationStore Store => store;
    public IGuestSessionStore Sessions => sessions;
    public IDirectoryStore Directory => directory;
    public IAuditLog Audit => audit;
    public ParleyOptions Options => options;
}

/// <summary>
/// Platform API for message conversations (docs/compatibility.md §Conversation endpoints): read, send as the bot, and the termination levers (docs/compatibility.md §Termination levers). A
/// termination answers only after it committed and every guest socket took the Disconnect frame; the header
/// <c>Parley-Sockets-Notified</c> says how many did. A repeat on an ended conversation changes nothing and gets 409.
/// </summary>
public static class ConversationsApi
{
    public const string ReasonHeader = "Parley-Termination-Reason";
    public const string NotifiedHeader = "Parley-Sockets-Notified";
    /// <summary>The termination's id (its audit row), which names its receipt: <c>GET /api/v2/parley/receipts/{id}</c>.</summary>
    public const string TerminationIdHeader = "Parley-Termination-Id";

    public const string Levers =
        "To end a messaging conversation use PATCH /api/v2/conversations/messages/{conversationId}/participants/{participantId} " +
        "with {\"state\":\"disconnected\"}, PATCH /api/v2/conversations/messages/{conversationId} with {\"state\":\"disconnected\"}, " +
        "or POST /api/v2/conversations/{conversationId}/disconnect.";

    public static void MapConversationsApi(this IEndpointRouteBuilder app)
    {
        var view = Permissions.ConversationView;
        var disconnect = Permissions.ConversationDisconnect;
        var create = Permissions.ConversationCreate;
        const string json = "application/json";

        var api = app.MapPlatformGroup("/conversations", "Conversations");
        api.MapGet("/messages", ListActiveAsync).RequirePermission(view).Errors(400);
        api.MapGet("/messages/{conversationId}", GetMessageConversationAsync).RequirePermission(view).Errors(404);
        api.MapGet("/{conversationId}", GetConversationAsync).RequirePermission(view).Errors(404);
        api.MapGet("/messages/{conversationId}/messages/{messageId}", GetMessageAsync).RequirePermission(view).Errors(404);
        api.MapGet("/messages/{messageId}/details", GetMessageDetailsAsync).RequirePermission(view).Errors(404);

        api.MapPatch("/messages/{conversationId}", PatchConversationAsync).RequirePermission(disconnect)
            .Accepts<StateChangeRequest>(json).Errors(400, 404, 409, 413, 415);
        api.MapPatch("/messages/{conversationId}/participants/{participantId}", PatchParticipantAsync).RequirePermission(disconnect)
            .Accepts<StateChangeRequest>(json).Errors(400, 404, 409, 413, 415);
        api.MapPatch("/{conversationId}/participants/{participantId}", PatchParticipantAsync).RequirePermission(disconnect)
            .Accepts<StateChangeRequest>(json).Errors(400, 404, 409, 413, 415);
        api.MapPost("/{conversationId}/disconnect", DisconnectAsync).RequirePermission(disconnect)
            .Accepts<StateChangeRequest>(isOptional: true, json).Errors(400, 404, 409, 413, 415);

        api.MapPost("/messages/{conversationId}/communications/{communicationId}/messages", SendAsync).RequirePermission(create)
            .Accepts<AdditionalMessage>(json).Errors(400, 404, 409, 413, 415);
        api.MapPost("/messages/{conversationId}/communications/{communicationId}/typing", TypingAsync).RequirePermission(create)
            .Accepts<MessageTypingEventRequest>(json).Errors(400, 404, 409, 413, 415);
        api.MapPost("/messages/agentless", AgentlessAsync).RequirePermission(create)
            .Accepts<AgentlessRequest>(json).Errors(400, 404, 409, 413, 415);

        // The seed's calls: these paths do not exist on Genesys Cloud either (docs/compatibility.md §Endpoints that do not exist). Say so, and name what works.
        app.MapMethods("/api/v2/conversations/messaging/events", ["POST", "PUT", "PATCH"], NoSuchEventsEndpoint);
        app.MapMethods("/api/v2/conversations/messaging/{conversationId}/participants/{participantId}/events", ["POST", "PUT", "PATCH"], NoSuchEventsEndpoint);
    }

    static IResult NoSuchEventsEndpoint(HttpContext http) =>
        new ApiError(404, "not.found",
            $"{http.Request.Method} {http.Request.Path} does not exist (nor on Genesys Cloud): there is no messaging events endpoint and no 'hangup' event. {Levers}");

    static async Task<Results<WireJson<EntityListing<MessageConversation>>, ApiError>> ListActiveAsync([AsParameters] PlatformContext ctx, int? pageSize, int? pageNumber, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await ctx.Store.QueryAsync(new ConversationFilter(Ended: false, PageSize: size, PageNumber: number), ct);
        var entities = new List<MessageConversation>();
        foreach (var c in page.Entities)
            entities.Add(PlatformWire.ToMessageConversation(c, await RecentMessagesAsync(ctx, c.Id, ct, MessagesPerListedConversation)));
        return PlatformResults.Json(PlatformRequest.Listing(entities, "/api/v2/conversations/messages", size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingMessageConversation);
    }

    /// <summary>A conversation's participants' message lists carry at most this many recent messages.</summary>
    public const int MessagesListed = 1000;
    /// <summary>
    /// In a listing, each conversation carries at most this many recent messages, so a page of 100 conversations is
    /// bounded however long they are; the full history is paged by the guest history or read message by message.
    /// </summary>
    public const int MessagesPerListedConversation = 25;

    static async Task<IReadOnlyList<ConversationMessage>> RecentMessagesAsync(PlatformContext ctx, string conversationId, CancellationToken ct,
        int max = MessagesListed) =>
        (await ctx.Store.ListMessagesAsync(conversationId, max, 1, ct)).Entities.Reverse().ToList();

    static async Task<Results<WireJson<MessageConversation>, ApiError>> GetMessageConversationAsync(string conversationId,
        [AsParameters] PlatformContext ctx, CancellationToken ct) =>
        await ctx.Store.LoadAsync(conversationId, ct) is { } c
            ? PlatformResults.Json(PlatformWire.ToMessageConversation(c, await RecentMessagesAsync(ctx, c.Id, ct)), ParleyJson.Wire.MessageConversation)
            : ApiError.NotFound("conversation", conversationId);

    static async Task<Results<WireJson<ConversationWire>, ApiError>> GetConversationAsync(string conversationId, [AsParameters] PlatformContext ctx,
        CancellationToken ct) =>
        await ctx.Store.LoadAsync(conversationId, ct) is { } c
            ? PlatformResults.Json(PlatformWire.ToConversation(c, await RecentMessagesAsync(ctx, c.Id, ct)), ParleyJson.Wire.ConversationWire)
            : ApiError.NotFound("conversation", conversationId);

    static async Task<Results<WireJson<MessageData>, ApiError>> GetMessageAsync(string conversationId, string messageId, [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        if (await ctx.Store.LoadAsync(conversationId, ct) is not { } c) return ApiError.NotFound("conversation", conversationId);
        if (await ctx.Store.GetMessageAsync(messageId, ct) is not { } m || m.ConversationId != c.Id) return ApiError.NotFound("message", messageId);
        return PlatformResults.Json(PlatformWire.ToMessageData(c, m), ParleyJson.Wire.MessageData);
    }

    static async Task<Results<WireJson<MessageData>, ApiError>> GetMessageDetailsAsync(string messageId, [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        if (await ctx.Store.GetMessageAsync(messageId, ct) is not { } m) return ApiError.NotFound("message", messageId);
        var c = await ctx.Store.LoadAsync(m.ConversationId, ct);
        return PlatformResults.Json(PlatformWire.ToMessageData(c!, m), ParleyJson.Wire.MessageData);
    }

    // ------------------------------------------------------------------ termination levers (docs/compatibility.md §Termination levers)

    static async Task<Results<WireJson<ConversationWire>, ApiError>> PatchConversationAsync(string conversationId, HttpContext http, [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.StateChangeRequest);
        if (error is not null) return error;
        if (CheckDisconnectState(body!) is { } bad) return bad;
        var command = new EndConversation(http.Caller().Actor, EndLever.ConversationPatch, Reason(http, body));
        return await TerminateAsync(http, ctx, conversationId, command, async c =>
            PlatformResults.Json(PlatformWire.ToConversation(c, await RecentMessagesAsync(ctx, c.Id, ct)), ParleyJson.Wire.ConversationWire), ct);
    }

    static async Task<Results<Accepted, ApiError>> PatchParticipantAsync(string conversationId, string participantId, HttpContext http,
        [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.StateChangeRequest);
        if (error is not null) return error;
        if (CheckDisconnectState(body!) is { } bad) return bad;
        var command = new DisconnectParticipant(participantId, http.Caller().Actor, EndLever.ParticipantPatch, Reason(http, body));
        return await TerminateAsync(http, ctx, conversationId, command, _ => Task.FromResult(TypedResults.Accepted((string?)null)), ct);
    }

    static async Task<Results<Accepted, ApiError>> DisconnectAsync(string conversationId, HttpContext http, [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.StateChangeRequest, required: false);
        if (error is not null) return error;
        var command = new EndConversation(http.Caller().Actor, EndLever.ConversationDisconnect, Reason(http, body));
        return await TerminateAsync(http, ctx, conversationId, command, _ => Task.FromResult(TypedResults.Accepted((string?)null)), ct);
    }

    /// <summary>Only <c>disconnected</c> is a state the API sets; anything else would be a 2xx that did nothing.</summary>
    static ApiError? CheckDisconnectState(StateChangeRequest body) => body.State switch
    {
        null => ApiError.BadRequest("The field 'state' is required; set it to 'disconnected' to end the participant or conversation.", "state"),
        "disconnected" => null,
        _ => ApiError.InvalidValue("state", body.State, "disconnected"),
    };

    /// <summary>Optional reason: the <c>Parley-Termination-Reason</c> header, or a <c>reason</c> field in the PATCH body.</summary>
    static string? Reason(HttpContext http, StateChangeRequest? body)
    {
        var header = http.Request.Headers[ReasonHeader].ToString();
        var reason = header.Length > 0 ? header : body?.Reason;
        return reason is { Length: > 500 } ? reason[..500] : reason;
    }

    static async Task<Results<TSuccess, ApiError>> TerminateAsync<TSuccess>(HttpContext http, PlatformContext ctx, string conversationId,
        Command command, Func<Conversation, Task<TSuccess>> success, CancellationToken ct) where TSuccess : IResult
    {
        using var trace = ParleyTelemetry.StartTermination(command switch { EndConversation e => e.Lever, DisconnectParticipant d => d.Lever, _ => default },
            conversationId);
        var outcome = await ctx.Conversations.HandleAsync(conversationId, command, ct);
        switch (outcome.Status)
        {
            case OutcomeStatus.NotFound:
                return ApiError.NotFound("conversation", conversationId);
            case OutcomeStatus.Rejected when outcome.Rejected!.Code == RejectionCode.ParticipantNotFound:
                return ApiError.NotFound("participant", ((DisconnectParticipant)command).ParticipantId);
            case OutcomeStatus.Rejected:
                return ApiError.BadRequest(outcome.Rejected!.Message);
            case OutcomeStatus.NoOp:
                var c = outcome.Conversation!;
                return ApiError.Conflict("conversation.already.disconnected", c.IsEnded
                    ? $"Conversation {c.Id} already ended at {Wire.Time(c.EndTime)}; nothing was changed."
                    : $"That participant of conversation {c.Id} is already disconnected; nothing was changed.");
        }
        var elapsed = trace.Told(outcome, await outcome.Delivered);   // call → sockets told; the audit row's count is written after
        var sockets = await Conversations.AwaitDeliveryAsync(outcome, ctx.Audit, ct);
        ctx.Terminations.Terminated(outcome, sockets, elapsed, command);
        http.Response.Headers[NotifiedHeader] = sockets.ToString();
        if (outcome.AuditId is { } terminationId) http.Response.Headers[TerminationIdHeader] = terminationId;
        return await success(outcome.Conversation!);
    }

    // ------------------------------------------------------------------ sending as the bot

    static async Task<Results<WireJson<MessageData>, ApiError>> SendAsync(string conversationId, string communicationId, HttpContext http, [AsParameters] PlatformContext ctx,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.AdditionalMessage);
        if (error is not null) return error;
        if (string.IsNullOrEmpty(body!.TextBody)) return ApiError.BadRequest("The field 'textBody' is required.", "textBody");
        if (body.TextBody.Length > ctx.Options.MaxPlatformTextLength)
            return ApiError.BadRequest($"The field 'textBody' may be at most {ctx.Options.MaxPlatformTextLength} characters.", "textBody");
        return await SendFromCommunicationAsync(ctx, conversationId, communicationId, MessageKind.Text, body.TextBody, [],
            (c, m) => PlatformResults.Json(PlatformWire.ToMessageData(c, m), ParleyJson.Wire.MessageData), ct);
    }

    static async Task<Results<Accepted, ApiError>> TypingAsync(string conversationId, string communicationId, HttpContext http, [AsParameters] PlatformContext ctx,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.MessageTypingEventRequest);
        if (error is not null) return error;
        if (body!.Typing?.Type is not ("On" or "Off"))
            return ApiError.BadRequest($"This endpoint takes only typing events: {{\"typing\":{{\"type\":\"On\"}}}}. {Levers}", "typing");
        return await SendFromCommunicationAsync(ctx, conversationId, communicationId, MessageKind.Event, null,
            [new MessageEvent("Typing", body.Typing.Type)], (_, _) => TypedResults.Accepted((string?)null), ct);
    }

    static async Task<Results<TSuccess, ApiError>> SendFromCommunicationAsync<TSuccess>(PlatformContext ctx, string conversationId,
        string communicationId, MessageKind kind, string? text, System.Collections.Immutable.ImmutableArray<MessageEvent> events,
        Func<Conversation, ConversationMessage, TSuccess> success, CancellationToken ct) where TSuccess : IResult
    {
        if (await ctx.Conversations.LoadAsync(conversationId, ct) is not { } conversation) return ApiError.NotFound("conversation", conversationId);
        if (conversation.FindByCommunication(communicationId) is not { } sender) return ApiError.NotFound("communication", communicationId);
        if (sender.Purpose == ParticipantPurpose.Customer)
            return ApiError.BadRequest($"Communication {ApiError.Clip(communicationId)} belongs to the customer; send as the bot or agent participant's communication.");
        var origin = sender.Purpose == ParticipantPurpose.Workflow ? "Bot" : "Human";
        var outcome = await ctx.Conversations.HandleAsync(conversationId,
            new AddMessage(Conversations.NewMessageId(), sender.Id, kind, text, events, origin), ct);
        return outcome.Status switch
        {
            OutcomeStatus.Done => success(outcome.Conversation!, outcome.Message!),
            OutcomeStatus.NotFound => (Results<TSuccess, ApiError>)ApiError.NotFound("conversation", conversationId),
            _ => EndedConflict(outcome.Conversation, outcome.Rejected!),
        };
    }

    static ApiError EndedConflict(Conversation? c, Rejection r) => r.Code switch
    {
        RejectionCode.ConversationActive => ApiError.Conflict("conversation.active",
            $"{r.Message} Set useExistingActiveConversation to true to send into it."),
        RejectionCode.ConversationEnded => ApiError.Conflict("conversation.ended",
            $"{r.Message} To reach the guest again, start a new conversation with POST /api/v2/conversations/messages/agentless."),
        _ => ApiError.Conflict("participant.disconnected", r.Message),
    };

    /// <summary>
    /// Bot-initiated contact. For web messaging (a Parley extension of the real request): <c>toAddressMessengerType</c>
    /// "webmessaging", <c>fromAddress</c> the deployment id, <c>toAddress</c> the guest session id (from
    /// <c>GET /api/v2/parley/webmessaging/sessions</c>). Starts a conversation, or with <c>useExistingActiveConversation</c>
    /// sends into the live one.
    /// </summary>
    static async Task<Results<WireJson<AgentlessResponse>, ApiError>> AgentlessAsync(HttpContext http, [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.AgentlessRequest);
        if (error is not null) return error;
        var b = body!;
        if (string.IsNullOrEmpty(b.ToAddressMessengerType))
            return ApiError.BadRequest("The field 'toAddressMessengerType' is required.", "toAddressMessengerType");
        if (b.ToAddressMessengerType is not ("webmessaging" or "open"))
            return ApiError.InvalidValue("toAddressMessengerType", b.ToAddressMessengerType, "open, webmessaging (sms and whatsapp are not supported)");
        if (string.IsNullOrEmpty(b.FromAddress)) return ApiError.BadRequest("The field 'fromAddress' (the deployment id) is required.", "fromAddress");
        if (string.IsNullOrEmpty(b.ToAddress)) return ApiError.BadRequest("The field 'toAddress' (the guest session id) is required.", "toAddress");
        if (string.IsNullOrEmpty(b.TextBody)) return ApiError.BadRequest("The field 'textBody' is required.", "textBody");
        if (b.TextBody.Length > ctx.Options.MaxPlatformTextLength)
            return ApiError.BadRequest($"The field 'textBody' may be at most {ctx.Options.MaxPlatformTextLength} characters.", "textBody");
        if (b.Campaign is { } campaign && (campaign.Length is 0 or > ParleyOptions.MaxCampaignLength || campaign.Any(char.IsControl)))
            return ApiError.BadRequest($"The field 'campaign' must be 1 to {ParleyOptions.MaxCampaignLength} characters, none of them control characters.", "campaign");

        var target = b.ToAddressMessengerType == "open"
            ? await OpenRecipientAsync(ctx, b.FromAddress, b.ToAddress, ct)
            : await WebGuestAsync(ctx, b.FromAddress, b.ToAddress, ct);
        if (target.Error is not null) return target.Error;
        var (session, channel) = (target.Session!, target.Channel!);
        var useExisting = b.UseExistingActiveConversation ?? false;

        var messageId = Conversations.NewMessageId();
        var outcome = await ctx.Conversations.SendToSessionAsync(session.Id, channel, MessageDirection.Outbound,
            c => new AddMessage(messageId, c.Participants.First(p => p.Purpose == ParticipantPurpose.Workflow).Id, MessageKind.Text,
                b.TextBody, [], "Bot"), ct, mayJoinLive: useExisting, start: new StartTags(b.Campaign, http.Caller().ClientId));
        if (outcome.Status != OutcomeStatus.Done) return outcome.Status == OutcomeStatus.NotFound
            ? ApiError.NotFound("guest session", b.ToAddress)
            : EndedConflict(outcome.Conversation, outcome.Rejected!);

        var c = outcome.Conversation!;
        var m = outcome.Message!;
        return PlatformResults.Json(new AgentlessResponse
        {
            Id = m.Id, ConversationId = c.Id, FromAddress = b.FromAddress, ToAddress = b.ToAddress, MessengerType = b.ToAddressMessengerType,
            UseExistingActiveConversation = useExisting, TextBody = m.Text, Message = PlatformWire.ToMessageData(c, m),
            Timestamp = Wire.Time(m.Timestamp), User = new AddressableRef(http.Caller().ClientId),
            SelfUri = PlatformWire.ConversationUri(c.Id),
        }, ParleyJson.Wire.AgentlessResponse);
    }

    sealed record AgentlessTarget(GuestSession? Session, ChannelSettings? Channel, ApiError? Error);

    static async Task<AgentlessTarget> WebGuestAsync(PlatformContext ctx, string deploymentId, string sessionId, CancellationToken ct)
    {
        if (await ctx.Directory.GetDeploymentAsync(deploymentId, ct) is not { } deployment)
            return new(null, null, ApiError.NotFound("deployment", deploymentId));
        if (await ctx.Sessions.GetAsync(sessionId, ct) is not { } session || session.DeploymentId != deployment.Id)
            return new(null, null, ApiError.NotFound("guest session", sessionId));
        return new(session, deployment.Settings, null);
    }

    /// <summary>An Open Messaging recipient: <c>fromAddress</c> the integration id, <c>toAddress</c> the channel's id of the person.</summary>
    static async Task<AgentlessTarget> OpenRecipientAsync(PlatformContext ctx, string integrationId, string address, CancellationToken ct)
    {
        if (await ctx.Directory.GetIntegrationAsync(integrationId, ct) is not { } integration)
            return new(null, null, ApiError.NotFound("integration", integrationId));
        var contact = await OpenMessaging.OpenMessagingApi.ContactAsync(ctx.Sessions, integration, address, "Opaque", null, ctx.Clock, ct);
        return new(contact, integration.Settings(contact.DisplayName), null);
    }
}
