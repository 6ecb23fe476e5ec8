using Microsoft.Data.Sqlite;
using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

/// <summary>
/// The messages table keeps one index per conversation (migration 0017): a message written dirties one leaf per
/// conversation, not two, and the look-ups by conversation still use an index.
/// </summary>
public sealed class SqliteIndexTests : IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-index-" + Guid.NewGuid().ToString("N"));
    static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_000);

    string DbPath => Path.Combine(_dir, "parley.db");

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        return Task.CompletedTask;
    }

    static string Id() => Guid.NewGuid().ToString();

    async Task<string> StoreOneMessageAsync()
    {
        await using var store = await SqliteStore.OpenAsync(DbPath);
        var ports = store.Ports;
        var session = await ports.Sessions.CreateAsync(new GuestSession(Id(), Id(), "dep", null, T0), default);
        var c = ConversationMachine.Start(Id(), ChannelKind.WebMessaging, "dep", session.Id, DisconnectMode.ReadOnly,
            MessageDirection.Inbound, "Guest", "Bot", Id, T0, null);
        var add = ConversationMachine.Decide(c, new AddMessage(Id(), c.Customer.Id, MessageKind.Text, "hello", [], null), T0);
        var after = ConversationMachine.ApplyAll(c, add.Events);
        Assert.True((await ports.Conversations.CommitAsync(new Commit(after, 0, add.Events, new SessionMove(session.Id, null, after.Id)), default)).Stored);
        Assert.Equal(1, (await ports.Conversations.ListMessagesAsync(after.Id, 25, 1, default)).Total);
        return after.Id;
    }

    async Task<SqliteConnection> OpenFileAsync()
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
        await c.OpenAsync();
        return c;
    }

    static async Task<List<string>> ColumnAsync(SqliteConnection c, string sql, int column = 0)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$cid", "x");
        await using var r = await cmd.ExecuteReaderAsync();
        var list = new List<string>();
        while (await r.ReadAsync()) list.Add(r.GetString(column));
        return list;
    }

    static Task<List<string>> IndexesOfAsync(SqliteConnection c, string table) =>
        ColumnAsync(c, $"SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' AND name NOT LIKE 'sqlite_autoindex%'");

    [Fact]
    public async Task MessagesHaveOneIndexByConversation_AndTheLookUpsByConversationUseIt()
    {
        await StoreOneMessageAsync();
        await using var c = await OpenFileAsync();

        var indexes = await IndexesOfAsync(c, "messages");
        Assert.DoesNotContain("messages_by_conversation", indexes);
        Assert.Contains("messages_by_sequence", indexes);

        // The queries the store runs for a conversation's messages (its page and its count) search that index.
        foreach (var query in new[]
        {
            "SELECT COUNT(*) FROM messages WHERE conversation_id = $cid",
            "SELECT id FROM messages WHERE conversation_id = $cid ORDER BY sequence DESC LIMIT 25 OFFSET 0",
        })
        {
            var plan = string.Join(" | ", await ColumnAsync(c, "EXPLAIN QUERY PLAN " + query, column: 3));
            Assert.StartsWith("SEARCH messages USING", plan);   // a search by the index's leading column, not a scan of the table
            Assert.Contains("INDEX messages_by_sequence (conversation_id=?)", plan);
        }
    }

    [Fact]
    public async Task ADatabaseFromBeforeTheChange_LosesTheSecondIndexAtItsNextOpen_AndKeepsItsMessages()
    {
        var conversationId = await StoreOneMessageAsync();
        // As a database of schema 16 was: the old index present, 0017 not applied.
        await using (var c = await OpenFileAsync())
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "CREATE INDEX messages_by_conversation ON messages (conversation_id, version); DELETE FROM schema_version WHERE version >= 17";
            await cmd.ExecuteNonQueryAsync();
        }

        await using (var store = await SqliteStore.OpenAsync(DbPath))
            Assert.Equal(1, (await store.Ports.Conversations.ListMessagesAsync(conversationId, 25, 1, default)).Total);

        await using var after = await OpenFileAsync();
        Assert.DoesNotContain("messages_by_conversation", await ColumnAsync(after, "SELECT name FROM sqlite_master WHERE type = 'index'"));
        Assert.True(int.Parse(Assert.Single(await ColumnAsync(after, "SELECT CAST(MAX(version) AS TEXT) FROM schema_version"))) >= 17);
    }

    [Fact]
    public async Task AnEndMovesNoIndexKeyedOutOfItsOrder_AndTheQueriesThatUsedThemStillSearchAnIndex()
    {
        await StoreOneMessageAsync();
        await using var c = await OpenFileAsync();

        // Migration 0018: the state index and the live-only session index are gone; the session index covers every row.
        var indexes = await IndexesOfAsync(c, "conversations");
        Assert.DoesNotContain("conversations_by_state", indexes);
        Assert.DoesNotContain("conversations_live_by_session", indexes);
        Assert.Contains("conversations_by_session", indexes);
        var session = Assert.Single(await ColumnAsync(c, "SELECT sql FROM sqlite_master WHERE name = 'conversations_by_session'"));
        Assert.DoesNotContain("WHERE", session);   // an end (a change of state) does not touch it

        // The store's queries (SqliteConversationStore) that read by state or by session: each searches an index.
        foreach (var (query, index) in new[]
        {
            ("SELECT COUNT(*) FROM conversations WHERE state = 'Connected'", @"conversations_live\w*"),   // any index of live rows counts them
            ("SELECT id FROM conversations WHERE state = 'Connected' ORDER BY start_time ASC, id LIMIT 25 OFFSET 0", "conversations_live"),
            ("SELECT id FROM conversations WHERE start_time >= 1 AND start_time < 2 AND state = 'Disconnected' ORDER BY start_time ASC, id LIMIT 25 OFFSET 0",
                "conversations_by_start"),
            ("SELECT c.id FROM guest_sessions g JOIN conversations c ON c.guest_session_id = g.id WHERE c.state = 'Connected' AND g.address = 'x' ORDER BY c.id LIMIT 100",
                "conversations_by_session"),
        })
        {
            var plan = string.Join(" | ", await ColumnAsync(c, "EXPLAIN QUERY PLAN " + query, column: 3));
            Assert.Matches($@"USING (COVERING )?INDEX {index}\b", plan);
            Assert.DoesNotContain("SCAN conversations |", plan + " |");   // never the whole table
        }
    }
}
