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
    TerminationAudit? Audit = null,
    ImmutableArray<OutboxItem> Outbox = default);

/// <summary>The store refused a message whose channel id (external key) it already holds: the same message posted twice at once.</summary>
public sealed class DuplicateMessageException(string externalKey) : Exception($"A message with external key {externalKey} is already stored.")
{
    public string ExternalKey => externalKey;
}

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
    int PageNumber = 1,
    string? QueueId = null);

/// <summary>
/// What a commit did: stored (with the conversation's last message sequence after it), or refused and wrote nothing.
/// <see cref="ChangedAt"/> is the time the store gave a change of state (an end, a participant leaving): the time it was
/// decided on, or the last stored message's time when that is later (null for a commit that changes no state).
/// </summary>
public readonly record struct CommitResult(bool Stored, long LastSequence, DateTimeOffset? ChangedAt = null)
{
    public static CommitResult Refused => default;
    public static CommitResult StoredAt(long lastSequence, DateTimeOffset? changedAt = null) => new(true, lastSequence, changedAt);
}

/// <summary>
/// Durable conversation storage: the arbiter of what a conversation holds, whichever node asks. Every method is a complete
/// unit. The rules every adapter keeps (the contract suite, <c>ConversationStoreContract</c>, checks each of them with
/// writers racing from parallel tasks and from two store instances on the same database):
/// <list type="bullet">
/// <item><b>A commit is one transaction</b>: the conversation row, its participants, messages, session move, outbox rows and
/// audit row are all stored, or none is. <see cref="CommitAsync"/> answers <see cref="CommitResult.Refused"/>, having
/// written nothing, when the conversation is no longer at <see cref="Commit.ExpectedVersion"/> (another writer changed
/// its state), when a message-only commit finds it no longer connected, or when a session move's expected conversation
/// no longer matches.</item>
/// <item><b>The guard and the write are one atomic step.</b> The check that the conversation is still at the version (and,
/// for a message, still connected) it was decided on must be made by the same statement that writes, or under a lock
/// that statement takes and holds to the commit: a conditional <c>UPDATE … WHERE version = $expected</c> whose row
/// count decides, never a <c>SELECT</c> followed by an <c>INSERT</c> (that holds only while the engine has one writer).
/// So a message can never be stored after the end committed, whatever number of writers or nodes race.</item>
/// <item><b>Sequence.</b> Every stored message gets the conversation's next sequence number (1, 2, 3, … dense, unique per
/// conversation), taken from a counter on the conversation row in the same guarded statement, so messages appended
/// concurrently never collide and never leave a gap. <see cref="CommitResult.LastSequence"/> is the counter after the
/// commit; the commit's messages hold the numbers up to it, in the order of <see cref="Commit.Events"/>. Every listing
/// orders messages by it.</item>
/// <item><b>Nothing stored is later than the end.</b> A change of state is stamped no earlier than the conversation's last
/// stored message: the store keeps the latest message time on the conversation row (moved by the append's guarded
/// statement) and the guarded statement of a change writes <c>max(decided time, last message time)</c> as the end time
/// (and the end time of the participants it disconnects, and the audit row's time), answering it as
/// <see cref="CommitResult.ChangedAt"/>. An append on one node may commit after another node decided an end on an older
/// clock reading; the end still commits (never refused for it), only its time moves up to the message's.</item>
/// <item><b>External keys are unique</b>: a message whose external key is already stored fails the commit with
/// <see cref="DuplicateMessageException"/>, and nothing of it is kept.</item>
/// <item><b>Durable before answered</b>: the task completes only after the transaction is durable; a cancellation after the
/// write was queued does not undo it (the caller is never told "failed" about a write that then commits).</item>
/// </list>
/// Adapters: SQLite (embedded, default) and PostgreSQL (several nodes), one contract suite.
/// </summary>
public interface IConversationStore
{
    Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct);
    Task<CommitResult> CommitAsync(Commit commit, CancellationToken ct);
    /// <summary>
    /// Many commits of different conversations at once (a bulk termination's chunk), each exactly as <see cref="CommitAsync"/>
    /// makes it: atomic on its own, guarded by its own expected version, refused alone without touching the others. One
    /// answer per commit, in order. A commit that failed on its own answers <see cref="CommitResult.Refused"/> (the caller
    /// decides it again alone, and hears its error then); an error that lost them all throws. Durable before answered.
    /// This default makes them concurrently; an adapter with a single writer makes them in one transaction.
    /// </summary>
    async Task<IReadOnlyList<CommitResult>> CommitManyAsync(IReadOnlyList<Commit> commits, CancellationToken ct)
    {
        async Task<CommitResult> One(Commit c)
        {
            try { return await CommitAsync(c, ct); }
            catch (Exception) when (!ct.IsCancellationRequested) { return CommitResult.Refused; }
        }
        return await Task.WhenAll(commits.Select(One));
    }
    /// <summary>Newest first (highest sequence first), as the guest history endpoint pages it.</summary>
    Task<Page<ConversationMessage>> ListMessagesAsync(string conversationId, int pageSize, int pageNumber, CancellationToken ct);
    Task<ConversationMessage?> GetMessageAsync(string messageId, CancellationToken ct);
    /// <summary>A message by the channel's own id for it (inbound de-duplication).</summary>
    Task<ConversationMessage?> FindByExternalKeyAsync(string externalKey, CancellationToken ct);
    /// <summary>Records a delivery receipt's status on a stored message; false when there is no such message.</summary>
    Task<bool> SetMessageStatusAsync(string messageId, string status, CancellationToken ct);
    Task<Page<Conversation>> QueryAsync(ConversationFilter filter, CancellationToken ct);
    /// <summary>
    /// Live conversations with an inactivity timeout whose latest message (or the start when there is
    /// none) is older than it. A hint only: the caller decides again under its own guarded commit.
    /// </summary>
    Task<IReadOnlyList<string>> ListIdleAsync(DateTimeOffset now, int max, CancellationToken ct);
    /// <summary>The time of the conversation's last (latest) message, or its start when it has none.</summary>
    Task<DateTimeOffset?> LastActivityAsync(string conversationId, CancellationToken ct);
    /// <summary>
    /// Live conversations matching every field set in <paramref name="filter"/>, ordered by id (time-ordered ids), at most
    /// <paramref name="max"/>, after <paramref name="afterId"/> (keyset paging). A hint only, as <see cref="ListIdleAsync"/>:
    /// each end is decided again under its own guarded commit.
    /// </summary>
    Task<IReadOnlyList<LiveConversation>> ListLiveAsync(LiveFilter filter, int max, string? afterId, CancellationToken ct);
}

