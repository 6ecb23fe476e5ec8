using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>
/// One all-or-nothing write: the conversation's new state, the facts that produced it, and what must change with it.
/// <see cref="ExpectedVersion"/> 0 creates the conversation. <see cref="SessionConversation"/> moves the guest
/// session's current conversation (compare-and-set), so a guest can never have two live conversations.
/// </summary>
public sealed record Commit(
    Conversation After,
    long ExpectedVersion,
    ImmutableArray<ConversationEvent> Events,
    SessionMove? SessionConversation = null,
    TerminationAudit? Audit = null);

public sealed record SessionMove(string SessionId, string? ExpectedConversationId, string NewConversationId);

public sealed record Page<T>(IReadOnlyList<T> Entities, int PageSize, int PageNumber, long Total)
{
    public int PageCount => PageSize <= 0 ? 0 : (int)((Total + PageSize - 1) / PageSize);
}

/// <summary>Filter for conversation listings and analytics queries (all optional).</summary>
public sealed record ConversationFilter(
    DateTimeOffset? StartedFrom = null,
    DateTimeOffset? StartedBefore = null,
    bool? Ended = null,
    ChannelKind? Channel = null,
    bool Descending = false,
    string OrderBy = "conversationStart",
    int PageSize = 25,
    int PageNumber = 1);

/// <summary>
/// Durable conversation storage. Every method is a complete unit: <see cref="CommitAsync"/> is one transaction and
/// returns false, writing nothing, when the conversation's version moved (another writer won) or a session move's
/// expected conversation no longer matches. Adapters: SQLite (embedded, default); PostgreSQL later, same contract.
/// </summary>
public interface IConversationStore
{
    Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct);
    Task<bool> CommitAsync(Commit commit, CancellationToken ct);
    /// <summary>Newest first, as the guest history endpoint pages it.</summary>
    Task<Page<ConversationMessage>> ListMessagesAsync(string conversationId, int pageSize, int pageNumber, CancellationToken ct);
    Task<ConversationMessage?> GetMessageAsync(string messageId, CancellationToken ct);
    Task<Page<Conversation>> QueryAsync(ConversationFilter filter, CancellationToken ct);
}

public interface IGuestSessionStore
{
    Task<GuestSession?> FindByTokenHashAsync(string tokenHash, CancellationToken ct);
    Task<GuestSession?> GetAsync(string sessionId, CancellationToken ct);
    /// <summary>Creates the session, or returns the one that already holds this token hash (first writer wins).</summary>
    Task<GuestSession> CreateAsync(GuestSession session, CancellationToken ct);
    /// <summary>Detaches the session from its ended conversation (the guest asked to start a new chat).</summary>
    Task<bool> DetachConversationAsync(string sessionId, string expectedConversationId, CancellationToken ct);
    /// <summary>Forgets the session (guest cleared the conversation); the same token then starts a new session.</summary>
    Task DeleteAsync(string sessionId, CancellationToken ct);
    Task<IReadOnlyList<GuestSession>> ListAsync(string? deploymentId, CancellationToken ct);
}

public interface IAuditLog
{
    Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct);
    Task<Page<TerminationAudit>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct);
}

/// <summary>
/// Pushes committed facts to the guest's sockets, wherever they are connected. Called after the commit, in version
/// order per conversation. The returned task completes with the number of guest sockets that were handed a frame
/// that ends their conversation (0 when the events end nothing). Single node: in-process; several nodes: a Redis
/// backplane behind the same interface.
/// </summary>
public interface IConversationFanout
{
    Task<int> PublishAsync(Conversation after, ImmutableArray<ConversationEvent> events);
}
