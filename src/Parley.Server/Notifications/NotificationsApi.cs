using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Notifications;

/// <summary>
/// The Notifications API (docs/notifications.md): channels, subscriptions, available topics, and the channel WebSocket at
/// <c>connectUri</c> with the platform's heartbeat and ping/pong. Topics: <see cref="NotificationTopics"/>. A channel's
/// state is in the store, so any node answers for it; after each change every node is told (<see cref="IChangeBroadcast.ChannelChanged"/>)
/// so the one holding its socket re-reads it.
/// </summary>
public static class NotificationsApi
{
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(30);

    public static void MapNotificationsApi(this IEndpointRouteBuilder app)
    {
        var view = Permissions.ConversationView;
        var notifications = app.MapPlatformGroup("/notifications", "Notifications");
        notifications.MapPost("/channels", CreateAsync).RequirePermission(view).Produces<ChannelWire>();
        notifications.MapGet("/channels", ListAsync).RequirePermission(view).Produces<EntitiesWire<ChannelWire>>().Errors(400);
        notifications.MapMethods("/channels/{channelId}", ["HEAD"], async (string channelId, HttpContext http, NotificationHub hub, CancellationToken ct) =>
            await MineAsync(http, hub, channelId, ct) is not null ? Results.Ok() : Results.NotFound())
            .RequirePermission(view).Produces(200).Produces(404);
        notifications.MapGet("/channels/{channelId}/subscriptions", async (string channelId, HttpContext http, NotificationHub hub, CancellationToken ct) =>
            await MineAsync(http, hub, channelId, ct) is { } c ? Topics(c, []) : ApiError.NotFound("channel", channelId)).RequirePermission(view)
            .Produces<EntitiesWire<ChannelTopicWire>>().Errors(404);
        notifications.MapPost("/channels/{channelId}/subscriptions", (string channelId, bool? ignoreErrors, HttpContext http, NotificationHub hub,
            IChangeBroadcast nodes, NotificationQueues queues, CancellationToken ct) =>
            SubscribeAsync(channelId, ignoreErrors ?? false, replace: false, http, hub, nodes, queues, ct)).RequirePermission(view)
            .Accepts<List<ChannelTopicWire>>("application/json").Produces<EntitiesWire<ChannelTopicWire>>().Errors(400, 404, 413);
        notifications.MapPut("/channels/{channelId}/subscriptions", (string channelId, bool? ignoreErrors, HttpContext http, NotificationHub hub,
            IChangeBroadcast nodes, NotificationQueues queues, CancellationToken ct) =>
            SubscribeAsync(channelId, ignoreErrors ?? false, replace: true, http, hub, nodes, queues, ct)).RequirePermission(view)
            .Accepts<List<ChannelTopicWire>>("application/json").Produces<EntitiesWire<ChannelTopicWire>>().Errors(400, 404, 413);
        notifications.MapDelete("/channels/{channelId}/subscriptions", async (string channelId, HttpContext http, NotificationHub hub, IChangeBroadcast nodes,
            CancellationToken ct) =>
        {
            if (await MineAsync(http, hub, channelId, ct) is null) return ApiError.NotFound("channel", channelId);
            await hub.SubscribeAsync(channelId, [], replace: true, ct);
            nodes.ChannelChanged(channelId);
            return Results.NoContent();
        }).RequirePermission(view).Produces(204).Errors(404);
        // expand and includePreview are the SDK's options; every topic's body is described in full either way.
        notifications.MapGet("/availabletopics", (string[]? expand, bool? includePreview) => Results.Json(
            new EntitiesWire<AvailableTopicWire>([.. NotificationTopics.All.Select(t => new AvailableTopicWire
            {
                Id = t.Pattern, Description = t.Description, RequiresPermissions = [t.Permission], Visibility = "Public", Schema = t.Schema(),
            })]), ParleyJson.Wire.EntitiesWireAvailableTopicWire)).RequirePermission(view).Produces<EntitiesWire<AvailableTopicWire>>();
        app.Map("/channels/{channelId}", ChannelSocketAsync);
    }

    /// <summary>
    /// The channel when the caller's token owns it: same client and same user (a client-credentials token owns the
    /// channels it created without a user). Anyone else's is not found, as the platform answers.
    /// </summary>
    static async Task<NotificationChannelState?> MineAsync(HttpContext http, NotificationHub hub, string id, CancellationToken ct) =>
        await hub.FindAsync(id, ct) is { } c && c.ClientId == http.Caller().ClientId && c.UserId == http.Caller().UserId ? c : null;

    /// <summary>
    /// <c>includechannels=token</c> (the default): the channels of this token's client and user. <c>oauthclient</c>: every
    /// channel of the client, for a client-credentials token only; a user's token still sees only its user's own (one
    /// console user must not see another's connectUri).
    /// </summary>
    static async Task<IResult> ListAsync(string? includechannels, HttpContext http, NotificationHub hub, CancellationToken ct)
    {
        var caller = http.Caller();
        IReadOnlyList<NotificationChannelState> channels;
        if (includechannels is null || includechannels.Equals("token", StringComparison.OrdinalIgnoreCase)
            || (includechannels.Equals("oauthclient", StringComparison.OrdinalIgnoreCase) && caller.UserId is not null))
            channels = await hub.OfAsync(caller.ClientId, caller.UserId, ct);
        else if (includechannels.Equals("oauthclient", StringComparison.OrdinalIgnoreCase))
            channels = await hub.OfClientAsync(caller.ClientId, ct);
        else
            return ApiError.BadRequest($"includechannels is token or oauthclient, not {ApiError.Clip(includechannels)}.");
        return Results.Json(new EntitiesWire<ChannelWire>([.. channels.Select(c => ChannelJson(http, c))]), ParleyJson.Wire.EntitiesWireChannelWire);
    }