/// <summary>
/// Which live conversations a bulk termination or a policy selects; every field set must match. <see cref="ChannelId"/> is
/// a deployment id (web messaging) or an integration id (open messaging); <see cref="CustomerId"/> is the guest session's
/// address (the journey customer id on web messaging, the external sender on open messaging); <see cref="StartedBy"/> is
/// the OAuth client whose agentless request started it. Bounds are exclusive: started strictly before / after.
/// </summary>
public sealed record LiveFilter(
    string? ChannelId = null,
    ChannelKind? Channel = null,
    string? QueueId = null,
    DateTimeOffset? StartedBefore = null,
    DateTimeOffset? StartedAfter = null,
    string? Campaign = null,
    string? StartedBy = null,
    string? CustomerId = null);

/// <summary>A live conversation as a listing of <see cref="IConversationStore.ListLiveAsync"/> returns it.</summary>
public sealed record LiveConversation(string Id, ChannelKind Channel, string ChannelId, DateTimeOffset StartTime, string? QueueId,
    string? Campaign, string? StartedBy);

/// <summary>Filter for session listings: by deployment, channel and the guest's own address (journey customer id).</summary>
public sealed record SessionFilter(string? DeploymentId = null, ChannelKind? Channel = null, string? Address = null);

/// <summary>
/// Guest sessions. Each write is atomic on its own: <see cref="CreateAsync"/> is insert-if-absent keyed by the token hash
/// (two nodes creating the same token's session at once end with one row, and both get it back);
/// <see cref="DetachConversationAsync"/> is a compare-and-set on the session's conversation in one statement. The move of a
/// session to a new conversation is part of <see cref="IConversationStore.CommitAsync"/> (<see cref="Commit.SessionConversation"/>).
/// </summary>
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
    /// <summary>Sessions oldest first, one page; every filter is optional.</summary>
    Task<Page<GuestSession>> ListAsync(SessionFilter filter, int pageSize, int pageNumber, CancellationToken ct);
}

