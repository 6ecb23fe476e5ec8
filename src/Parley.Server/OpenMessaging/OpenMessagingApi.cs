using System.Collections.Immutable;
using Microsoft.AspNetCore.Http.HttpResults;
using System.Text.Json;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Platform;
using Parley.Server.Protocol;

namespace Parley.Server.OpenMessaging;

/// <summary>
/// Open Messaging (docs/compatibility.md §Open Messaging inbound): integrations CRUD, inbound message / event / receipt from the channel's middleware, and
/// Parley's delivery list (dead letters and redelivery). Outbound goes through the outbox (<see cref="WebhookRelay"/>).
/// </summary>
public static class OpenMessagingApi
{
    const string IntegrationsPath = "/api/v2/conversations/messaging/integrations/open";
    const int MinSecretLength = 16;

    public static void MapOpenMessagingApi(this IEndpointRouteBuilder app)
    {
        const string json = "application/json";
        var integrations = app.MapPlatformGroup("/conversations/messaging/integrations", "Open Messaging: integrations");
        integrations.MapPost("/open", CreateAsync).RequirePermission(Permissions.IntegrationEdit)
            .Accepts<OpenIntegrationRequest>(json).Errors(400, 413, 415);
        integrations.MapGet("/open", ListAsync).RequirePermission(Permissions.IntegrationView).Errors(400);
        integrations.MapGet("/open/{integrationId}", GetAsync).RequirePermission(Permissions.IntegrationView).Errors(404);
        integrations.MapPatch("/open/{integrationId}", UpdateAsync).RequirePermission(Permissions.IntegrationEdit)
            .Accepts<OpenIntegrationRequest>(json).Errors(400, 404, 413, 415);
        integrations.MapDelete("/open/{integrationId}", DeleteAsync).RequirePermission(Permissions.IntegrationEdit).Errors(404);

        // The platform-facing inbound side: what a channel's middleware posts.
        var inbound = app.MapPlatformGroup("/conversations/messages", "Open Messaging: inbound");
        inbound.MapPost("/{integrationId}/inbound/open/message", InboundMessageAsync).RequirePermission(Permissions.InboundReceive)
            .AddEndpointFilter(CheckOptionalSignature).Accepts<OpenInbound>(json).Produces<OpenNormalized>().Errors(400, 401, 404, 409, 413, 415);
        inbound.MapPost("/{integrationId}/inbound/open/event", InboundEventAsync).RequirePermission(Permissions.InboundReceive)
            .AddEndpointFilter(CheckOptionalSignature).Accepts<OpenInbound>(json).Produces<OpenNormalized>().Errors(400, 401, 404, 409, 413, 415);
        inbound.MapPost("/{integrationId}/inbound/open/receipt", InboundReceiptAsync).RequirePermission(Permissions.InboundReceive)
            .AddEndpointFilter(CheckOptionalSignature).Accepts<OpenInbound>(json).Produces<OpenNormalized>().Errors(400, 401, 404, 413, 415);
        inbound.MapPost("/{integrationId}/inbound/open/structured/response", (string integrationId) =>
            ApiError.BadRequest("Structured responses (quick replies, cards) are not supported yet; send a Text message to …/inbound/open/message."))
            .RequirePermission(Permissions.InboundReceive).Errors(400);
        inbound.MapPost("/inbound/open", InboundDeprecatedAsync).RequirePermission(Permissions.InboundReceive)
            .Accepts<OpenInbound>(json).Produces<OpenNormalized>().Errors(400, 404, 409, 413, 415);

        var deliveries = app.MapPlatformGroup("/parley/openmessaging", "Parley: webhook deliveries");
        deliveries.MapGet("/deliveries", ListDeliveriesAsync).RequirePermission(Permissions.IntegrationView).Errors(400);
        deliveries.MapPost("/deliveries/{deliveryId}/redeliver", RedeliverAsync).RequirePermission(Permissions.IntegrationEdit).Errors(404, 409);
    }

