using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>
/// A notification channel as every node sees it (docs/notifications.md "Several nodes"): who owns it, when it expires, and
/// the topics it is subscribed to. A channel belongs to the client and the user of the token that created it (no user: a
/// client-credentials token). Its WebSocket is held by one node at a time; this record is what any node reads.
/// </summary>
public sealed record NotificationChannelState(string Id, string ClientId, string? UserId, DateTimeOffset Expires, ImmutableArray<string> Topics);

/// <summary>
/// Channels and their subscriptions, kept in the store so a channel created on one node can be subscribed on another
/// and its socket opened on either. Each method is one atomic step; a subscription change is one transaction (the
/// topics and the new expiry together). Adapters: SQLite, PostgreSQL (the storage contract suite checks both).
/// </summary>
public interface INotificationChannelStore
{
    Task CreateAsync(string id, string clientId, string? userId, DateTimeOffset expires, CancellationToken ct);

    /// <summary>The channel with its topics (ordered), expired or not; null when there is none.</summary>
    Task<NotificationChannelState?> GetAsync(string id, CancellationToken ct);

    /// <summary>The client's channels that expire after <paramref name="now"/>, soonest to expire first.</summary>
    Task<IReadOnlyList<NotificationChannelState>> ListByClientAsync(string clientId, DateTimeOffset now, CancellationToken ct);

    /// <summary>The user's channels (through any client) that expire after <paramref name="now"/>, soonest to expire first.</summary>
    Task<IReadOnlyList<NotificationChannelState>> ListByUserAsync(string userId, DateTimeOffset now, CancellationToken ct);

    /// <summary>
    /// Adds <paramref name="topics"/> to the channel's (or replaces them with <paramref name="replace"/>) and sets its expiry,
    /// in one transaction; the channel after, or null when there is no such channel.
    /// </summary>
    Task<NotificationChannelState?> SubscribeAsync(string id, IReadOnlyCollection<string> topics, bool replace, DateTimeOffset expires, CancellationToken ct);

    /// <summary>Removes the channel and its subscriptions; false when there was none.</summary>
    Task<bool> DeleteAsync(string id, CancellationToken ct);

    /// <summary>Removes every channel that expired at or before <paramref name="now"/>; how many.</summary>
    Task<int> DeleteExpiredAsync(DateTimeOffset now, CancellationToken ct);
}
