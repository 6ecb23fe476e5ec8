using System.Collections.Immutable;
using System.Text.Json;

namespace Parley.Storage.Sqlite;

/// <summary>
/// Conversations, their participants and messages. A commit also writes the rows it carries for the other ports (the
/// session move, outbox rows, the audit row): they are one transaction, as <see cref="IConversationStore"/> promises.
/// </summary>
sealed class SqliteConversationStore(SqliteDatabase db) : IConversationStore
{
    const string ConversationColumns =
        "id, channel, deployment_id, guest_session_id, disconnect_mode, originating_direction, state, start_time, end_time, version, inactivity_seconds, queue_id, campaign, started_by";

    public async Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
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
                    r.GetInt64(10) > 0 ? TimeSpan.FromSeconds(r.GetInt64(10)) : null, StringOrNull(r, 11), StringOrNull(r, 12), StringOrNull(r, 13)));
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
    /// the numbers up to it: no row there, no message stored. The same statement keeps <c>last_message_time</c> (the
    /// latest message time) and stamps a change of state no earlier than it.
    /// </summary>
    /// <remarks>
    /// A termination (a commit with its audit row) is an urgent write: it does not wait behind a group of messages. A
    /// commit is self-contained (no savepoint of its own in its group) unless it moves a guest session, the one guard
    /// that comes after it has written.
    /// </remarks>
    public Task<CommitResult> CommitAsync(Commit commit, CancellationToken ct) =>
        db.WriteAsync(tx => CommitInAsync(tx, commit, ct), ct, urgent: commit.Audit is not null,
            selfContained: commit.SessionConversation is null);

    /// <summary>How many messages a commit adds and the latest one's time (ms), without a list of them.</summary>
    static (int Count, long? Latest) MessagesOf(ImmutableArray<ConversationEvent> events)
    {
        var count = 0;
        long? latest = null;
        foreach (var e in events)
        {
            if (e is not MessageAdded added) continue;
            count++;
            var at = Ms(added.Message.Timestamp);
            if (latest is null || at > latest) latest = at;
        }
        return (count, latest);
    }

    async Task<CommitResult> CommitInAsync(SqliteTransaction tx, Commit commit, CancellationToken ct)
    {
        var c = commit.After;
        var (messageCount, latestMessage) = MessagesOf(commit.Events);
        long lastSequence;
        DateTimeOffset? changedAt = null;
        if (commit.ExpectedVersion == 0)
        {
            var insert = db.Prepared(tx,
                $"INSERT OR IGNORE INTO conversations ({ConversationColumns}, last_sequence, last_message_time) VALUES ($id,$ch,$dep,$sess,$mode,$dir,$state,$start,$end,$v,$idle,$queue,$campaign,$by,$n,$latest)",
                ("$id", c.Id), ("$ch", c.Channel.ToString()), ("$dep", c.DeploymentId), ("$sess", c.GuestSessionId),
                ("$mode", c.DisconnectMode.ToString()), ("$dir", c.OriginatingDirection.ToString()), ("$state", c.State.ToString()),
                ("$start", Ms(c.StartTime)), ("$end", Ms(c.EndTime)), ("$v", c.Version), ("$idle", (long)(c.InactivityTimeout?.TotalSeconds ?? 0)),
                ("$queue", c.QueueId), ("$campaign", c.Campaign), ("$by", c.StartedBy), ("$n", messageCount), ("$latest", latestMessage));
            if (await insert.ExecuteNonQueryAsync(ct) == 0) return CommitResult.Refused;
            lastSequence = messageCount;
            for (var i = 0; i < c.Participants.Length; i++)
            {
                var p = c.Participants[i];
                var cmd = db.Prepared(tx,
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
            // last_message_time moved up to ?2, the commit's latest message time; SQLite's two-argument max is null when
            // either is, hence the COALESCEs.
            var append = db.Statement(
                "UPDATE conversations SET last_sequence = last_sequence + ?1, last_message_time = max(COALESCE(last_message_time, ?2), COALESCE(?2, last_message_time)) " +
                "WHERE id = ?3 AND version = ?4 AND state = 'Connected' RETURNING last_sequence");
            if (append.Bind(1, messageCount).Bind(2, latestMessage).Bind(3, c.Id).Bind(4, commit.ExpectedVersion).ExecuteInt64() is not { } last)
                return CommitResult.Refused;
            lastSequence = last;
        }
        else
        {
            // A change of state: stamped at the time it was decided, or at the latest stored message's when that is later
            // (an append another node stamped later may have committed first): the end time never precedes a message.
            var decidedAt = commit.Events.Where(e => e is not MessageAdded).Select(e => (long?)Ms(e.At)).Max() ?? Ms(c.EndTime);
            // Read, then write, on the writer (nothing moves in between) rather than one UPDATE … RETURNING: SQLite runs a
            // RETURNING as a trigger, so that UPDATE took a statement journal of its own, and inside a bulk chunk's
            // savepoint each one's release walked the in-memory sub-journal from its start (memjrnlTruncate: 7.6 % of the
            // writer's time in a bulk of 10,000, growing with the chunk; perf, BENCHMARKS.md round two, eighth run).
            var read = db.Prepared(tx, "SELECT last_sequence, last_message_time FROM conversations WHERE id = $id AND version = $expected",
                ("$id", c.Id), ("$expected", commit.ExpectedVersion));
            long storedLastMessage;
            bool hasLastMessage;
            using (var r = read.ExecuteReader())
            {
                if (!r.Read()) return CommitResult.Refused;   // another writer moved first
                lastSequence = r.GetInt64(0) + messageCount;
                hasLastMessage = !r.IsDBNull(1);
                storedLastMessage = hasLastMessage ? r.GetInt64(1) : 0;
            }
            // The latest message time with this commit's; the end stamped no earlier than the latest message stored before
            // it, the change no earlier than the latest message including this commit's.
            long? lastMessage = hasLastMessage ? Math.Max(storedLastMessage, latestMessage ?? storedLastMessage) : latestMessage;
            long? end = Ms(c.EndTime) is { } e0 ? Math.Max(e0, hasLastMessage ? storedLastMessage : e0) : null;
            changedAt = decidedAt is { } at ? Time(Math.Max(at, lastMessage ?? at)) : null;
            var update = db.Prepared(tx,
                "UPDATE conversations SET state = $state, version = $v, last_sequence = $seq, last_message_time = $last, end_time = $end WHERE id = $id",
                ("$state", c.State.ToString()), ("$v", c.Version), ("$seq", lastSequence), ("$last", lastMessage), ("$end", end), ("$id", c.Id));
            update.ExecuteNonQuery();
            foreach (var e in commit.Events.OfType<ParticipantDisconnected>())
            {
                var p = c.FindParticipant(e.ParticipantId)!;
                var cmd = db.Prepared(tx,
                    "UPDATE participants SET state = $state, end_time = $end, disconnect_type = $dt WHERE id = $id",
                    ("$state", p.State.ToString()), ("$end", Ms(Later(p.EndTime, changedAt))), ("$dt", p.DisconnectType?.ToString()), ("$id", p.Id));
                await cmd.ExecuteNonQueryAsync(ct);
            }
        }

        var sequence = lastSequence - messageCount;
        foreach (var added in commit.Events)
        {
            if (added is not MessageAdded { Message: var m }) continue;
            var insert = db.Statement(
                "INSERT INTO messages (id, conversation_id, participant_id, direction, kind, text, events, metadata, timestamp, originating_entity, sender_name, version, status, external_key, sequence) " +
                "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)")
                .Bind(1, m.Id).Bind(2, m.ConversationId).Bind(3, m.ParticipantId).Bind(4, m.Direction.ToString()).Bind(5, m.Kind.ToString()).Bind(6, m.Text)
                .Bind(7, m.Events.IsDefaultOrEmpty ? null : JsonSerializer.Serialize(m.Events.Select(e => new[] { e.EventType, e.Type })))
                .Bind(8, m.Metadata is null || m.Metadata.IsEmpty ? null : JsonSerializer.Serialize(m.Metadata))
                .Bind(9, Ms(m.Timestamp)).Bind(10, m.OriginatingEntity).Bind(11, m.SenderName).Bind(12, m.Version)
                .Bind(13, m.Status).Bind(14, m.ExternalKey).Bind(15, ++sequence);
            try { insert.Execute(); }
            catch (SqliteException e) when (e.SqliteErrorCode == 19 && m.ExternalKey is not null) { throw new DuplicateMessageException(m.ExternalKey); }
        }

        if (commit.SessionConversation is { } move)
        {
            var cmd = db.Prepared(tx,
                "UPDATE guest_sessions SET conversation_id = $new WHERE id = $id AND conversation_id IS $expected",
                ("$new", move.NewConversationId), ("$id", move.SessionId), ("$expected", move.ExpectedConversationId));
            if (await cmd.ExecuteNonQueryAsync(ct) == 0) return CommitResult.Refused;   // the session moved on meanwhile
        }

        foreach (var o in commit.Outbox.IsDefault ? [] : commit.Outbox)
        {
            var cmd = db.Prepared(tx,
                "INSERT INTO outbox (id, destination, message_id, conversation_id, body, state, attempts, due_at, created_at) " +
                "VALUES ($id,$dest,$mid,$cid,$body,'Pending',0,$due,$at)",
                ("$id", o.Id), ("$dest", o.Destination), ("$mid", o.MessageId), ("$cid", o.ConversationId), ("$body", o.Body),
                ("$due", Ms(o.DueAt)), ("$at", Ms(o.DueAt)));
            await cmd.ExecuteNonQueryAsync(ct);
            // A termination's channel deliveries, linked to it in its own commit (its receipt reads them live).
            if (commit.Audit is { } told)
                await db.Prepared(tx, "INSERT INTO termination_deliveries (outbox_id, audit_id) VALUES ($id,$audit)",
                    ("$id", o.Id), ("$audit", told.Id)).ExecuteNonQueryAsync(ct);
        }

        if (commit.Audit is { } a)
        {
            var cmd = db.Prepared(tx,
                "INSERT INTO termination_audit (id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified, user_id, user_name) " +
                "VALUES ($id,$cid,$pid,$lever,$client,$reason,$at,$n,$uid,$uname)",
                ("$id", a.Id), ("$cid", a.ConversationId), ("$pid", a.ParticipantId), ("$lever", a.Lever.ToString()),
                ("$client", a.ClientId), ("$reason", a.Reason), ("$at", Ms(Later(a.At, changedAt))), ("$n", a.SocketsNotified),
                ("$uid", a.UserId), ("$uname", a.UserName));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        return CommitResult.StoredAt(lastSequence, changedAt);
    }

    /// <summary>A time the commit decided, moved up to the time the store stamped the change with.</summary>
    static DateTimeOffset? Later(DateTimeOffset? decided, DateTimeOffset? stamped) =>
        decided is { } d && stamped is { } s && s > d ? s : decided;

    public async Task<Page<ConversationMessage>> ListMessagesAsync(string conversationId, int pageSize, int pageNumber, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
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
        await using var c = await db.ReadAsync(ct);
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
        await using var c = await db.ReadAsync(ct);
        var rows = await ReadMessagesAsync(c, "WHERE external_key = $k", ct, ("$k", externalKey));
        return rows.Count == 0 ? null : rows[0];
    }

    public async Task<bool> SetMessageStatusAsync(string messageId, string status, CancellationToken ct) =>
        await db.WriteAsync("UPDATE messages SET status = $s WHERE id = $id", ct, ("$s", status), ("$id", messageId)) == 1;

    /// <summary>The latest message's time, kept on the row by the commits that append (no look-up of the messages).</summary>
    const string LastMessageTime = "c.last_message_time";

    public async Task<IReadOnlyList<string>> ListIdleAsync(DateTimeOffset now, int max, CancellationToken ct)
    {
        await using var c = await db.ReadAsync(ct);
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
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, $"SELECT COALESCE({LastMessageTime}, c.start_time) FROM conversations c WHERE c.id = $id", ("$id", conversationId));
        return await cmd.ExecuteScalarAsync(ct) is long ms ? Time(ms) : null;
    }

    /// <summary>
    /// Live conversations by filter, keyset-paged by id. <c>state = 'Connected'</c> is written as a literal so SQLite
    /// picks the partial indexes on live conversations (migration 0014); a customer id starts from the guest session's address.
    /// </summary>
    public async Task<IReadOnlyList<LiveConversation>> ListLiveAsync(LiveFilter f, int max, string? afterId, CancellationToken ct)
    {
        var where = new List<string> { "c.state = 'Connected'" };
        var args = new List<(string, object?)>();
        var from = "conversations c";
        if (f.CustomerId is { } customer)
        {
            from = "guest_sessions g JOIN conversations c ON c.guest_session_id = g.id";
            where.Add("g.address = $customer");
            args.Add(("$customer", customer));
        }
        if (f.ChannelId is { } channelId) { where.Add("c.deployment_id = $channelId"); args.Add(("$channelId", channelId)); }
        if (f.Channel is { } channel) { where.Add("c.channel = $channel"); args.Add(("$channel", channel.ToString())); }
        if (f.QueueId is { } queue) { where.Add("c.queue_id = $queue"); args.Add(("$queue", queue)); }
        if (f.StartedBefore is { } before) { where.Add("c.start_time < $before"); args.Add(("$before", Ms(before))); }
        if (f.StartedAfter is { } after) { where.Add("c.start_time > $after"); args.Add(("$after", Ms(after))); }
        if (f.Campaign is { } campaign) { where.Add("c.campaign = $campaign"); args.Add(("$campaign", campaign)); }
        if (f.StartedBy is { } startedBy) { where.Add("c.started_by = $startedBy"); args.Add(("$startedBy", startedBy)); }
        if (afterId is not null) { where.Add("c.id > $afterId"); args.Add(("$afterId", afterId)); }
        args.Add(("$max", max));

        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c,
            $"SELECT c.id, c.channel, c.deployment_id, c.start_time, c.queue_id, c.campaign, c.started_by FROM {from} " +
            $"WHERE {string.Join(" AND ", where)} ORDER BY c.id LIMIT $max", [.. args]);
        var rows = new List<LiveConversation>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            rows.Add(new LiveConversation(r.GetString(0), Parse<ChannelKind>(r.GetString(1)), r.GetString(2), Time(r.GetInt64(3)),
                StringOrNull(r, 4), StringOrNull(r, 5), StringOrNull(r, 6)));
        return rows;
    }

    public async Task<Page<Conversation>> QueryAsync(ConversationFilter f, CancellationToken ct)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (f.StartedFrom is { } from) { where.Add("start_time >= $from"); args.Add(("$from", Ms(from))); }
        if (f.StartedBefore is { } before) { where.Add("start_time < $before"); args.Add(("$before", Ms(before))); }
        if (f.Ended is { } ended) where.Add(ended ? "state = 'Disconnected'" : "state = 'Connected'");
        if (f.Channel is { } channel) { where.Add("channel = $channel"); args.Add(("$channel", channel.ToString())); }
        if (f.QueueId is { } queue) { where.Add("queue_id = $queue"); args.Add(("$queue", queue)); }
        var whereSql = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        var orderColumn = f.OrderBy == "conversationEnd" ? "end_time" : "start_time";
        var order = $"ORDER BY {orderColumn} {(f.Descending ? "DESC" : "ASC")}, id";

        await using var c = await db.ReadAsync(ct);
        long total;
        await using (var cmd = Command(c, $"SELECT COUNT(*) FROM conversations {whereSql}", [.. args]))
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        args.Add(("$limit", f.PageSize));
        args.Add(("$offset", (long)(f.PageNumber - 1) * f.PageSize));
        var rows = await LoadConversationsAsync(c,
            $"SELECT {ConversationColumns} FROM conversations {whereSql} {order} LIMIT $limit OFFSET $offset", ct, [.. args]);
        return new Page<Conversation>(rows, f.PageSize, f.PageNumber, total);
    }

    /// <summary>
    /// Many commits as ONE write of the writer (one queue entry, one savepoint of the group, one COMMIT), a refused or
    /// failed one rolled back alone (see <see cref="IConversationStore.CommitManyAsync"/>).
    /// An error that makes SQLite lose the transaction (disk full, I/O, memory) loses them all, and throws.
    /// </summary>
    public Task<IReadOnlyList<CommitResult>> CommitManyAsync(IReadOnlyList<Commit> commits, CancellationToken ct) =>
        db.WriteAsync<IReadOnlyList<CommitResult>>(async tx =>
        {
            // First without a savepoint per commit: a refused commit writes nothing (its guard is its first statement), so
            // only one that can be refused after writing (a new conversation's session move) needs its own. A savepoint
            // per commit costs two statements and a copy of each page it touches (measured: BENCHMARKS.md, round two).
            db.Prepared(tx, "SAVEPOINT many").ExecuteNonQuery();
            try
            {
                var results = new CommitResult[commits.Count];
                for (var i = 0; i < commits.Count; i++)
                    results[i] = commits[i].SessionConversation is null
                        ? await CommitInAsync(tx, commits[i], ct)
                        : await CommitAloneAsync(tx, commits[i], ct);
                db.Prepared(tx, "RELEASE many").ExecuteNonQuery();
                return results;
            }
            catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 13 or 10 or 7 })   // not FULL, IOERR, NOMEM
            {
                // One failed part-way: all of them again, each under its own savepoint, so that one alone is lost.
                db.Prepared(tx, "ROLLBACK TO many").ExecuteNonQuery();
                db.Prepared(tx, "RELEASE many").ExecuteNonQuery();
                var results = new CommitResult[commits.Count];
                for (var i = 0; i < commits.Count; i++) results[i] = await CommitAloneAsync(tx, commits[i], ct);
                return results;
            }
        }, ct);

    /// <summary>One commit of many under a savepoint of its own: refused or failed, it is rolled back alone.</summary>
    async Task<CommitResult> CommitAloneAsync(SqliteTransaction tx, Commit commit, CancellationToken ct)
    {
        db.Prepared(tx, "SAVEPOINT one").ExecuteNonQuery();
        CommitResult result;
        try { result = await CommitInAsync(tx, commit, ct); }
        catch (Exception e) when (e is not SqliteException { SqliteErrorCode: 13 or 10 or 7 })   // not FULL, IOERR, NOMEM
        {
            result = CommitResult.Refused;
        }
        if (!result.Stored) db.Prepared(tx, "ROLLBACK TO one").ExecuteNonQuery();
        db.Prepared(tx, "RELEASE one").ExecuteNonQuery();
        return result;
    }
}