/// <summary>
/// The termination audit. Rows are written by <see cref="IConversationStore.CommitAsync"/>, in the transaction of the end
/// they record; the socket count is filled in later by its own single-row update (a lost count never loses the fact).
/// </summary>
public interface IAuditLog
{
    Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct);
    /// <summary>
    /// Many rows' socket counts in one write (a bulk termination records its ends' counts in batches, not one commit
    /// per conversation). Adapters write them with one statement; this default is the row-by-row fallback.
    /// </summary>
    async Task SetSocketsNotifiedAsync(IReadOnlyList<(string AuditId, int Sockets)> counts, CancellationToken ct)
    {
        foreach (var (id, n) in counts) await SetSocketsNotifiedAsync(id, n, ct);
    }
    Task<Page<TerminationAudit>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct);
}

/// <summary>
/// One guest socket's part of a termination's receipt: the node that wrote (or failed to write) the end frame to it,
/// the socket's id on that node, and when. Keyed by (termination, node, socket): recording a row twice keeps the first.
/// </summary>
public sealed record SocketReceipt(string TerminationId, string ConversationId, string NodeId, string SocketId, bool Delivered,
    DateTimeOffset At, string? Error);

/// <summary>
/// Termination receipts: the socket rows each node records (in batches, one transaction for many rows), read with the
/// audit row and the termination's channel deliveries (outbox rows the end's own commit linked to its audit id).
/// </summary>
public interface IReceiptStore
{
    /// <summary>Stores the rows in one transaction (a row already stored is kept as it was).</summary>
    Task RecordSocketsAsync(IReadOnlyList<SocketReceipt> rows, CancellationToken ct);
    Task<TerminationAudit?> GetAuditAsync(string terminationId, CancellationToken ct);
    Task<IReadOnlyList<SocketReceipt>> ListSocketsAsync(string terminationId, CancellationToken ct);
    /// <summary>The outbox rows stored by the termination's commit (a commit with <see cref="Commit.Audit"/> links each of its
    /// outbox rows to the audit id, in the same transaction), oldest first, as they stand now.</summary>
    Task<IReadOnlyList<OutboxDelivery>> ListChannelDeliveriesAsync(string terminationId, CancellationToken ct);
    /// <summary>The termination an outbox row tells of (null: it tells of none, e.g. a message).</summary>
    Task<string?> TerminationOfDeliveryAsync(string outboxId, CancellationToken ct);
}

/// <summary>
/// Pushes committed facts to the guest's sockets, wherever they are connected. Called after the commit, in version
/// order per conversation. The returned task completes with the number of guest sockets that were handed a frame
/// that ends their conversation (0 when the events end nothing). Single node: in-process; several nodes: a Redis
/// backplane behind the same interface.
/// </summary>
public interface IConversationFanout
{
    /// <param name="started">The commit created the conversation.</param>
    /// <param name="terminationId">The commit's audit id when it recorded a termination (its receipt's id).</param>
    Task<int> PublishAsync(Conversation after, ImmutableArray<ConversationEvent> events, bool started, string? terminationId = null);
}

/// <summary>
/// Renders what a commit must deliver to third-party channels (Open Messaging webhooks). Called before the commit, so
/// the deliveries are stored in the same transaction as the facts they carry.
/// </summary>
public interface IOutboundEffects
{
    ValueTask<ImmutableArray<OutboxItem>> RenderAsync(Conversation after, ImmutableArray<ConversationEvent> events, CancellationToken ct);

    /// <summary>The rendered deliveries are stored: time to send them.</summary>
    void Committed(ImmutableArray<OutboxItem> outbox);
}

public enum DeliveryState { Pending, Delivered, Dead }