    static ChannelWire ChannelJson(HttpContext http, NotificationChannelState c) =>
        new($"{PublicAddress.Of(http).WebSocket}/channels/{c.Id}", c.Id, Wire.Time(c.Expires));

    static async Task<IResult> CreateAsync(HttpContext http, NotificationHub hub, IChangeBroadcast nodes, CancellationToken ct)
    {
        var (channel, evicted) = await hub.CreateAsync(http.Caller().ClientId, http.Caller().UserId, ct);
        foreach (var id in evicted) nodes.ChannelChanged(id);   // an evicted channel's socket closes wherever it is
        return Results.Json(ChannelJson(http, channel), ParleyJson.Wire.ChannelWire);
    }

    static IResult Topics(NotificationChannelState c, List<ChannelTopicWire> rejected) => Results.Json(
        new EntitiesWire<ChannelTopicWire>([.. c.Topics.Select(t => new ChannelTopicWire { Id = t, State = "Permitted" }), .. rejected]),
        ParleyJson.Wire.EntitiesWireChannelTopicWire);

    static async Task<IResult> SubscribeAsync(string channelId, bool ignoreErrors, bool replace, HttpContext http, NotificationHub hub,
        IChangeBroadcast nodes, NotificationQueues queues, CancellationToken ct)
    {
        if (await MineAsync(http, hub, channelId, ct) is not { } channel) return ApiError.NotFound("channel", channelId);
        var (bytes, tooLarge) = await http.ReadBodyAsync();
        if (tooLarge is not null) return tooLarge;
        List<string?> wanted;
        try
        {
            var body = JsonNode.Parse(bytes)?.AsArray();
            if (body?.Count > NotificationHub.MaxTopicsPerChannel)
                return ApiError.BadRequest($"One request may name at most {NotificationHub.MaxTopicsPerChannel} topics (a channel's limit); nothing was changed.");
            // Inside the try: a JsonObject reads its properties lazily, and a duplicate key (ArgumentException) or an
            // invalid string (InvalidOperationException) surfaces only here.
            wanted = (body ?? []).Select(t => t is JsonObject o && o["id"] is JsonValue v && v.TryGetValue<string>(out var id) ? id : null).ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return ApiError.MalformedJson("the body is a JSON array of {\"id\":\"<topic>\"}");
        }

        var caller = http.Caller();
        var permitted = new List<string>();
        var rejected = new List<ChannelTopicWire>();
        foreach (var topic in wanted.Distinct())
        {
            var refusal = await RefusalAsync(topic, caller, queues, ct);
            if (refusal is null) permitted.Add(topic!);
            else rejected.Add(refusal);
        }
        if (rejected.Count > 0 && !ignoreErrors)
        {
            var unserved = rejected.Where(r => r.MissingPermissions is null).ToList();
            if (unserved.Count == 0)
                return ApiError.MissingPermissions(string.Join(", ", rejected.SelectMany(r => r.MissingPermissions!).Distinct()));
            return ApiError.BadRequest($"Topic(s) refused: {ApiError.Sample(unserved.Select(r => $"{r.Id} ({r.RejectionReason})"))}. " +
                $"Parley publishes: {string.Join(", ", NotificationTopics.All.Select(t => t.Pattern))}. Nothing was changed.");
        }
        var total = replace ? permitted.Count : channel.Topics.Union(permitted).Count();
        if (total > NotificationHub.MaxTopicsPerChannel)
            return ApiError.BadRequest($"A channel may have at most {NotificationHub.MaxTopicsPerChannel} topics; nothing was changed.");
        if (await hub.SubscribeAsync(channelId, permitted, replace, ct) is not { } after) return ApiError.NotFound("channel", channelId);
        nodes.ChannelChanged(channelId);   // subscribing extends the channel's life; the node holding its socket re-reads it
        return Topics(after, rejected);
    }

    /// <summary>Why <paramref name="topic"/> cannot be subscribed to by this caller, as a Rejected ChannelTopic; null when it can.</summary>
    static async Task<ChannelTopicWire?> RefusalAsync(string? topic, Caller caller, NotificationQueues queues, CancellationToken ct)
    {
        var id = ApiError.Clip(topic ?? "null");
        if (topic is null || NotificationTopics.Find(topic) is not var (served, subject))
            return new ChannelTopicWire { Id = id, State = "Rejected", RejectionReason = "Parley does not publish this topic." };
        if (!caller.Has(served.Permission))
            return new ChannelTopicWire { Id = id, State = "Rejected", RejectionReason = "Missing permission.", MissingPermissions = [served.Permission] };
        if (served.Subject == TopicSubject.Queue && !await queues.ExistsAsync(subject, ct))
            return new ChannelTopicWire { Id = id, State = "Rejected", RejectionReason = $"No queue {subject}." };
        return null;
    }

    /// <summary>The channel's WebSocket: no further auth (the channel id is the capability), heartbeats, ping → pong.</summary>
    static async Task ChannelSocketAsync(string channelId, HttpContext http, NotificationHub hub)
    {
        if (await hub.FindAsync(channelId, http.RequestAborted) is not { } channel)
        {
            await ApiError.NotFound("channel", channelId).ExecuteAsync(http);
            return;
        }
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await ApiError.BadRequest("Open this channel's connectUri with a WebSocket.").ExecuteAsync(http);
            return;
        }
        var arrival = hub.Arrive();   // before the 101: a client told it is connected holds the earlier place
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        await hub.ServeAsync(channel, socket, arrival, http.RequestAborted);
    }
}
