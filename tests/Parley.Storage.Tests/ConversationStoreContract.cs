using System.Collections.Immutable;
using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>
/// The storage contract every adapter passes (SQLite now; PostgreSQL inherits the same tests when it lands): the rules
/// written on the ports in <c>Parley.Core/Ports.cs</c>, including under writers racing from parallel tasks and from
/// two store instances on one database (as two nodes would).
/// </summary>
public abstract partial class ConversationStoreContract
{
    /// <summary>A store over a fresh, empty database (one per test).</summary>
    protected abstract Task<StoragePorts> CreateStoreAsync();
    /// <summary>Closes the store and opens the same database again (a restart).</summary>
    protected abstract Task<StoragePorts> ReopenAsync(StoragePorts store);
    /// <summary>A second, independent store instance over the same database as <paramref name="store"/> (another node).</summary>
    protected abstract Task<StoragePorts> OpenSecondAsync(StoragePorts store);

    protected static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_000);
    static string Id() => Guid.NewGuid().ToString();

    protected static async Task<(GuestSession Session, Conversation Conversation)> CreateConversationAsync(StoragePorts store,
        ChannelKind channel = ChannelKind.WebMessaging, TimeSpan? inactivity = null)
    {
        var session = await store.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);
        var c = ConversationMachine.Start(Id(), channel, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0, inactivity);
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "hello", [], null), T0);
        var after = ConversationMachine.ApplyAll(c, add.Events);
        var committed = await store.Conversations.CommitAsync(new Commit(after, 0, add.Events, new SessionMove(session.Id, null, after.Id)), default);
        Assert.Equal(CommitResult.StoredAt(1), committed);
        return (session, after);
    }

    /// <summary>A guest message appended to <paramref name="c"/> as decided on its current state.</summary>
    protected static Commit Append(Conversation c, string text, DateTimeOffset? at = null, string? externalKey = null)
    {
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, text, [], null, ExternalKey: externalKey), at ?? T0);
        return new Commit(ConversationMachine.ApplyAll(c, add.Events), c.Version, add.Events);
    }

    static Commit End(Conversation c, DateTimeOffset? at = null)
    {
        var end = ConversationMachine.Decide(c, new EndConversation(new Actor("a"), EndLever.ConversationDisconnect, null), at ?? T0);
        return new Commit(ConversationMachine.ApplyAll(c, end.Events), c.Version, end.Events);
    }

    [ContractFact]
    public async Task Commit_Create_ThenLoad_RoundTripsParticipantsAndMessages()
    {
        var store = await CreateStoreAsync();
        var (session, c) = await CreateConversationAsync(store);

        var loaded = await store.Conversations.LoadAsync(c.Id, default);
        var messages = await store.Conversations.ListMessagesAsync(c.Id, 25, 1, default);

        Assert.NotNull(loaded);
        Assert.Equal(c.Version, loaded.Version);
        Assert.Equal(c.Participants.Select(p => (p.Id, p.Purpose, p.CommunicationId, p.State)),
            loaded.Participants.Select(p => (p.Id, p.Purpose, p.CommunicationId, p.State)));
        Assert.Equal("hello", Assert.Single(messages.Entities).Text);
        Assert.Equal(c.Id, (await store.Sessions.GetAsync(session.Id, default))!.ConversationId);
    }

    [ContractFact]
    public async Task Commit_WithStaleVersion_ReportsConflict_AndWritesNothing()
    {
        var store = await CreateStoreAsync();
        var (_, c) = await CreateConversationAsync(store);
        var end = ConversationMachine.Decide(c, new EndConversation(new Actor("a"), EndLever.ConversationDisconnect, null), T0);
        Assert.True((await store.Conversations.CommitAsync(new Commit(ConversationMachine.ApplyAll(c, end.Events), c.Version, end.Events), default)).Stored);

        // A writer that decided on the old version loses, and nothing of its commit is kept.
        var late = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "too late", [], null), T0);
        var committed = await store.Conversations.CommitAsync(new Commit(ConversationMachine.ApplyAll(c, late.Events), c.Version, late.Events), default);

        Assert.False(committed.Stored);
        var messages = await store.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
        Assert.DoesNotContain(messages.Entities, m => m.Text == "too late");
        Assert.True((await store.Conversations.LoadAsync(c.Id, default))!.IsEnded);
    }

    [ContractFact]
    public async Task Commit_WhoseSessionMoved_WritesNothing()
    {
        var store = await CreateStoreAsync();
        var (session, first) = await CreateConversationAsync(store);
        var second = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0);

        var committed = await store.Conversations.CommitAsync(
            new Commit(second, 0, [], new SessionMove(session.Id, ExpectedConversationId: null, second.Id)), default);

        Assert.False(committed.Stored);
        Assert.Null(await store.Conversations.LoadAsync(second.Id, default));
        Assert.Equal(first.Id, (await store.Sessions.GetAsync(session.Id, default))!.ConversationId);
    }

    [ContractFact]
    public async Task Termination_AndItsAudit_CommitTogether_AndSurviveReopening()
    {
        var store = await CreateStoreAsync();
        var (_, c) = await CreateConversationAsync(store);
        var end = ConversationMachine.Decide(c, new DisconnectParticipant(c.Customer.Id, new Actor("client-1"), EndLever.ParticipantPatch, "why"), T0);
        var audit = new TerminationAudit(Id(), c.Id, c.Customer.Id, EndLever.ParticipantPatch, "client-1", "why", T0, null, "user-7", "Ada Admin");
        Assert.True((await store.Conversations.CommitAsync(
            new Commit(ConversationMachine.ApplyAll(c, end.Events), c.Version, end.Events, Audit: audit), default)).Stored);
        await store.Audit.SetSocketsNotifiedAsync(audit.Id, 3, default);

        var reopened = await ReopenAsync(store);

        var loaded = (await reopened.Conversations.LoadAsync(c.Id, default))!;
        Assert.True(loaded.IsEnded);
        Assert.Equal(T0, loaded.EndTime);
        Assert.All(loaded.Participants, p => Assert.Equal(ParticipantState.Disconnected, p.State));
        var record = Assert.Single((await reopened.Audit.ListAsync(c.Id, 25, 1, default)).Entities);
        Assert.Equal(("client-1", "why", 3), (record.ClientId, record.Reason, record.SocketsNotified));
        Assert.Equal(("user-7", "Ada Admin"), (record.UserId, record.UserName));
    }

    [ContractFact]
    public Task EndDecidedBeforeTheLastStoredMessagesTime_OneStore_IsStoredAtThatTime() => EndStampedAfterTheLastMessageAsync(twoNodes: false);

    [ContractFact]
    public Task EndDecidedBeforeTheLastStoredMessagesTime_TwoStores_IsStoredAtThatTime() => EndStampedAfterTheLastMessageAsync(twoNodes: true);

    /// <summary>
    /// The cross-node race in slow motion: node A appends a message it stamped at T0+10 s; node B, whose clock read T0+5 s
    /// when it decided the end on the same version, commits the end after it. The end is stored (never refused for the
    /// append), and the conversation, its participants and the audit row all carry T0+10 s: no message is later than the end.
    /// An end decided later than every message keeps its own time.
    /// </summary>
    async Task EndStampedAfterTheLastMessageAsync(bool twoNodes)
    {
        var a = await CreateStoreAsync();
        var b = twoNodes ? await OpenSecondAsync(a) : a;
        var (_, c) = await CreateConversationAsync(a);
        var (_, control) = await CreateConversationAsync(a);
        var messageAt = T0.AddSeconds(10);
        Assert.True((await a.Conversations.CommitAsync(Append(c, "late clock", messageAt), default)).Stored);
        Assert.True((await a.Conversations.CommitAsync(Append(c, "earlier clock", T0.AddSeconds(7)), default)).Stored);

        var decided = ConversationMachine.Decide(c, new DisconnectParticipant(c.Customer.Id, new Actor("client-b"), EndLever.ParticipantPatch, "race"),
            T0.AddSeconds(5));
        var audit = new TerminationAudit(Id(), c.Id, c.Customer.Id, EndLever.ParticipantPatch, "client-b", "race", T0.AddSeconds(5), null);
        var committed = await b.Conversations.CommitAsync(new Commit(ConversationMachine.ApplyAll(c, decided.Events), c.Version, decided.Events, Audit: audit), default);
        var controlEnd = await b.Conversations.CommitAsync(End(control, T0.AddSeconds(20)), default);

        Assert.Equal(CommitResult.StoredAt(3, messageAt), committed);
        var loaded = (await b.Conversations.LoadAsync(c.Id, default))!;
        Assert.Equal(messageAt, loaded.EndTime);
        Assert.All(loaded.Participants, p => Assert.Equal(messageAt, p.EndTime));
        Assert.Equal(messageAt, Assert.Single((await b.Audit.ListAsync(c.Id, 25, 1, default)).Entities).At);
        var ended = Assert.Single((await b.Conversations.QueryAsync(new ConversationFilter(Ended: true), default)).Entities, x => x.Id == c.Id);
        Assert.Equal(messageAt, ended.EndTime);
        var stored = await a.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
        Assert.All(stored.Entities, m => Assert.True(m.Timestamp <= loaded.EndTime, $"message at {m.Timestamp:O} after the end {loaded.EndTime:O}"));

        Assert.Equal(CommitResult.StoredAt(1, T0.AddSeconds(20)), controlEnd);
        Assert.Equal(T0.AddSeconds(20), (await a.Conversations.LoadAsync(control.Id, default))!.EndTime);
    }

    /// <summary>
    /// Conversations as a store from before <c>last_message_time</c> held them: one with messages whose latest time is not
    /// the last-numbered one's, one with a single message, one with none. <paramref name="reopenFromBefore"/> closes the
    /// store, takes the column (and its migration's record) away, and opens the database again; then the backfilled column
    /// must serve activity and the end's stamp as if it had always been kept.
    /// </summary>
    protected async Task LastMessageTimeMigrationAsync(Func<StoragePorts, Task<StoragePorts>> reopenFromBefore)
    {
        var store = await CreateStoreAsync();
        var (_, chatty) = await CreateConversationAsync(store, inactivity: TimeSpan.FromMinutes(1));
        Assert.True((await store.Conversations.CommitAsync(Append(chatty, "late clock", T0.AddSeconds(10)), default)).Stored);
        Assert.True((await store.Conversations.CommitAsync(Append(chatty, "earlier clock", T0.AddSeconds(7)), default)).Stored);
        var (_, single) = await CreateConversationAsync(store, inactivity: TimeSpan.FromMinutes(1));
        var silent = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", "no-session", DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0.AddSeconds(3), TimeSpan.FromMinutes(1));
        Assert.True((await store.Conversations.CommitAsync(new Commit(silent, 0, []), default)).Stored);

        var migrated = await reopenFromBefore(store);

        Assert.Equal(T0.AddSeconds(10), await migrated.Conversations.LastActivityAsync(chatty.Id, default));
        Assert.Equal(T0, await migrated.Conversations.LastActivityAsync(single.Id, default));
        Assert.Equal(T0.AddSeconds(3), await migrated.Conversations.LastActivityAsync(silent.Id, default));
        Assert.Equal([single.Id], await migrated.Conversations.ListIdleAsync(T0.AddSeconds(62), 100, default));
        Assert.Equal(CommitResult.StoredAt(3, T0.AddSeconds(10)), await migrated.Conversations.CommitAsync(End(chatty, T0.AddSeconds(5)), default));
        Assert.Equal(CommitResult.StoredAt(0, T0.AddSeconds(4)), await migrated.Conversations.CommitAsync(End(silent, T0.AddSeconds(4)), default));
        // Appends keep the backfilled column current.
        Assert.True((await migrated.Conversations.CommitAsync(Append(single, "after the upgrade", T0.AddSeconds(30)), default)).Stored);
        Assert.Equal(T0.AddSeconds(30), await migrated.Conversations.LastActivityAsync(single.Id, default));
    }

    [ContractFact]
    public async Task Query_FiltersEndedAndPages()
    {
        var store = await CreateStoreAsync();
        for (var i = 0; i < 3; i++) await CreateConversationAsync(store);

        var page = await store.Conversations.QueryAsync(new ConversationFilter(Ended: false, PageSize: 2, PageNumber: 2), default);

        Assert.Equal(3, page.Total);
        Assert.Equal(2, page.PageCount);
        Assert.Single(page.Entities);
    }

    [ContractFact]
    public async Task Sessions_ListFilteredAndPaged_OldestFirst()
    {
        var store = await CreateStoreAsync();
        var sessions = store.Sessions;
        var deployment = Id();
        for (var i = 0; i < 7; i++)
            await sessions.CreateAsync(new GuestSession(Id(), Id(), deployment, null, T0.AddSeconds(i), Address: i == 3 ? "customer-3" : null), default);
        await sessions.CreateAsync(new GuestSession(Id(), Id(), deployment, null, T0, ChannelKind.Open), default);

        var web = new SessionFilter(deployment, ChannelKind.WebMessaging);
        var second = await sessions.ListAsync(web, 3, 2, default);
        var last = await sessions.ListAsync(web, 3, 3, default);
        var byCustomer = await sessions.ListAsync(web with { Address = "customer-3" }, 25, 1, default);

        Assert.Equal(7, second.Total);
        Assert.Equal(3, second.PageCount);
        Assert.Equal([T0.AddSeconds(3), T0.AddSeconds(4), T0.AddSeconds(5)], second.Entities.Select(s => s.CreatedAt));
        Assert.Single(last.Entities);
        Assert.Equal(T0.AddSeconds(3), Assert.Single(byCustomer.Entities).CreatedAt);
    }

    [ContractFact]
    public async Task Deployments_ListPaged_AndAnOldUnlimitedRateReadsAsThePlatforms()
    {
        var directory = (await CreateStoreAsync()).Directory;
        for (var i = 0; i < 3; i++)
            await directory.UpsertDeploymentAsync(new Deployment(Id(), $"d{i}", ["*"], true, DisconnectMode.ReadOnly, true, T0.AddSeconds(i),
                GuestMessagesPerSecond: i == 0 ? 0 : 7) { QueueId = "q" }, default);

        var page = await directory.ListDeploymentsAsync(2, 1, default);

        Assert.Equal(3, page.Total);
        Assert.Equal(["d0", "d1"], page.Entities.Select(d => d.Name));
        Assert.Equal(Deployment.PlatformGuestMessagesPerSecond, page.Entities[0].GuestMessagesPerSecond);
        Assert.Equal(7, page.Entities[1].GuestMessagesPerSecond);
    }

    [ContractFact]
    public async Task Commit_CancelledBeforeItRuns_IsNotStored_AndSaysSo()
    {
        var store = await CreateStoreAsync();
        var (_, c) = await CreateConversationAsync(store);
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "never", [], null), T0);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            store.Conversations.CommitAsync(new Commit(ConversationMachine.ApplyAll(c, add.Events), c.Version, add.Events), cancelled.Token));

        var messages = await store.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
        Assert.DoesNotContain(messages.Entities, m => m.Text == "never");
        Assert.Equal(c.Version, (await store.Conversations.LoadAsync(c.Id, default))!.Version);
    }

    [ContractFact]
    public async Task Integration_RotatedSecret_SurvivesAReopen_AndIsClearedWhenRotatedWithoutOverlap()
    {
        var store = await CreateStoreAsync();
        var integration = new OpenIntegration(Id(), "Partner", "https://partner.example/hook", "old-secret-0123456789",
            ImmutableDictionary<string, string>.Empty.Add("X-Partner-Key", "k"), true, DisconnectMode.ReadOnly, T0, T0, "c", "c") { QueueId = "q" };
        await store.Directory.UpsertIntegrationAsync(integration.RotateSecret("new-secret-0123456789", TimeSpan.FromHours(1), T0), default);

        var reopened = await ReopenAsync(store);
        var loaded = (await reopened.Directory.GetIntegrationAsync(integration.Id, default))!;

        Assert.Equal("new-secret-0123456789", loaded.SecretToken);
        Assert.Equal("old-secret-0123456789", loaded.PreviousSecretToken);
        Assert.Equal(T0 + TimeSpan.FromHours(1), loaded.PreviousSecretExpiresAt);
        Assert.Equal(["new-secret-0123456789", "old-secret-0123456789"], loaded.SecretsInForce(T0));
        await reopened.Directory.UpsertIntegrationAsync(loaded.RotateSecret("third-secret-0123456789", TimeSpan.Zero, T0), default);
        var cleared = (await reopened.Directory.GetIntegrationAsync(integration.Id, default))!;
        Assert.Null(cleared.PreviousSecretToken);
        Assert.Null(cleared.PreviousSecretExpiresAt);
    }
}