    /// <summary>
    /// Inbound posts are authenticated by the bearer token, as on the platform, and need no signature. One that carries
    /// a signature anyway is held to it, against each secret in force (the new and, during a rotation's overlap, the old):
    /// <c>X-Hub-Signature-256</c> (the HMAC of the raw body) and <c>Parley-Webhook-Signature</c> (Stripe's scheme, whose
    /// timestamp must be within the replay window) must match, or the request is refused (401 <c>signature.invalid</c>)
    /// before anything is stored.
    /// </summary>
    static async ValueTask<object?> CheckOptionalSignature(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
    {
        var http = ctx.HttpContext;
        var hub = http.Request.Headers[WebhookSignature.HubHeader].ToString();
        var timestamped = http.Request.Headers[WebhookSignature.SignatureHeader].ToString();
        if (hub.Length == 0 && timestamped.Length == 0) return await next(ctx);
        var directory = http.RequestServices.GetRequiredService<IDirectoryStore>();
        var integrationId = (string)http.Request.RouteValues["integrationId"]!;
        if (await directory.GetIntegrationAsync(integrationId, http.RequestAborted) is not { } integration)
            return ApiError.NotFound("integration", integrationId);
        // Bounded like every body (413 past the limit); the handler then reads the same bytes again.
        var (body, tooLarge) = await http.ReadBodyAsync();
        if (tooLarge is not null) return tooLarge;
        http.Request.Body = new MemoryStream(body!, writable: false);
        var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var secrets = integration.SecretsInForce(now);
        if (hub.Length > 0 && !WebhookSignature.VerifyHub(hub, body!, secrets))
            return new ApiError(401, "signature.invalid",
                "X-Hub-Signature-256 does not match the body: it must be sha256=<base64 HMAC-SHA256 of the raw body, keyed with the integration's secret>. Nothing was stored.");
        if (timestamped.Length > 0)
        {
            var tolerance = http.RequestServices.GetRequiredService<ParleyOptions>().WebhookSignatureTolerance;
            var problem = WebhookSignature.Verify(timestamped, body!, secrets, now, tolerance) switch
            {
                WebhookSignature.Verdict.Valid => null,
                WebhookSignature.Verdict.OutsideWindow =>
                    $"Parley-Webhook-Signature's timestamp t is more than {tolerance.TotalSeconds:0} s from the server's clock (a replay, or a clock that is off). Nothing was stored.",
                WebhookSignature.Verdict.Malformed =>
                    "Parley-Webhook-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{raw body}\", keyed with the integration's secret>. Nothing was stored.",
                _ => "Parley-Webhook-Signature does not match the body: no v1 is the hex HMAC-SHA256 of \"{t}.{raw body}\" with the integration's secret. Nothing was stored.",
            };
            if (problem is not null) return new ApiError(401, "signature.invalid", problem);
        }
        return await next(ctx);
    }

    // ------------------------------------------------------------------ integrations

    /// <summary>The secret is never echoed in full: only its last four characters.</summary>
    static string Mask(string secret) => "********" + secret[^Math.Min(4, secret.Length)..];

    public static OpenIntegrationWire ToWire(OpenIntegration i, DateTimeOffset now) => new()
    {
        Id = i.Id, Name = i.Name, OutboundNotificationWebhookUrl = i.WebhookUrl,
        OutboundNotificationWebhookSignatureSecretToken = Mask(i.SecretToken),
        // Header values can be credentials too: names are shown, values masked.
        WebhookHeaders = i.WebhookHeaders.ToDictionary(h => h.Key, h => "********"),
        Recipient = new AddressableRef(i.Id, i.Name, $"/api/v2/routing/message/recipients/{i.Id}"),
        DateCreated = Wire.Time(i.DateCreated), DateModified = Wire.Time(i.DateModified),
        CreatedBy = new AddressableRef(i.CreatedBy), ModifiedBy = new AddressableRef(i.ModifiedBy),
        DisconnectNotification = i.DisconnectNotification,
        ConversationDisconnect = new ConversationDisconnectConfig(true, i.InboundAfterEnd.ToString()),
        PreviousSecretExpiresAt = i.SecretsInForce(now).Count > 1 ? Wire.Time(i.PreviousSecretExpiresAt) : null,
        QueueId = i.QueueId,
        SelfUri = $"{IntegrationsPath}/{i.Id}",
    };

    static ApiError? Validate(OpenIntegrationRequest b, bool creating, ParleyOptions options)
    {
        if (creating && string.IsNullOrWhiteSpace(b.Name)) return ApiError.BadRequest("The field 'name' is required.", "name");
        if (b.Name is { Length: > 200 }) return ApiError.BadRequest("The field 'name' may be at most 200 characters.", "name");
        if (creating && string.IsNullOrEmpty(b.OutboundNotificationWebhookUrl))
            return ApiError.BadRequest("The field 'outboundNotificationWebhookUrl' is required.", "outboundNotificationWebhookUrl");
        if (b.OutboundNotificationWebhookUrl is { } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0))
            return ApiError.InvalidValue("outboundNotificationWebhookUrl", Bounded(url), "an absolute http:// or https:// URL without credentials");
        if (b.OutboundNotificationWebhookUrl is not null && !options.WebhooksAllowPrivateNetworks
            && WebhookNetworkGuard.ProblemWithUrl(new Uri(b.OutboundNotificationWebhookUrl)) is { } internalTarget)
            return ApiError.BadRequest($"The field 'outboundNotificationWebhookUrl' is refused: {internalTarget}. Webhooks go to public " +
                "addresses only; for a receiver on this machine or a private network (local development), start Parley with " +
                "Parley__Webhooks__AllowPrivateNetworks=true.", "outboundNotificationWebhookUrl");
        if (WebhookHeaderRules.Problem(b.WebhookHeaders) is { } badHeader)
            return ApiError.BadRequest($"The field 'webhookHeaders' is refused: {badHeader}", "webhookHeaders");
        if (b.SecretRotationOverlapSeconds is { } overlap && (overlap < 0 || overlap > ParleyOptions.MaxSecretRotationOverlap.TotalSeconds))
            return ApiError.BadRequest($"The field 'secretRotationOverlapSeconds' must be between 0 and {ParleyOptions.MaxSecretRotationOverlap.TotalSeconds:0}.",
                "secretRotationOverlapSeconds");
        if (creating && string.IsNullOrEmpty(b.OutboundNotificationWebhookSignatureSecretToken))
            return ApiError.BadRequest("The field 'outboundNotificationWebhookSignatureSecretToken' is required.", "outboundNotificationWebhookSignatureSecretToken");
        if (b.OutboundNotificationWebhookSignatureSecretToken is { Length: < MinSecretLength })
            return ApiError.BadRequest($"The field 'outboundNotificationWebhookSignatureSecretToken' must be at least {MinSecretLength} characters.",
                "outboundNotificationWebhookSignatureSecretToken");
        if (b.ConversationDisconnect?.Type is { } type && type is not ("ReadOnly" or "Send"))
            return ApiError.InvalidValue("conversationDisconnect.type", type, "ReadOnly, Send");
        return null;
    }