public sealed record OutboxDelivery(
    OutboxItem Item,
    DeliveryState State,
    int Attempts,
    int? LastStatus,
    string? LastError,
    DateTimeOffset CreatedAt,
    DateTimeOffset? DeliveredAt);

/// <summary>
/// The outbox of channel deliveries. Rows are written by <see cref="IConversationStore.CommitAsync"/>; a relay leases
/// the due ones (a lease keeps two relays — or two nodes — from sending the same row at once), sends, and records the
/// outcome. Delivery is at least once; the body's message id is stable so receivers can de-duplicate.
/// Atomicity: <see cref="LeaseDueAsync"/> chooses and leases its rows in one step (one conditional <c>UPDATE … RETURNING</c>,
/// or <c>SELECT … FOR UPDATE SKIP LOCKED</c> then the update in one transaction): two relays leasing at once never get the
/// same row, and never two rows of one conversation. A lease ends when the delivery is marked, or when it runs out.
/// <para><b>Leases are node-owned.</b> An adapter is opened with its node's id (<c>Parley:Node:Id</c>), and every lease it
/// takes records that owner. <see cref="ReleaseLeasesAsync"/> frees only this node's own leases, so one node's start
/// never takes a delivery from a live node; a dead node's rows become leasable to any node when their lease runs out.</para>
/// </summary>
public interface IOutbox
{
    /// <summary>
    /// Leases up to <paramref name="max"/> due deliveries to this node: only the oldest pending one of each conversation
    /// (so each conversation is delivered in order), and per destination no more than <paramref name="perDestination"/>
    /// less what this node has <paramref name="inFlight"/> to it less the unexpired leases other nodes hold on it (so
    /// the cap holds across nodes).
    /// </summary>
    Task<IReadOnlyList<OutboxDelivery>> LeaseDueAsync(DateTimeOffset now, TimeSpan lease, int max, int perDestination,
        IReadOnlyDictionary<string, int> inFlight, CancellationToken ct);
    Task MarkDeliveredAsync(string id, int status, DateTimeOffset at, CancellationToken ct);
    Task MarkRetryAsync(string id, int attempts, DateTimeOffset dueAt, int? status, string error, CancellationToken ct);
    Task MarkDeadAsync(string id, int attempts, int? status, string error, CancellationToken ct);
    Task<OutboxDelivery?> GetDeliveryAsync(string id, CancellationToken ct);
    Task<Page<OutboxDelivery>> ListDeliveriesAsync(DeliveryState state, string? destination, int pageSize, int pageNumber, CancellationToken ct);
    /// <summary>Puts a dead delivery back in line, due now; false when it is not dead (or unknown).</summary>
    Task<bool> RedeliverAsync(string id, DateTimeOffset now, CancellationToken ct);
    /// <summary>When the next leasable delivery is due (null: none), so the relay can sleep until then.</summary>
    Task<DateTimeOffset?> NextDueAsync(CancellationToken ct);
    /// <summary>
    /// Frees this node's own leases (the relay calls it once, at start): what this node had in flight when it died is
    /// not waited out. Other nodes' leases are left alone: theirs run out on their own. A delivery that was in flight is
    /// sent again, which at-least-once delivery allows.
    /// </summary>
    Task<int> ReleaseLeasesAsync(CancellationToken ct);
}

/// <summary>
/// Every storage port one adapter provides, opened together on one database. <see cref="Lifetime"/> closes them (the
/// host disposes it once, when it stops).
/// </summary>
public sealed record StoragePorts(
    IConversationStore Conversations,
    IGuestSessionStore Sessions,
    IAuditLog Audit,
    IDirectoryStore Directory,
    ICredentialStore Credentials,
    IOutbox Outbox,
    IAsyncDisposable Lifetime)
{
    /// <summary>Users and authorization codes (docs/users.md); every adapter sets it when it opens.</summary>
    public IUserStore Users { get; init; } = null!;

    /// <summary>Notification channels and their subscriptions (docs/notifications.md); every adapter sets it when it opens.</summary>
    public INotificationChannelStore NotificationChannels { get; init; } = null!;

    /// <summary>Termination receipts (docs/ending-sessions.md "Receipts"); every adapter sets it when it opens.</summary>
    public IReceiptStore Receipts { get; init; } = null!;

    /// <summary>Termination policies (docs/ending-sessions.md "Policies"); every adapter sets it when it opens.</summary>
    public ITerminationPolicyStore TerminationPolicies { get; init; } = null!;

    /// <summary>Bulk termination jobs (docs/ending-sessions.md "Bulk terminations"); every adapter sets it when it opens.</summary>
    public ITerminationJobStore TerminationJobs { get; init; } = null!;

    /// <summary>
    /// What stopped this store taking writes for good, or null while it takes them (docs/health.md, check <c>writes</c>).
    /// An adapter whose writes can stop for good (the embedded store's one writer) sets it.
    /// </summary>
    public Func<Exception?> WriteFault { get; init; } = static () => null;
}

