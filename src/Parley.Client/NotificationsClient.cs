using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>One event from a notification channel: the concrete topic, its body, and its correlation id.</summary>
public sealed record NotificationEvent(string TopicName, JsonElement EventBody, string? Version, string? CorrelationId)
{
    /// <summary>The body as one of the protocol's event types, e.g. <c>ParleyJson.Wire.CustomerDetailEvent</c>.</summary>
    public T? BodyAs<T>(JsonTypeInfo<T> type) => EventBody.Deserialize(type);
}

/// <summary>Notification channels and their stream (Genesys Cloud calls; docs/notifications.md).</summary>
public sealed class NotificationsClient
{
    const string Root = "/api/v2/notifications/channels";
    readonly Http _api;

    internal NotificationsClient(Http api) => _api = api;

    /// <summary>
    /// Opens a stream of the events of <paramref name="topics"/>: creates a channel, subscribes the topics, connects its
    /// WebSocket and reads it in the background, so events from the moment this returns are kept (up to
    /// <see cref="NotificationStreamOptions.Buffer"/>). Heartbeats are skipped; a dropped socket is reconnected to the same
    /// channel (whose subscriptions the server keeps), or to a new channel subscribed to the same topics when the old
    /// one is gone. Dispose the stream to stop.
    /// </summary>
    public async Task<NotificationStream> OpenAsync(IEnumerable<string> topics, NotificationStreamOptions? options = null,
        CancellationToken ct = default)
    {
        var stream = new NotificationStream(this, [.. topics], options ?? new NotificationStreamOptions());
        try { await stream.StartAsync(ct); }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
        return stream;
    }

    /// <summary>The events of <paramref name="topics"/> until <paramref name="ct"/> is cancelled (<see cref="OpenAsync"/> as an enumerable).</summary>
    public async IAsyncEnumerable<NotificationEvent> StreamAsync(IEnumerable<string> topics,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var stream = await OpenAsync(topics, null, ct);
        await foreach (var e in stream.WithCancellation(ct)) yield return e;
    }

    /// <summary><c>POST /api/v2/notifications/channels</c>.</summary>
    public async Task<ChannelWire> CreateChannelAsync(CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Post, Root, null, ct)).Read(ParleyJson.Wire.ChannelWire);

    /// <summary><c>HEAD /api/v2/notifications/channels/{id}</c>: whether the channel still exists.</summary>
    public async Task<bool> ChannelExistsAsync(string channelId, CancellationToken ct = default)
    {
        var answer = await _api.SendAsync(HttpMethod.Head, $"{Root}/{Http.Segment(channelId)}", null, ct);
        if (answer.Status == 404) return false;
        answer.EnsureSuccess();
        return true;
    }

    /// <summary><c>PUT …/subscriptions</c>: the channel's topics become exactly these.</summary>
    public Task<EntitiesWire<ChannelTopicWire>> SetSubscriptionsAsync(string channelId, IEnumerable<string> topics, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Put, $"{Root}/{Http.Segment(channelId)}/subscriptions", Topics(topics), ClientJson.Default.ListTopicRef,
            ParleyJson.Wire.EntitiesWireChannelTopicWire, ct);

    /// <summary><c>POST …/subscriptions</c>: adds these topics.</summary>
    public Task<EntitiesWire<ChannelTopicWire>> SubscribeAsync(string channelId, IEnumerable<string> topics, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post, $"{Root}/{Http.Segment(channelId)}/subscriptions", Topics(topics), ClientJson.Default.ListTopicRef,
            ParleyJson.Wire.EntitiesWireChannelTopicWire, ct);

    public Task<EntitiesWire<ChannelTopicWire>> GetSubscriptionsAsync(string channelId, CancellationToken ct = default) =>
        _api.GetAsync($"{Root}/{Http.Segment(channelId)}/subscriptions", ParleyJson.Wire.EntitiesWireChannelTopicWire, ct);

    /// <summary>The topics Parley (or the org) publishes.</summary>
    public Task<EntitiesWire<AvailableTopicWire>> AvailableTopicsAsync(CancellationToken ct = default) =>
        _api.GetAsync("/api/v2/notifications/availabletopics", ParleyJson.Wire.EntitiesWireAvailableTopicWire, ct);

    /// <summary>The subscription body: <c>[{"id":"&lt;topic&gt;"}]</c>.</summary>
    static List<TopicRef> Topics(IEnumerable<string> topics) => [.. topics.Select(t => new TopicRef(t))];

    internal Http Api => _api;
}

/// <summary>Tuning of a <see cref="NotificationStream"/>.</summary>
public sealed record NotificationStreamOptions
{
    /// <summary>Events kept for a reader that is behind; when full, reading the socket waits (and the server may drop the channel: it is then reconnected).</summary>
    public int Buffer { get; init; } = 10_000;

    public TimeSpan FirstReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Adjusts each WebSocket before it connects (proxy, headers).</summary>
    public Action<System.Net.WebSockets.ClientWebSocketOptions>? ConfigureSocket { get; init; }
}