    /// <summary>A caller's value for an error message: never unbounded.</summary>
    static string Bounded(string value) => value.Length <= 200 ? value : value[..200] + "…";

    static async Task<Results<WireJson<OpenIntegrationWire>, ApiError>> CreateAsync(HttpContext http, IDirectoryStore directory, ParleyOptions options,
        TimeProvider clock, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OpenIntegrationRequest);
        if (error is not null) return error;
        if (Validate(body!, creating: true, options) is { } invalid) return invalid;
        var b = body!;
        var (queueId, unrouted) = await RoutingApi.RouteAsync(directory, b.QueueId, null, options, ct);
        if (unrouted is not null) return unrouted;
        var now = clock.GetUtcNow();
        var caller = http.Caller().ClientId;
        var integration = new OpenIntegration(Guid.NewGuid().ToString(), b.Name!.Trim(), b.OutboundNotificationWebhookUrl!,
            b.OutboundNotificationWebhookSignatureSecretToken!, (b.WebhookHeaders ?? []).ToImmutableDictionary(),
            b.DisconnectNotification ?? true, Enum.Parse<DisconnectMode>(b.ConversationDisconnect?.Type ?? "ReadOnly"), now, now, caller, caller)
        {
            QueueId = queueId!,
        };
        await directory.UpsertIntegrationAsync(integration, ct);
        return PlatformResults.Json(ToWire(integration, now), ParleyJson.Wire.OpenIntegrationWire);
    }

    static async Task<Results<WireJson<EntityListing<OpenIntegrationWire>>, ApiError>> ListAsync(int? pageSize, int? pageNumber, IDirectoryStore directory, TimeProvider clock, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number, maxSize: 500) is { } bad) return bad;
        var page = await directory.ListIntegrationsAsync(size, number, ct);
        return PlatformResults.Json(PlatformRequest.Listing(page.Entities.Select(i => ToWire(i, clock.GetUtcNow())).ToList(), IntegrationsPath, size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingOpenIntegrationWire);
    }

    static async Task<Results<WireJson<OpenIntegrationWire>, ApiError>> GetAsync(string integrationId, IDirectoryStore directory, TimeProvider clock,
        CancellationToken ct) =>
        await directory.GetIntegrationAsync(integrationId, ct) is { } i
            ? PlatformResults.Json(ToWire(i, clock.GetUtcNow()), ParleyJson.Wire.OpenIntegrationWire)
            : ApiError.NotFound("integration", integrationId);

    static async Task<Results<WireJson<OpenIntegrationWire>, ApiError>> UpdateAsync(string integrationId, HttpContext http, IDirectoryStore directory, ParleyOptions options, TimeProvider clock,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OpenIntegrationRequest);
        if (error is not null) return error;
        if (Validate(body!, creating: false, options) is { } invalid) return invalid;
        if (await directory.GetIntegrationAsync(integrationId, ct) is not { } i) return ApiError.NotFound("integration", integrationId);
        var b = body!;
        var (queueId, unrouted) = await RoutingApi.RouteAsync(directory, b.QueueId, i.QueueId, options, ct);
        if (unrouted is not null) return unrouted;
        var now = clock.GetUtcNow();
        var overlap = b.SecretRotationOverlapSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : options.WebhookSecretRotationOverlap;
        // A new secret starts a rotation: the old one stays in force for the overlap. An overlap alone ends a running one sooner.
        var rotated = b.OutboundNotificationWebhookSignatureSecretToken is { } secret ? i.RotateSecret(secret, overlap, now)
            : b.SecretRotationOverlapSeconds is not null ? i.ShortenOverlap(overlap, now)
            : i;
        var updated = rotated with
        {
            Name = b.Name?.Trim() ?? i.Name,
            WebhookUrl = b.OutboundNotificationWebhookUrl ?? i.WebhookUrl,
            WebhookHeaders = b.WebhookHeaders?.ToImmutableDictionary() ?? i.WebhookHeaders,
            DisconnectNotification = b.DisconnectNotification ?? i.DisconnectNotification,
            InboundAfterEnd = b.ConversationDisconnect?.Type is { } type ? Enum.Parse<DisconnectMode>(type) : i.InboundAfterEnd,
            QueueId = queueId!,
            DateModified = now,
            ModifiedBy = http.Caller().ClientId,
        };
        await directory.UpsertIntegrationAsync(updated, ct);
        return PlatformResults.Json(ToWire(updated, now), ParleyJson.Wire.OpenIntegrationWire);
    }

    static async Task<Results<NoContent, ApiError>> DeleteAsync(string integrationId, IDirectoryStore directory, CancellationToken ct) =>
        await directory.DeleteIntegrationAsync(integrationId, ct) ? TypedResults.NoContent() : ApiError.NotFound("integration", integrationId);

    // ------------------------------------------------------------------ inbound

    sealed record Sender(OpenIntegration Integration, GuestSession Contact);

    /// <summary>The request's integration and the sender's contact (created on first contact); or the error to answer.</summary>
    static async Task<(Sender?, ApiError?)> ResolveSenderAsync(string integrationId, OpenInbound body, PlatformContext ctx, TimeProvider clock,
        CancellationToken ct)
    {
        if (await ctx.Directory.GetIntegrationAsync(integrationId, ct) is not { } integration) return (null, ApiError.NotFound("integration", integrationId));
        if (body.Channel is not { } channel) return (null, ApiError.BadRequest("The field 'channel' is required.", "channel"));
        if (channel.From is not { } from || string.IsNullOrEmpty(from.Id)) return (null, ApiError.BadRequest("The field 'channel.from.id' is required.", "channel.from.id"));
        if (from.IdType is not ("Email" or "Phone" or "Opaque"))
            return (null, ApiError.InvalidValue("channel.from.idType", from.IdType ?? "", "Email, Phone, Opaque"));
        if (string.IsNullOrEmpty(channel.Time)) return (null, ApiError.BadRequest("The field 'channel.time' is required.", "channel.time"));
        if (!DateTimeOffset.TryParse(channel.Time, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out _))
            return (null, new ApiError(400, "invalid.date", "Dates must be specified as ISO-8601 strings. For example: yyyy-MM-ddTHH:mm:ss.SSSZ", "channel.time"));

        var name = from.Nickname ?? string.Join(' ', new[] { from.FirstName, from.LastName }.Where(n => !string.IsNullOrEmpty(n)));
        var contact = await ContactAsync(ctx.Sessions, integration, from.Id, from.IdType, name.Length > 0 ? name : null, clock, ct);
        return (new Sender(integration, contact), null);
    }

    /// <summary>
    /// The person at <paramref name="address"/> on this integration's channel, as a session (created on first contact),
    /// keyed by a hash of integration and address: one live conversation per person per channel.
    /// </summary>
    public static async Task<GuestSession> ContactAsync(IGuestSessionStore sessions, OpenIntegration integration, string address,
        string idType, string? name, TimeProvider clock, CancellationToken ct)
    {
        var hash = Tokens.HashGuestToken(integration.Id, "open:" + address);
        return await sessions.FindByTokenHashAsync(hash, ct)
            ?? await sessions.CreateAsync(new GuestSession(Guid.NewGuid().ToString(), hash, integration.Id, null, clock.GetUtcNow(),
                ChannelKind.Open, address, idType, name), ct);
    }

    static async Task<IResult> InboundMessageAsync(string integrationId, bool? prefetchConversationId, HttpContext http,
        [AsParameters] PlatformContext ctx, TimeProvider clock, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OpenInbound);
        if (error is not null) return error;
        return await ReceiveMessageAsync(integrationId, body!, prefetchConversationId ?? false, ctx, clock, ct);
    }

    static async Task<IResult> ReceiveMessageAsync(string integrationId, OpenInbound b, bool prefetch, PlatformContext ctx, TimeProvider clock,
        CancellationToken ct)
    {
        if (b.Content is { Count: > 0 })
            return ApiError.BadRequest("Attachments and other content are not supported yet; send 'text'.", "content");
        if (string.IsNullOrEmpty(b.Text)) return ApiError.BadRequest("The field 'text' is required.", "text");
        if (b.Text.Length > ctx.Options.MaxOpenTextLength)
            return ApiError.BadRequest($"The field 'text' may be at most {ctx.Options.MaxOpenTextLength} characters.", "text");
        var (sender, problem) = await ResolveSenderAsync(integrationId, b, ctx, clock, ct);
        if (problem is not null) return problem;
        var (integration, contact) = sender!;

        // The channel's messageId makes a re-post (a retry, a replay) idempotent: the first answer is given again.
        var key = b.Channel!.MessageId is { Length: > 0 } channelMessageId ? $"{integration.Id}\n{channelMessageId}" : null;
        if (key is not null && await ctx.Store.FindByExternalKeyAsync(key, ct) is { } seen)
            return Normalized(integration, contact, seen, b.Channel, prefetch);

        Outcome outcome;
        try
        {
            outcome = await ctx.Conversations.SendToSessionAsync(contact.Id, integration.Settings(contact.DisplayName), MessageDirection.Inbound,
                c => new AddMessage(Conversations.NewMessageId(), c.Customer.Id, MessageKind.Text, b.Text, [], null,
                    b.Metadata?.ToImmutableDictionary(), ExternalKey: key), ct);
        }
        catch (DuplicateMessageException)
        {
            // The same messageId posted twice at once: the first one stored is the answer to both.
            var raced = await ctx.Store.FindByExternalKeyAsync(key!, ct);
            return Normalized(integration, contact, raced!, b.Channel, prefetch);
        }
        return outcome.Status switch
        {
            OutcomeStatus.Done => Normalized(integration, contact, outcome.Message!, b.Channel, prefetch),
            OutcomeStatus.Rejected when outcome.Rejected!.Code == RejectionCode.ConversationEnded => EndedForSender(outcome.Conversation),
            OutcomeStatus.Rejected => ApiError.BadRequest(outcome.Rejected!.Message),
            _ => ApiError.NotFound("sender", b.Channel.From!.Id!),
        };
    }

    static ApiError EndedForSender(Conversation? c) => ApiError.Conflict("conversation.ended",
        $"Conversation {c?.Id} was ended by the business and this integration refuses further inbound messages for it " +
        "(conversationDisconnect ReadOnly); nothing was stored. The business can start a new conversation with " +
        "POST /api/v2/conversations/messages/agentless, or set the integration's conversationDisconnect type to Send.");

    static IResult Normalized(OpenIntegration integration, GuestSession contact, ConversationMessage m, OpenChannel? sent, bool prefetch) =>
        Results.Json(OpenBodies.Inbound(integration, contact, m, sent, prefetch ? m.ConversationId : null), ParleyJson.Wire.OpenNormalized);

    static async Task<IResult> InboundEventAsync(string integrationId, HttpContext http, [AsParameters] PlatformContext ctx, TimeProvider clock,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OpenInbound);
        if (error is not null) return error;
        var b = body!;
        if (b.Events is not { Count: > 0 }) return ApiError.BadRequest("The field 'events' is required: [{\"eventType\":\"Typing\",\"typing\":{\"type\":\"On\"}}].", "events");
        foreach (var e in b.Events)
            if (e?.EventType != "Typing")
                return ApiError.InvalidValue("events[].eventType", e?.EventType ?? "",
                    $"Typing (Open Messaging has no other inbound event; there is no 'hangup'). {ConversationsApi.Levers}");
        var (sender, problem) = await ResolveSenderAsync(integrationId, b, ctx, clock, ct);
        if (problem is not null) return problem;
        var (integration, contact) = sender!;
        var outcome = await ctx.Conversations.SendToSessionAsync(contact.Id, integration.Settings(contact.DisplayName), MessageDirection.Inbound,
            c => new AddMessage(Conversations.NewMessageId(), c.Customer.Id, MessageKind.Event, null, [new MessageEvent("Typing", "On")], null), ct);
        return outcome.Status switch
        {
            OutcomeStatus.Done => Normalized(integration, contact, outcome.Message!, b.Channel, prefetch: false),
            OutcomeStatus.Rejected when outcome.Rejected!.Code == RejectionCode.ConversationEnded => EndedForSender(outcome.Conversation),
            _ => ApiError.BadRequest(outcome.Rejected?.Message ?? "The event could not be accepted."),
        };
    }

    static readonly ImmutableDictionary<string, string> ReceiptStatus = new Dictionary<string, string>
    {
        ["Sent"] = "sent", ["Delivered"] = "delivery-success", ["Read"] = "read", ["Failed"] = "delivery-failed",
        ["Published"] = "published", ["Removed"] = "removed",
    }.ToImmutableDictionary();

    static async Task<IResult> InboundReceiptAsync(string integrationId, HttpContext http, [AsParameters] PlatformContext ctx, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OpenInbound);
        if (error is not null) return error;
        return await ReceiveReceiptAsync(integrationId, body!, ctx, ct);
    }

    static async Task<IResult> ReceiveReceiptAsync(string integrationId, OpenInbound b, PlatformContext ctx, CancellationToken ct)
    {
        if (await ctx.Directory.GetIntegrationAsync(integrationId, ct) is not { } integration) return ApiError.NotFound("integration", integrationId);
        if (string.IsNullOrEmpty(b.Id)) return ApiError.BadRequest("The field 'id' (the outbound message id) is required.", "id");
        if (b.Channel is null) return ApiError.BadRequest("The field 'channel' is required.", "channel");
        if (b.Status is null || !ReceiptStatus.TryGetValue(b.Status, out var status))
            return ApiError.InvalidValue("status", b.Status ?? "", string.Join(", ", ReceiptStatus.Keys));
        var message = await ctx.Store.GetMessageAsync(b.Id, ct);
        var conversation = message is null ? null : await ctx.Store.LoadAsync(message.ConversationId, ct);
        if (message is null || conversation is null || conversation.DeploymentId != integration.Id || message.Direction != MessageDirection.Outbound)
            return ApiError.NotFound("outbound message", b.Id);
        await ctx.Store.SetMessageStatusAsync(message.Id, status, ct);
        var contact = await ctx.Sessions.GetAsync(conversation.GuestSessionId, ct);
        return Results.Json(new OpenNormalized
        {
            Id = message.Id, Channel = OpenBodies.Channel(integration, contact, message.Id, message.Timestamp, outbound: true),
            Type = "Receipt", Status = b.Status, Reasons = b.Reasons, IsFinalReceipt = b.IsFinalReceipt, Direction = "Outbound",
        }, ParleyJson.Wire.OpenNormalized);
    }

    /// <summary>The deprecated single inbound endpoint: the integration id is in channel.to.id; type Text or Receipt.</summary>
    static async Task<IResult> InboundDeprecatedAsync(HttpContext http, [AsParameters] PlatformContext ctx, TimeProvider clock, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OpenInbound);
        if (error is not null) return error;
        var b = body!;
        if (b.Channel?.To?.Id is not { Length: > 0 } integrationId)
            return ApiError.BadRequest("The field 'channel.to.id' (the integration id) is required.", "channel.to.id");
        return b.Type switch
        {
            "Text" or null => await ReceiveMessageAsync(integrationId, b, prefetch: true, ctx, clock, ct),
            "Receipt" => await ReceiveReceiptAsync(integrationId, b, ctx, ct),
            _ => ApiError.InvalidValue("type", b.Type, "Text, Receipt"),
        };
    }

    // ------------------------------------------------------------------ deliveries (Parley extension)

    static DeliveryWire ToWire(OutboxDelivery d) => new(d.Item.Id, d.Item.Destination, d.Item.MessageId, d.Item.ConversationId, d.State.ToString(),
        d.Attempts, d.LastStatus, d.LastError, Wire.Time(d.CreatedAt), Wire.Time(d.DeliveredAt),
        JsonDocument.Parse(d.Item.Body).RootElement, $"/api/v2/parley/openmessaging/deliveries/{d.Item.Id}");

    static async Task<Results<WireJson<EntityListing<DeliveryWire>>, ApiError>> ListDeliveriesAsync(string? state, string? integrationId, int? pageSize, int? pageNumber, IOutbox outbox,
        CancellationToken ct)
    {
        if (!Enum.TryParse<DeliveryState>(state ?? "Dead", ignoreCase: true, out var s))
            return ApiError.InvalidValue("state", state!, "Pending, Delivered, Dead");
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await outbox.ListDeliveriesAsync(s, integrationId, size, number, ct);
        return PlatformResults.Json(new EntityListing<DeliveryWire>
        {
            Entities = page.Entities.Select(ToWire).ToList(), PageSize = size, PageNumber = number, Total = page.Total, PageCount = page.PageCount,
        }, ParleyJson.Wire.EntityListingDeliveryWire);
    }

    static async Task<Results<WireAccepted<DeliveryWire>, ApiError>> RedeliverAsync(string deliveryId, IOutbox outbox, WebhookRelay relay, TimeProvider clock, CancellationToken ct)
    {
        if (await outbox.GetDeliveryAsync(deliveryId, ct) is not { } d) return ApiError.NotFound("delivery", deliveryId);
        if (!await outbox.RedeliverAsync(deliveryId, clock.GetUtcNow(), ct))
            return ApiError.Conflict("delivery.not.dead", $"Delivery {ApiError.Clip(deliveryId)} is {d.State}; only a dead-lettered delivery can be redelivered.");
        relay.Wake();
        return PlatformResults.Accepted(ToWire((await outbox.GetDeliveryAsync(deliveryId, ct))!), ParleyJson.Wire.DeliveryWire);
    }
}
