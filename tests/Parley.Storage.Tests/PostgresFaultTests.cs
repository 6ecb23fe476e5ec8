using Npgsql;
using Parley.Core;
using Parley.Storage.Postgres;

namespace Parley.Storage.Tests;

/// <summary>
/// PostgreSQL going away under the store, on the test's own connections (through <see cref="TcpFaultProxy"/>; the
/// server other tests share is never stopped): every port answers <see cref="StoreUnavailableException"/>, never a raw
/// Npgsql exception; a commit whose answer was lost is not reported stored; and the pool recovers by itself.
/// </summary>
[RequiresEngine(PostgresTestDatabase.Variable)]
public sealed class PostgresFaultTests(PostgresTestDatabase database) : IClassFixture<PostgresTestDatabase>, IAsyncLifetime
{
    static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_000);
    static string Id() => Guid.NewGuid().ToString();

    TcpFaultProxy _proxy = null!;
    PostgresStorage _store = null!;

    public async Task InitializeAsync()
    {
        var direct = new NpgsqlConnectionStringBuilder(await database.NewSchemaAsync());
        _proxy = new TcpFaultProxy(direct.Host!, direct.Port);
        // Short timeouts: a test about failures should not wait out production ones.
        var viaProxy = new NpgsqlConnectionStringBuilder(direct.ConnectionString) { Host = "127.0.0.1", Port = _proxy.Port, Timeout = 3, CommandTimeout = 5 };
        _store = await PostgresStorage.OpenAsync(viaProxy.ConnectionString, "fault-node");
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    async Task<Conversation> StartConversationAsync()
    {
        var session = await _store.Ports.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);
        var c = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0);
        Assert.True((await _store.Ports.Conversations.CommitAsync(new Commit(c, 0, [], new SessionMove(session.Id, null, c.Id)), default)).Stored);
        return c;
    }

    static Commit Append(Conversation c, string text)
    {
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, text, [], null), T0);
        return new Commit(ConversationMachine.ApplyAll(c, add.Events), c.Version, add.Events);
    }

    [ContractFact]
    public async Task EngineDown_EveryPortAnswersStoreUnavailable_AndThePoolRecoversWhenItReturns()
    {
        var c = await StartConversationAsync();
        _proxy.Down();

        // Each port, reads and writes alike: the engine's failure in the store's own terms.
        var calls = new Func<Task>[]
        {
            () => _store.Ports.Conversations.LoadAsync(c.Id, default),
            () => _store.Ports.Conversations.CommitAsync(Append(c, "while down"), default),
            () => _store.Ports.Conversations.ListMessagesAsync(c.Id, 25, 1, default),
            () => _store.Ports.Conversations.ListIdleAsync(T0, 10, default),
            () => _store.Ports.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default),
            () => _store.Ports.Sessions.ListAsync(new SessionFilter(), 25, 1, default),
            () => _store.Ports.Audit.ListAsync(null, 25, 1, default),
            () => _store.Ports.Audit.SetSocketsNotifiedAsync(Id(), 1, default),
            () => _store.Ports.Directory.GetDeploymentAsync("dep", default),
            () => _store.Ports.Directory.GetOrCreateSigningKeyAsync(() => new byte[32], default),
            () => _store.Ports.Credentials.ListSigningKeysAsync(default),
            () => _store.Ports.Outbox.LeaseDueAsync(T0, TimeSpan.FromSeconds(30), 10, 8, new Dictionary<string, int>(), default),
            () => _store.Ports.Outbox.ReleaseLeasesAsync(default),
        };
        foreach (var call in calls)
        {
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(call);
            Assert.IsNotType<StoreUnavailableException>(e.InnerException);
        }

        _proxy.Up();
        // No restart, no reopen: the next call gets a fresh connection.
        Assert.Equal(CommitResult.StoredAt(1), await _store.Ports.Conversations.CommitAsync(Append(c, "back"), default));
        Assert.Equal("back", Assert.Single((await _store.Ports.Conversations.ListMessagesAsync(c.Id, 25, 1, default)).Entities).Text);
    }

    [ContractFact]
    public async Task ACommitWhoseAnswerIsLost_IsNotReportedStored_AndTheStoreStaysConsistent()
    {
        var c = await StartConversationAsync();
        await _store.Ports.Conversations.CommitAsync(Append(c, "first"), default);

        var cut = _proxy.CutAfterNextWrite();
        var lost = await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.Ports.Conversations.CommitAsync(Append(c, "outcome unknown"), default));
        Assert.True(cut.IsCompleted, "the connection was cut after the commit was sent");
        Assert.DoesNotContain("Password", lost.Message, StringComparison.OrdinalIgnoreCase);

        // Whether it committed is for the store to say now: the history is dense either way, and the next append follows it.
        var history = await _store.Ports.Conversations.ListMessagesAsync(c.Id, 25, 1, default);
        var sequences = history.Entities.Select(m => m.Sequence).Order().ToList();
        Assert.Equal(Enumerable.Range(1, sequences.Count).Select(i => (long)i), sequences);
        Assert.Equal(CommitResult.StoredAt(history.Total + 1), await _store.Ports.Conversations.CommitAsync(Append(c, "next"), default));
    }

    [ContractFact]
    public async Task AnUnreachableServer_AtOpen_IsStoreUnavailable()
    {
        _proxy.Down();
        var b = new NpgsqlConnectionStringBuilder(await database.NewSchemaAsync()) { Host = "127.0.0.1", Port = _proxy.Port, Timeout = 3 };
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => PostgresStorage.OpenAsync(b.ConnectionString, "other"));
        Assert.DoesNotContain(b.Password!, e.Message);
    }
}
