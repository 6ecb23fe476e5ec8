using System.Collections.Immutable;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Parley.Core;

namespace Parley.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode with <c>synchronous = FULL</c>, so a commit that returned survives
/// a crash or power loss. Writes go through one connection, one transaction at a time (SQLite has one writer);
/// reads open pooled connections of their own and never wait for the writer.
/// </summary>
public sealed partial class SqliteStore : IConversationStore, IGuestSessionStore, IAuditLog, IDirectoryStore, ICredentialStore, IOutbox, IAsyncDisposable
{
    readonly string _connectionString;
    readonly SqliteConnection _writer;
    readonly Task _writerLoop;

    readonly SecretCodec _secrets;

    public string Path { get; }

    /// <summary>How many secrets an older version had stored in plain text and this open encrypted (0 on every later open).</summary>
    public int SecretsEncryptedAtOpen { get; private init; }

    SqliteStore(string path, string connectionString, SqliteConnection writer, SecretCodec secrets)
    {
        Path = path;
        _secrets = secrets;
        _connectionString = connectionString;
        _writer = writer;
        _writerLoop = Task.Run(RunWriterAsync);
    }

    /// <summary>Opens the store with secrets kept as they are written (tests of the store itself).</summary>
    public static Task<SqliteStore> OpenAsync(string path, CancellationToken ct = default) => OpenAsync(path, null, ct);

    /// <summary>
    /// Opens the store; with a <paramref name="cipher"/>, secrets are encrypted at rest, those stored in plain text by an
    /// older version are encrypted now, and <see cref="SecretsUnreadableException"/> says the cipher cannot read the ones stored.
    /// </summary>
    public static async Task<SqliteStore> OpenAsync(string path, ISecretCipher? cipher, CancellationToken ct = default)
    {
        OwnerOnly.PrepareDatabase(path);
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path, Pooling = true, DefaultTimeout = 5, ForeignKeys = true, Mode = SqliteOpenMode.ReadWriteCreate,
        }.ToString();
        var writer = new SqliteConnection(cs);
        await writer.OpenAsync(ct);
        await ExecAsync(writer, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", ct);
        await Migrations.ApplyAsync(writer, ct);
        var secrets = new SecretCodec(cipher);
        int encrypted;
        try { encrypted = await secrets.MigrateAsync(writer, ct); }
        catch { await writer.DisposeAsync(); throw; }
        OwnerOnly.RestrictDatabaseFiles(path);   // the -wal and -shm SQLite has just created (or an older start left)
        return new SqliteStore(path, cs, writer, secrets) { SecretsEncryptedAtOpen = encrypted };
    }

    public async ValueTask DisposeAsync()
    {
        _writes.Writer.TryComplete();
        await _writerLoop;
        foreach (var cmd in _prepared.Values) await cmd.DisposeAsync();
        await _writer.DisposeAsync();
        SqliteConnection.ClearAllPools();
    }