/// <summary>
/// What a bulk end did: how many conversations matched, ended, had already ended (or were ended meanwhile by another
/// lever), failed (a store error: the rest went on), how many guest sockets were handed the Disconnect, and how many open
/// messaging end notices were stored for delivery, each in its end's own transaction (<see cref="ChannelsNotified"/>: stored,
/// not yet acknowledged; which webhook acknowledged is in each termination's receipt).
/// </summary>
public readonly record struct BulkCounts(int Matched, int Ended, int AlreadyEnded, int Failed, int SocketsNotified, int ChannelsNotified)
{
    public static BulkCounts operator +(BulkCounts a, BulkCounts b) => new(a.Matched + b.Matched, a.Ended + b.Ended,
        a.AlreadyEnded + b.AlreadyEnded, a.Failed + b.Failed, a.SocketsNotified + b.SocketsNotified, a.ChannelsNotified + b.ChannelsNotified);
}

/// <summary>
/// A bulk termination as stored: <see cref="State"/> is PENDING, FULFILLED or FAILED (the platform's job spelling);
/// <see cref="Filter"/> the request's filter as JSON (the domain does not read it); <see cref="NodeId"/> the node running it.
/// </summary>
public sealed record TerminationJob(
    string Id,
    string State,
    string Filter,
    string? Reason,
    BulkCounts Counts,
    string? ErrorMessage,
    Actor CreatedBy,
    string NodeId,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt = null);

/// <summary>Bulk termination jobs, in the store so any node answers for any job. Each write is one statement.</summary>
public interface ITerminationJobStore
{
    Task CreateAsync(TerminationJob job, CancellationToken ct);
    /// <summary>Progress or the end of a job: its state, counts, error and completion time; only while it is PENDING (false otherwise).</summary>
    Task<bool> UpdateAsync(string id, string state, BulkCounts counts, string? errorMessage, DateTimeOffset? completedAt, CancellationToken ct);
    Task<TerminationJob?> GetAsync(string id, CancellationToken ct);
    /// <summary>Newest first.</summary>
    Task<Page<TerminationJob>> ListAsync(int pageSize, int pageNumber, CancellationToken ct);
    /// <summary>
    /// Marks the PENDING jobs of <paramref name="nodeId"/> FAILED with <paramref name="message"/> (that node stopped while
    /// running them); every PENDING job when <paramref name="nodeId"/> is null (a single node, whose id changes per process).
    /// </summary>
    Task<int> FailPendingAsync(string? nodeId, string message, DateTimeOffset at, CancellationToken ct);
}

/// <summary>
/// The store could not be reached or could not finish the write (engine down, connection refused, failover): nothing
/// was acknowledged. Adapters throw it for transient engine failures; callers answer 503 in the protocol's form and
/// never report the write as done.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Encrypts the secrets a store keeps (webhook signing secrets, token-signing keys) before they reach its disk, so a
/// copy of the database alone gives none of them away. The server implements it with ASP.NET Core Data Protection,
/// whose keys live apart from the database.
/// </summary>
public interface ISecretCipher
{
    byte[] Protect(byte[] plaintext);

    /// <summary>The plaintext back; throws <see cref="System.Security.Cryptography.CryptographicException"/> when the value
    /// cannot be decrypted with the keys at hand (keys lost or replaced, value tampered with).</summary>
    byte[] Unprotect(byte[] protectedData);
}
