using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Notifications;

/// <summary>
/// The Notifications API (docs/compatibility.md §Notification channels): channels, subscriptions, available topics, and the channel WebSocket at
/// <c>connectUri</c> with the platform's heartbeat and ping/pong. Topics: <see cref="NotificationHub.TopicPatterns"/>.
/// </summary>
public static class NotificationsApi
{
    const string Channels = "/api/v2/notifications/channels";
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(30);

    public static void MapNotificationsApi(this IEndpointRouteBuilder app)
    {
        var view = Permissions.ConversationView;
        app.MapPost(Channels, Create).RequirePermission(view);
        app.MapGet(Channels, (HttpContext http, NotificationHub hub) =>
            Json(new JsonObject { ["entities"] = new JsonArray(hub.Of(http.Caller().ClientId).Select(c => (JsonNode)ChannelJson(http, c)).ToArray()) }))
            .RequirePermission(view);
        app.MapMethods(Channels + "/{channelId}", ["HEAD"], (string channelId, HttpContext http, NotificationHub hub) =>
            hub.Find(channelId) is { } c && c.ClientId == http.Caller().ClientId ? Results.Ok() : Results.NotFound())
            .RequirePermission(view);
        app.MapGet(Channels + "/{channelId}/subscriptions", (string channelId, HttpContext http, NotificationHub hub) =>
            Mine(http, hub, channelId) is { } c ? Topics(c) : ApiError.NotFound("channel", channelId)).RequirePermission(view);
        app.MapPost(Channels + "/{channelId}/subscriptions", (string channelId, bool? ignoreErrors, HttpContext http, NotificationHub hub) =>
            SubscribeAsync(channelId, ignoreErrors ?? false, replace: false, http, hub)).RequirePermission(view);
        app.MapPut(Channels + "/{channelId}/subscriptions", (string channelId, bool? ignoreErrors, HttpContext http, NotificationHub hub) =>
            SubscribeAsync(channelId, ignoreErrors ?? false, replace: true, http, hub)).RequirePermission(view);
        app.MapDelete(Channels + "/{channelId}/subscriptions", (string channelId, HttpContext http, NotificationHub hub) =>
        {
            if (Mine(http, hub, channelId) is not { } c) return ApiError.NotFound("channel", channelId);
            lock (c.Topics) c.Topics.Clear();
            return Results.NoContent();
        }).RequirePermission(view);
        app.MapGet("/api/v2/notifications/availabletopics", () => Json(new JsonObject
        {
            ["entities"] = new JsonArray(NotificationHub.TopicPatterns.Select(t => (JsonNode)new JsonObject
            {
                ["id"] = t, ["description"] = t.EndsWith("end") ? "The customer left the conversation (it ended)." : "The customer joined a conversation.",
                ["requiresPermissions"] = new JsonArray(), ["visibility"] = "Public",
            }).ToArray()),
        })).RequirePermission(view);
        app.Map("/channels/{channelId}", ChannelSocketAsync);
    }

    static IResult Json(JsonNode node, int status = 200) => Results.Text(node.ToJsonString(), "application/json", Encoding.UTF8, status);

    static NotificationHub.Channel? Mine(HttpContext http, NotificationHub hub, string id) =>
        hub.Find(id) is { } c && c.ClientId == http.Caller().ClientId ? c : null;

    static JsonObject ChannelJson(HttpContext http, NotificationHub.Channel c) => new()
    {
        ["connectUri"] = $"{PublicAddress.Of(http).WebSocket}/channels/{c.Id}",
        ["id"] = c.Id,
        ["expires"] = Wire.Time(c.Expires),
    };

    static IResult Create(HttpContext http, NotificationHub hub) => Json(ChannelJson(http, hub.Create(http.Caller().ClientId)));

    static IResult Topics(NotificationHub.Channel c)
    {
        string[] topics;
        lock (c.Topics) topics = [.. c.Topics.Order()];
        return Json(new JsonObject
        {
            ["entities"] = new JsonArray(topics.Select(t => (JsonNode)new JsonObject { ["id"] = t, ["state"] = "Permitted" }).ToArray()),
        });
    }

    static async Task<IResult> SubscribeAsync(string channelId, bool ignoreErrors, bool replace, HttpContext http, NotificationHub hub)
    {
        if (Mine(http, hub, channelId) is not { } channel) return ApiError.NotFound("channel", channelId);
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
        var unsupported = wanted.Where(t => t is null || !NotificationHub.IsSupported(t)).ToList();
        if (unsupported.Count > 0 && !ignoreErrors)
            return ApiError.BadRequest($"Unsupported topic(s): {ApiError.Sample(unsupported.Select(t => t ?? "null"))}. " +
                $"Parley publishes: {string.Join(", ", NotificationHub.TopicPatterns)} ({{id}} a conversation id).");
        lock (channel.Topics)
        {
            var next = replace ? new HashSet<string>() : new HashSet<string>(channel.Topics);
            foreach (var t in wanted) if (t is not null && NotificationHub.IsSupported(t)) next.Add(t);
            if (next.Count > NotificationHub.MaxTopicsPerChannel)
                return ApiError.BadRequest($"A channel may have at most {NotificationHub.MaxTopicsPerChannel} topics; nothing was changed.");
            channel.Topics.Clear();
            channel.Topics.UnionWith(next);
        }
        hub.Extend(channel);   // subscribing extends the channel's life
        return Topics(channel);
    }

    /// <summary>The channel's WebSocket: no further auth (the channel id is the capability), heartbeats, ping → pong.</summary>
    static async Task ChannelSocketAsync(string channelId, HttpContext http, NotificationHub hub)
    {
        if (hub.Find(channelId) is not { } channel)
        {
            await ApiError.NotFound("channel", channelId).ExecuteAsync(http);
            return;
        }
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await ApiError.BadRequest("Open this channel's connectUri with a WebSocket.").ExecuteAsync(http);
            return;
        }
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        channel.Socket?.Abort();
        channel.Socket = socket;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        var heartbeat = HeartbeatAsync(channel, socket, stop.Token);
        var buffer = new byte[4096];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var r = await socket.ReceiveAsync(buffer, stop.Token);
                if (r.MessageType == WebSocketMessageType.Close) break;
                if (!r.EndOfMessage) continue;
                if (Encoding.UTF8.GetString(buffer, 0, r.Count).Contains("\"ping\"", StringComparison.Ordinal))
                    await NotificationHub.SendAsync(channel, socket, NotificationHub.Metadata("pong"));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        finally
        {
            stop.Cancel();
            try { await heartbeat; } catch (OperationCanceledException) { }
            if (ReferenceEquals(channel.Socket, socket)) channel.Socket = null;
        }
    }

    static async Task HeartbeatAsync(NotificationHub.Channel channel, WebSocket socket, CancellationToken ct)
    {
        var frame = NotificationHub.Metadata("WebSocket Heartbeat");
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(Heartbeat, ct);
            await NotificationHub.SendAsync(channel, socket, frame);
        }
    }
}