    async Task<SqliteConnection> ReadAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct);
        return c;
    }

    static async Task ExecAsync(SqliteConnection c, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(ct);
    }

    readonly Dictionary<string, SqliteCommand> _prepared = [];

    /// <summary>
    /// A writer command kept prepared across writes (only the writer loop runs these, one at a time): the hot statements
    /// of a commit are compiled by SQLite once, not once per message.
    /// </summary>
    SqliteCommand Prepared(SqliteTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        if (!_prepared.TryGetValue(sql, out var cmd))
        {
            cmd = _writer.CreateCommand();
            cmd.CommandText = sql;
            _prepared[sql] = cmd;
        }
        cmd.Transaction = tx;
        cmd.Parameters.Clear();
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    /// <summary>Savepoint statements, prepared once: every write of a group runs three of them.</summary>
    void Savepoint(SqliteTransaction tx, string sql) => Prepared(tx, sql).ExecuteNonQuery();

    static SqliteCommand Command(SqliteConnection c, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    /// <summary>
    /// Every write goes through here. Writes queued while the previous transaction was committing are applied together,
    /// each under its own savepoint, and made durable by one COMMIT (one fsync): group commit. A write whose work returns
    /// false (or a refused <see cref="CommitResult"/>) or throws is rolled back to its savepoint alone; the others in the group still commit. The caller's task
    /// completes only after the COMMIT, so nothing is acknowledged before it is stored.
    /// </summary>
    async Task<T> WriteAsync<T>(Func<SqliteTransaction, Task<T>> work, CancellationToken ct)
    {
        var request = new WriteRequest(async tx => await work(tx), ct);
        if (!_writes.Writer.TryWrite(request)) throw new ObjectDisposedException(nameof(SqliteStore));
        // Not cancellable once queued: a caller is never told "failed" about a write that then commits. Cancellation
        // stops a write only before it runs (the writer checks the token first).
        return (T)(await request.Done.Task)!;
    }

    sealed class WriteRequest(Func<SqliteTransaction, Task<object?>> work, CancellationToken ct)
    {
        public Func<SqliteTransaction, Task<object?>> Work => work;
        public CancellationToken Cancellation => ct;
        public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Most writes one transaction takes; bounds how long the first write of a group waits for the last.</summary>
    const int MaxGroup = 256;

    readonly Channel<WriteRequest> _writes = Channel.CreateUnbounded<WriteRequest>(new UnboundedChannelOptions { SingleReader = true });

    async Task RunWriterAsync()
    {
        var group = new List<(WriteRequest Request, object? Result, Exception? Error)>(MaxGroup);
        while (await _writes.Reader.WaitToReadAsync())
        {
            group.Clear();
            WriteRequest? current = null;
            try
            {
                await using var tx = (SqliteTransaction)await _writer.BeginTransactionAsync();
                while (group.Count < MaxGroup && _writes.Reader.TryRead(out current))
                {
                    if (current.Cancellation.IsCancellationRequested)
                    {
                        group.Add((current, null, new OperationCanceledException(current.Cancellation)));
                        continue;
                    }
                    Savepoint(tx, "SAVEPOINT w");
                    try
                    {
                        var result = await current.Work(tx);
                        if (result is false or CommitResult { Stored: false }) Savepoint(tx, "ROLLBACK TO w");
                        Savepoint(tx, "RELEASE w");
                        group.Add((current, result, null));
                    }
                    catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 13 or 10 or 7 })   // not FULL, IOERR, NOMEM
                    {
                        Savepoint(tx, "ROLLBACK TO w");
                        Savepoint(tx, "RELEASE w");
                        group.Add((current, null, e));
                    }
                }
                current = null;
                await tx.CommitAsync();
            }
            catch (Exception e)
            {
                // The transaction is lost (a failed COMMIT, or an error that made SQLite roll it all back): nothing of
                // the group is stored, and every caller — the one whose write was running too — hears so.
                current?.Done.TrySetException(e);
                foreach (var (request, _, _) in group) request.Done.TrySetException(e);
                continue;
            }
            foreach (var (request, result, error) in group)
                if (error is null) request.Done.TrySetResult(result);
                else request.Done.TrySetException(error);
        }
    }

    async Task<int> WriteAsync(string sql, CancellationToken ct, params (string, object?)[] args) =>
        await WriteAsync(async tx =>
        {
            await using var cmd = Command(_writer, sql, args);
            cmd.Transaction = tx;
            return await cmd.ExecuteNonQueryAsync(ct);
        }, ct);

    static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();
    static long? Ms(DateTimeOffset? t) => t?.ToUnixTimeMilliseconds();
    static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
    static DateTimeOffset? TimeOrNull(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : Time(r.GetInt64(i));
    static string? StringOrNull(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    static T Parse<T>(string s) where T : struct, Enum => Enum.Parse<T>(s);

    // ---------------------------------------------------------------- conversations

    const string ConversationColumns =
        "id, channel, deployment_id, guest_session_id, disconnect_mode, originating_direction, state, start_time, end_time, version, inactivity_seconds";

    public async Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        var list = await LoadConversationsAsync(c, $"SELECT {ConversationColumns} FROM conversations WHERE id = $id", ct, ("$id", conversationId));
        return list.Count == 0 ? null : list[0];
    }

    static async Task<List<Conversation>> LoadConversationsAsync(SqliteConnection c, string sql, CancellationToken ct,
        params (string, object?)[] args)
    {
        var rows = new List<Conversation>();
        await using (var cmd = Command(c, sql, args))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                rows.Add(new Conversation(r.GetString(0), Parse<ChannelKind>(r.GetString(1)), r.GetString(2), r.GetString(3),
                    Parse<DisconnectMode>(r.GetString(4)), Parse<MessageDirection>(r.GetString(5)),
                    Parse<ConversationState>(r.GetString(6)), Time(r.GetInt64(7)), TimeOrNull(r, 8), r.GetInt64(9), [],
                    r.GetInt64(10) > 0 ? TimeSpan.FromSeconds(r.GetInt64(10)) : null));
        if (rows.Count == 0) return rows;

        var participants = new Dictionary<string, List<Participant>>();
        var ids = string.Join(",", rows.Select((_, i) => $"$c{i}"));
        await using (var cmd = Command(c,
            $"SELECT conversation_id, id, purpose, name, communication_id, state, start_time, end_time, disconnect_type " +
            $"FROM participants WHERE conversation_id IN ({ids}) ORDER BY conversation_id, ordinal",
            rows.Select((row, i) => ($"$c{i}", (object?)row.Id)).ToArray()))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                var p = new Participant(r.GetString(1), Parse<ParticipantPurpose>(r.GetString(2)), r.GetString(3), r.GetString(4),
                    Parse<ParticipantState>(r.GetString(5)), Time(r.GetInt64(6)), TimeOrNull(r, 7),
                    r.IsDBNull(8) ? null : Parse<DisconnectType>(r.GetString(8)));
                if (!participants.TryGetValue(r.GetString(0), out var l)) participants[r.GetString(0)] = l = [];
                l.Add(p);
            }
        return rows.Select(row => row with { Participants = [.. participants.GetValueOrDefault(row.Id) ?? []] }).ToList();
    }

    /// <summary>
    /// One commit, atomically (see <see cref="IConversationStore"/>): the guard is the statement that writes the
    /// conversation row. Creation inserts it only if absent; a change of state updates it only at the expected version;
    /// a message-only commit moves its message counter only while it is at the expected version and connected. Each
    /// of these also advances <c>last_sequence</c> by the commit's message count and returns it, and the messages take
    /// the numbers up to it: no row there, no message stored.
    /// </summary>
    public Task<CommitResult> CommitAsync(Commit commit, CancellationToken ct) => WriteAsync(async tx =>
    {
        var c = commit.After;
        var messages = commit.Events.OfType<MessageAdded>().Select(e => e.Message).ToList();
        long lastSequence;
        if (commit.ExpectedVersion == 0)
        {
            var insert = Prepared(tx,
                $"INSERT OR IGNORE INTO conversations ({ConversationColumns}, last_sequence) VALUES ($id,$ch,$dep,$sess,$mode,$dir,$state,$start,$end,$v,$idle,$n)",
                ("$id", c.Id), ("$ch", c.Channel.ToString()), ("$dep", c.DeploymentId), ("$sess", c.GuestSessionId),
                ("$mode", c.DisconnectMode.ToString()), ("$dir", c.OriginatingDirection.ToString()), ("$state", c.State.ToString()),
                ("$start", Ms(c.StartTime)), ("$end", Ms(c.EndTime)), ("$v", c.Version), ("$idle", (long)(c.InactivityTimeout?.TotalSeconds ?? 0)),
                ("$n", messages.Count));
            if (await insert.ExecuteNonQueryAsync(ct) == 0) return CommitResult.Refused;
            lastSequence = messages.Count;
            for (var i = 0; i < c.Participants.Length; i++)
            {
                var p = c.Participants[i];
                var cmd = Prepared(tx,
                    "INSERT INTO participants (id, conversation_id, ordinal, purpose, name, communication_id, state, start_time, end_time, disconnect_type) " +
                    "VALUES ($id,$cid,$ord,$purpose,$name,$comm,$state,$start,$end,$dt)",
                    ("$id", p.Id), ("$cid", c.Id), ("$ord", i), ("$purpose", p.Purpose.ToString()), ("$name", p.Name),
                    ("$comm", p.CommunicationId), ("$state", p.State.ToString()), ("$start", Ms(p.StartTime)), ("$end", Ms(p.EndTime)),
                    ("$dt", p.DisconnectType?.ToString()));
                await cmd.ExecuteNonQueryAsync(ct);
            }
        }
        else if (c.Version == commit.ExpectedVersion)
        {
            // Messages only: the state stays, but the counter moves only if it is still the state they were decided on.
            var append = Prepared(tx,
                "UPDATE conversations SET last_sequence = last_sequence + $n WHERE id = $id AND version = $expected AND state = 'Connected' " +
                "RETURNING last_sequence",
                ("$n", messages.Count), ("$id", c.Id), ("$expected", commit.ExpectedVersion));
            if (await append.ExecuteScalarAsync(ct) is not long last) return CommitResult.Refused;
            lastSequence = last;
        }
        else
        {
            var update = Prepared(tx,
                "UPDATE conversations SET state = $state, end_time = $end, version = $v, last_sequence = last_sequence + $n " +
                "WHERE id = $id AND version = $expected RETURNING last_sequence",
                ("$state", c.State.ToString()), ("$end", Ms(c.EndTime)), ("$v", c.Version), ("$n", messages.Count), ("$id", c.Id),
                ("$expected", commit.ExpectedVersion));
            if (await update.ExecuteScalarAsync(ct) is not long last) return CommitResult.Refused;   // another writer moved first
            lastSequence = last;
            foreach (var e in commit.Events.OfType<ParticipantDisconnected>())
            {
                var p = c.FindParticipant(e.ParticipantId)!;
                var cmd = Prepared(tx,
                    "UPDATE participants SET state = $state, end_time = $end, disconnect_type = $dt WHERE id = $id",
                    ("$state", p.State.ToString()), ("$end", Ms(p.EndTime)), ("$dt", p.DisconnectType?.ToString()), ("$id", p.Id));
                await cmd.ExecuteNonQueryAsync(ct);
            }
        }

        var sequence = lastSequence - messages.Count;
        foreach (var m in messages)
        {
            var cmd = Prepared(tx,
                "INSERT INTO messages (id, conversation_id, participant_id, direction, kind, text, events, metadata, timestamp, originating_entity, sender_name, version, status, external_key, sequence) " +
                "VALUES ($id,$cid,$pid,$dir,$kind,$text,$events,$meta,$ts,$oe,$sender,$v,$status,$ext,$seq)",
                ("$id", m.Id), ("$cid", m.ConversationId), ("$pid", m.ParticipantId), ("$dir", m.Direction.ToString()),
                ("$kind", m.Kind.ToString()), ("$text", m.Text),
                ("$events", m.Events.IsDefaultOrEmpty ? null : JsonSerializer.Serialize(m.Events.Select(e => new[] { e.EventType, e.Type }))),
                ("$meta", m.Metadata is null || m.Metadata.IsEmpty ? null : JsonSerializer.Serialize(m.Metadata)),
                ("$ts", Ms(m.Timestamp)), ("$oe", m.OriginatingEntity), ("$sender", m.SenderName), ("$v", m.Version),
                ("$status", m.Status), ("$ext", m.ExternalKey), ("$seq", ++sequence));
            try { await cmd.ExecuteNonQueryAsync(ct); }
            catch (SqliteException e) when (e.SqliteErrorCode == 19 && m.ExternalKey is not null) { throw new DuplicateMessageException(m.ExternalKey); }
        }

        if (commit.SessionConversation is { } move)
        {
            var cmd = Prepared(tx,
                "UPDATE guest_sessions SET conversation_id = $new WHERE id = $id AND conversation_id IS $expected",
                ("$new", move.NewConversationId), ("$id", move.SessionId), ("$expected", move.ExpectedConversationId));
            if (await cmd.ExecuteNonQueryAsync(ct) == 0) return CommitResult.Refused;   // the session moved on meanwhile
        }

        foreach (var o in commit.Outbox.IsDefault ? [] : commit.Outbox)
        {
            var cmd = Prepared(tx,
                "INSERT INTO outbox (id, destination, message_id, conversation_id, body, state, attempts, due_at, created_at) " +
                "VALUES ($id,$dest,$mid,$cid,$body,'Pending',0,$due,$at)",
                ("$id", o.Id), ("$dest", o.Destination), ("$mid", o.MessageId), ("$cid", o.ConversationId), ("$body", o.Body),
                ("$due", Ms(o.DueAt)), ("$at", Ms(o.DueAt)));
            await cmd.ExecuteNonQueryAsync(ct);
        }

        if (commit.Audit is { } a)
        {
            var cmd = Prepared(tx,
                "INSERT INTO termination_audit (id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified) " +
                "VALUES ($id,$cid,$pid,$lever,$client,$reason,$at,$n)",
                ("$id", a.Id), ("$cid", a.ConversationId), ("$pid", a.ParticipantId), ("$lever", a.Lever.ToString()),
                ("$client", a.ClientId), ("$reason", a.Reason), ("$at", Ms(a.At)), ("$n", a.SocketsNotified));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        return CommitResult.StoredAt(lastSequence);
    }, ct);

    public async Task<Page<ConversationMessage>> ListMessagesAsync(string conversationId, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        long total;
        await using (var cmd = Command(c, "SELECT COUNT(*) FROM messages WHERE conversation_id = $cid", ("$cid", conversationId)))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var rows = await ReadMessagesAsync(c,
            "WHERE conversation_id = $cid ORDER BY sequence DESC LIMIT $limit OFFSET $offset", ct,
            ("$cid", conversationId), ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize));
        return new Page<ConversationMessage>(rows, pageSize, pageNumber, total);
    }

    public async Task<ConversationMessage?> GetMessageAsync(string messageId, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        var rows = await ReadMessagesAsync(c, "WHERE id = $id", ct, ("$id", messageId));
        return rows.Count == 0 ? null : rows[0];
    }

    static async Task<List<ConversationMessage>> ReadMessagesAsync(SqliteConnection c, string where, CancellationToken ct,
        params (string, object?)[] args)
    {
        var rows = new List<ConversationMessage>();
        await using var cmd = Command(c,
            "SELECT id, conversation_id, participant_id, direction, kind, text, events, metadata, timestamp, originating_entity, sender_name, version, status, external_key, sequence " +
            "FROM messages " + where, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var events = r.IsDBNull(6)
                ? ImmutableArray<MessageEvent>.Empty
                : JsonSerializer.Deserialize<string[][]>(r.GetString(6))!.Select(e => new MessageEvent(e[0], e[1])).ToImmutableArray();
            var metadata = r.IsDBNull(7) ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(7))!.ToImmutableDictionary();
            rows.Add(new ConversationMessage(r.GetString(0), r.GetString(1), r.GetString(2), Parse<MessageDirection>(r.GetString(3)),
                Parse<MessageKind>(r.GetString(4)), StringOrNull(r, 5), events, Time(r.GetInt64(8)), StringOrNull(r, 9),
                StringOrNull(r, 10), r.GetInt64(11), metadata, StringOrNull(r, 12), StringOrNull(r, 13), r.GetInt64(14)));
        }
        return rows;
    }

    public async Task<ConversationMessage?> FindByExternalKeyAsync(string externalKey, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        var rows = await ReadMessagesAsync(c, "WHERE external_key = $k", ct, ("$k", externalKey));
        return rows.Count == 0 ? null : rows[0];
    }

    public async Task<bool> SetMessageStatusAsync(string messageId, string status, CancellationToken ct) =>
        await WriteAsync("UPDATE messages SET status = $s WHERE id = $id", ct, ("$s", status), ("$id", messageId)) == 1;

    const string LastMessageTime =
        "(SELECT m.timestamp FROM messages m WHERE m.conversation_id = c.id ORDER BY m.sequence DESC LIMIT 1)";

    public async Task<IReadOnlyList<string>> ListIdleAsync(DateTimeOffset now, int max, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        await using var cmd = Command(c,
            "SELECT c.id FROM conversations c WHERE c.state = 'Connected' AND c.inactivity_seconds > 0 " +
            $"AND COALESCE({LastMessageTime}, c.start_time) + c.inactivity_seconds * 1000 <= $now LIMIT $max",
            ("$now", Ms(now)), ("$max", max));
        var ids = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) ids.Add(r.GetString(0));
        return ids;
    }

    public async Task<DateTimeOffset?> LastActivityAsync(string conversationId, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        await using var cmd = Command(c, $"SELECT COALESCE({LastMessageTime}, c.start_time) FROM conversations c WHERE c.id = $id", ("$id", conversationId));
        return await cmd.ExecuteScalarAsync(ct) is long ms ? Time(ms) : null;
    }

    public async Task<Page<Conversation>> QueryAsync(ConversationFilter f, CancellationToken ct)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (f.StartedFrom is { } from) { where.Add("start_time >= $from"); args.Add(("$from", Ms(from))); }
        if (f.StartedBefore is { } before) { where.Add("start_time < $before"); args.Add(("$before", Ms(before))); }
        if (f.Ended is { } ended) where.Add(ended ? "state = 'Disconnected'" : "state = 'Connected'");
        if (f.Channel is { } channel) { where.Add("channel = $channel"); args.Add(("$channel", channel.ToString())); }
        var whereSql = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        var orderColumn = f.OrderBy == "conversationEnd" ? "end_time" : "start_time";
        var order = $"ORDER BY {orderColumn} {(f.Descending ? "DESC" : "ASC")}, id";

        await using var c = await ReadAsync(ct);
        long total;
        await using (var cmd = Command(c, $"SELECT COUNT(*) FROM conversations {whereSql}", [.. args]))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        args.Add(("$limit", f.PageSize));
        args.Add(("$offset", (long)(f.PageNumber - 1) * f.PageSize));
        var rows = await LoadConversationsAsync(c,
            $"SELECT {ConversationColumns} FROM conversations {whereSql} {order} LIMIT $limit OFFSET $offset", ct, [.. args]);
        return new Page<Conversation>(rows, f.PageSize, f.PageNumber, total);
    }

    // ---------------------------------------------------------------- guest sessions

    public async Task<GuestSession?> FindByTokenHashAsync(string tokenHash, CancellationToken ct) =>
        await ReadSessionAsync("WHERE token_hash = $v", tokenHash, ct);

    public async Task<GuestSession?> GetAsync(string sessionId, CancellationToken ct) =>
        await ReadSessionAsync("WHERE id = $v", sessionId, ct);

    async Task<GuestSession?> ReadSessionAsync(string where, string value, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        var list = await ReadSessionsAsync(c, where, ct, ("$v", value));
        return list.Count == 0 ? null : list[0];
    }

    static async Task<List<GuestSession>> ReadSessionsAsync(SqliteConnection c, string where, CancellationToken ct, params (string, object?)[] args)
    {
        var list = new List<GuestSession>();
        await using var cmd = Command(c,
            "SELECT id, token_hash, deployment_id, conversation_id, created_at, channel, address, address_type, display_name FROM guest_sessions " + where, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new GuestSession(r.GetString(0), r.GetString(1), r.GetString(2), StringOrNull(r, 3), Time(r.GetInt64(4)),
                Parse<ChannelKind>(r.GetString(5)), StringOrNull(r, 6), StringOrNull(r, 7), StringOrNull(r, 8)));
        return list;
    }

    public async Task<GuestSession> CreateAsync(GuestSession s, CancellationToken ct)
    {
        await WriteAsync("INSERT OR IGNORE INTO guest_sessions (id, token_hash, deployment_id, conversation_id, created_at, channel, address, address_type, display_name) " +
            "VALUES ($id,$hash,$dep,$cid,$at,$ch,$addr,$type,$name)",
            ct, ("$id", s.Id), ("$hash", s.TokenHash), ("$dep", s.DeploymentId), ("$cid", s.ConversationId), ("$at", Ms(s.CreatedAt)),
            ("$ch", s.Channel.ToString()), ("$addr", s.Address), ("$type", s.AddressType), ("$name", s.DisplayName));
        return (await FindByTokenHashAsync(s.TokenHash, ct))!;
    }

    public async Task<bool> DetachConversationAsync(string sessionId, string expectedConversationId, CancellationToken ct) =>
        await WriteAsync("UPDATE guest_sessions SET conversation_id = NULL WHERE id = $id AND conversation_id = $cid",
            ct, ("$id", sessionId), ("$cid", expectedConversationId)) == 1;

    public Task DeleteAsync(string sessionId, CancellationToken ct) =>
        WriteAsync("DELETE FROM guest_sessions WHERE id = $id", ct, ("$id", sessionId));

    public async Task<Page<GuestSession>> ListAsync(SessionFilter filter, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        var where = new List<string>();
        if (filter.DeploymentId is not null) where.Add("deployment_id = $dep");
        if (filter.Channel is not null) where.Add("channel = $ch");
        if (filter.Address is not null) where.Add("address = $addr");
        var clause = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        (string, object?)[] args = [("$dep", filter.DeploymentId), ("$ch", filter.Channel?.ToString()), ("$addr", filter.Address)];
        long total;
        await using (var cmd = Command(c, $"SELECT COUNT(*) FROM guest_sessions {clause}", args))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var list = await ReadSessionsAsync(c, $"{clause} ORDER BY created_at, id LIMIT $limit OFFSET $offset", ct,
            [.. args, ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize)]);
        return new Page<GuestSession>(list, pageSize, pageNumber, total);
    }

    // ---------------------------------------------------------------- audit

    public Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct) =>
        WriteAsync("UPDATE termination_audit SET sockets_notified = $n WHERE id = $id", ct, ("$n", sockets), ("$id", auditId));

    public async Task<Page<TerminationAudit>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await ReadAsync(ct);
        var where = conversationId is null ? "" : "WHERE conversation_id = $cid";
        long total;
        await using (var cmd = Command(c, $"SELECT COUNT(*) FROM termination_audit {where}", ("$cid", conversationId)))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var list = new List<TerminationAudit>();
        await using (var cmd = Command(c,
            $"SELECT id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified FROM termination_audit {where} " +
            "ORDER BY at DESC, id LIMIT $limit OFFSET $offset",
            ("$cid", conversationId), ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                list.Add(new TerminationAudit(r.GetString(0), r.GetString(1), StringOrNull(r, 2), Parse<EndLever>(r.GetString(3)),
                    r.GetString(4), StringOrNull(r, 5), Time(r.GetInt64(6)), r.IsDBNull(7) ? null : r.GetInt32(7)));
        return new Page<TerminationAudit>(list, pageSize, pageNumber, total);
    }

    // ---------------------------------------------------------------- directory

    public async Task<Deployment?> GetDeploymentAsync(string id, CancellationToken ct) =>
        (await ReadDeploymentsAsync("WHERE id = $id", id, ct)).FirstOrDefault();

    public async Task<Page<Deployment>> ListDeploymentsAsync(int pageSize, int pageNumber, CancellationToken ct)
    {
        long total;
        await using (var c = await ReadAsync(ct))
        await using (var cmd = Command(c, "SELECT COUNT(*) FROM deployments"))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        var list = await ReadDeploymentsAsync("ORDER BY date_created, id LIMIT $limit OFFSET $offset", null, ct,
            ("$limit", pageSize), ("$offset", (long)(pageNumber - 1) * pageSize));
        return new Page<Deployment>(list, pageSize, pageNumber, total);
    }

    async Task<List<Deployment>> ReadDeploymentsAsync(string where, string? id, CancellationToken ct, params (string, object?)[] paging)
    {
        await using var c = await ReadAsync(ct);
        var list = new List<Deployment>();
        await using var cmd = Command(c,
            "SELECT id, name, allowed_origins, disconnect_enabled, disconnect_type, clear_enabled, date_created, inactivity_seconds, " +
            "guest_messages_per_second FROM deployments " + where,
            [("$id", id), .. paging]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new Deployment(r.GetString(0), r.GetString(1), [.. JsonSerializer.Deserialize<string[]>(r.GetString(2))!],
                r.GetInt64(3) != 0, Parse<DisconnectMode>(r.GetString(4)), r.GetInt64(5) != 0, Time(r.GetInt64(6)),
                r.GetInt64(7) > 0 ? TimeSpan.FromSeconds(r.GetInt64(7)) : null,
                // 0 was "no limit" before every deployment had the platform's rate: such rows get the default now.
                r.GetInt32(8) > 0 ? r.GetInt32(8) : Deployment.PlatformGuestMessagesPerSecond));
        return list;
    }

    public Task UpsertDeploymentAsync(Deployment d, CancellationToken ct) =>
        WriteAsync("INSERT INTO deployments (id, name, allowed_origins, disconnect_enabled, disconnect_type, clear_enabled, date_created, " +
            "inactivity_seconds, guest_messages_per_second) VALUES ($id,$name,$origins,$de,$dt,$ce,$at,$idle,$rate) ON CONFLICT (id) DO UPDATE SET " +
            "name = $name, allowed_origins = $origins, disconnect_enabled = $de, disconnect_type = $dt, clear_enabled = $ce, " +
            "inactivity_seconds = $idle, guest_messages_per_second = $rate",
            ct, ("$id", d.Id), ("$name", d.Name), ("$origins", JsonSerializer.Serialize(d.AllowedOrigins)),
            ("$de", d.DisconnectEnabled ? 1 : 0), ("$dt", d.DisconnectType.ToString()), ("$ce", d.ClearEnabled ? 1 : 0), ("$at", Ms(d.DateCreated)),
            ("$idle", (long)(d.InactivityTimeout?.TotalSeconds ?? 0)), ("$rate", d.GuestMessagesPerSecond));

    public async Task<bool> DeleteDeploymentAsync(string id, CancellationToken ct) =>
        await WriteAsync("DELETE FROM deployments WHERE id = $id", ct, ("$id", id)) == 1;

    // OAuth clients: SqliteStore.Credentials.cs

    public async Task<byte[]> GetOrCreateSigningKeyAsync(Func<byte[]> create, CancellationToken ct)
    {
        await WriteAsync("INSERT OR IGNORE INTO signing_keys (id, key) VALUES (1, $key)", ct, ("$key", _secrets.Protect(create())));
        await using var c = await ReadAsync(ct);
        await using var cmd = Command(c, "SELECT key FROM signing_keys WHERE id = 1");
        return _secrets.Unprotect((byte[])(await cmd.ExecuteScalarAsync(ct))!);
    }
}
