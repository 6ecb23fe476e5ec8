using System.Collections.Immutable;
using System.Text.Json;
using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>
/// Conversations, participants and messages. A commit is one <see cref="NpgsqlBatch"/> sent without an explicit
/// transaction: PostgreSQL runs the statements up to the batch's one Sync as one implicit transaction, so a commit is a
/// single round trip (its COMMIT included), and an error in any statement rolls back all of them.
/// </summary>
public sealed class PostgresConversationStore : IConversationStore
{
    readonly PostgresDatabase _db;

    internal PostgresConversationStore(PostgresDatabase db) => _db = db;

    /// <summary>SQLSTATE raised by <c>parley_guard</c> when a guarded statement matched no row.</summary>
    const string Refused = "PR001";

    const string ConversationColumns =
        "id, channel, deployment_id, guest_session_id, disconnect_mode, originating_direction, state, start_time, end_time, version, inactivity_seconds, queue_id, campaign, started_by";

    const string MessageColumns =
        "id, conversation_id, participant_id, direction, kind, text, events, metadata, timestamp, originating_entity, sender_name, version, status, external_key, sequence";

    /// <summary>
    /// One conversation and its participants in one statement: one snapshot (so never a row from before an end with
    /// participants from after it) and one round trip, with no transaction to open and commit — this read precedes
    /// every decision, a termination's included, so its round trips are on the termination's latency.
    /// </summary>
    public Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        await using var connection = await _db.Source.OpenConnectionAsync(c);
        await using var cmd = new NpgsqlCommand(
            $"WITH c AS (SELECT {ConversationColumns} FROM conversations WHERE id = $1) " +
            "SELECT c.*, p.id, p.purpose, p.name, p.communication_id, p.state, p.start_time, p.end_time, p.disconnect_type " +
            "FROM c LEFT JOIN participants p ON p.conversation_id = c.id ORDER BY p.ordinal", connection);
        cmd.Parameters.Add(Text(conversationId));
        await using var r = await cmd.ExecuteReaderAsync(c);
        Conversation? conversation = null;
        var participants = new List<Participant>();
        while (await r.ReadAsync(c))
        {
            conversation ??= ReadConversation(r);
            if (!r.IsDBNull(14)) participants.Add(ReadParticipant(r, 14));
        }
        return conversation is null ? null : conversation with { Participants = [.. participants] };
    }, ct);

    static Conversation ReadConversation(NpgsqlDataReader r) =>
        new(r.GetString(0), Parse<ChannelKind>(r.GetString(1)), r.GetString(2),
            r.GetString(3), Parse<DisconnectMode>(r.GetString(4)), Parse<MessageDirection>(r.GetString(5)),
            Parse<ConversationState>(r.GetString(6)), Time(r.GetInt64(7)), TimeOrNull(r, 8), r.GetInt64(9), [],
            r.GetInt64(10) > 0 ? TimeSpan.FromSeconds(r.GetInt64(10)) : null, StringOrNull(r, 11), StringOrNull(r, 12), StringOrNull(r, 13));

    /// <summary>A participant from the 8 columns starting at <paramref name="at"/> (id, purpose, name, communication, state, start, end, disconnect type).</summary>
    static Participant ReadParticipant(NpgsqlDataReader r, int at) =>
        new(r.GetString(at), Parse<ParticipantPurpose>(r.GetString(at + 1)), r.GetString(at + 2), r.GetString(at + 3),
            Parse<ParticipantState>(r.GetString(at + 4)), Time(r.GetInt64(at + 5)), TimeOrNull(r, at + 6),
            r.IsDBNull(at + 7) ? null : Parse<DisconnectType>(r.GetString(at + 7)));

    /// <summary>
    /// Conversation rows (a listing) and their participants, read in one REPEATABLE READ snapshot on one connection. Two statements
    /// each in its own READ COMMITTED snapshot could see a row from before an end and participants from after it — a
    /// conversation not ended whose customer has left — and a guest's message would be refused as "participant has
    /// left" (400) instead of "read-only" (409). Found by the cross-node race test (tests/Parley.Cluster.Tests).
    /// </summary>
    async Task<List<Conversation>> LoadConversationsAsync(string sql, CancellationToken ct, params NpgsqlParameter[] args)
    {
        await using var connection = await _db.Source.OpenConnectionAsync(ct);
        await using var snapshot = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        var rows = new List<Conversation>();
        await using (var cmd = new NpgsqlCommand(sql, connection, snapshot))
        {
            foreach (var a in args) cmd.Parameters.Add(a);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) rows.Add(ReadConversation(r));
        }
        if (rows.Count == 0) return rows;
        var participants = new Dictionary<string, List<Participant>>();
        await using (var cmd = new NpgsqlCommand(
            "SELECT conversation_id, id, purpose, name, communication_id, state, start_time, end_time, disconnect_type " +
            "FROM participants WHERE conversation_id = ANY($1) ORDER BY conversation_id, ordinal", connection, snapshot))
        {
            cmd.Parameters.Add(TextArray([.. rows.Select(r => r.Id)]));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                if (!participants.TryGetValue(r.GetString(0), out var l)) participants[r.GetString(0)] = l = [];
                l.Add(ReadParticipant(r, 1));
            }
        }
        await snapshot.CommitAsync(ct);
        return rows.Select(row => row with { Participants = [.. participants.GetValueOrDefault(row.Id) ?? []] }).ToList();
    }

    /// <summary>
    /// One commit, atomically (see <see cref="IConversationStore"/>). The first statement is the guard and the write of the
    /// conversation row at once: an insert-if-absent for a creation, otherwise an <c>UPDATE … WHERE id = $id AND version =
    /// $expected [AND state = 'Connected'] RETURNING last_sequence</c>, which also moves the message counter. It passes
    /// its result to <c>parley_guard</c>, which raises when no row matched; the session move is guarded the same way. A
    /// raise aborts the implicit transaction: nothing of the commit is kept, and the answer is "refused".
    /// <para>READ COMMITTED is enough: a guarded UPDATE that meets a row another transaction is changing waits for it, then
    /// re-evaluates its WHERE on the row as that transaction left it (PostgreSQL's EvalPlanQual). So two writers decided on
    /// one version never both pass, and an append never passes after an end committed. The messages then read the counter
    /// back from the row this transaction holds locked, so their numbers are the ones the guard reserved.</para>
    /// <para>The guard also keeps <c>last_message_time</c> (the latest message time) and stamps a change of state with
    /// <c>GREATEST(decided time, last_message_time)</c>; re-evaluated on the row as a concurrent append left it, so an end
    /// decided on another node's earlier clock reading is never earlier than a message committed before it. The
    /// participant and audit rows read the same value back from the locked row.</para>
    /// </summary>
    public Task<CommitResult> CommitAsync(Commit commit, CancellationToken ct) => _db.WriteAsync(async _ =>
    {
        var c = commit.After;
        var messages = commit.Events.OfType<MessageAdded>().Select(e => e.Message).ToList();
        long? latestMessage = messages.Count == 0 ? null : messages.Max(m => Ms(m.Timestamp));
        await using var batch = _db.Source.CreateBatch();
        var commands = batch.BatchCommands;
        if (commit.ExpectedVersion == 0)
        {
            commands.Add(BatchCommand(
                $"WITH g AS (INSERT INTO conversations ({ConversationColumns}, last_sequence, last_message_time) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) " +
                "ON CONFLICT (id) DO NOTHING RETURNING last_sequence) SELECT parley_guard(max(last_sequence)) FROM g",
                Text(c.Id), Text(c.Channel.ToString()), Text(c.DeploymentId), Text(c.GuestSessionId), Text(c.DisconnectMode.ToString()),
                Text(c.OriginatingDirection.ToString()), Text(c.State.ToString()), Int8(Ms(c.StartTime)), Int8(Ms(c.EndTime)), Int8(c.Version),
                Int8((long)(c.InactivityTimeout?.TotalSeconds ?? 0)), Text(c.QueueId), Text(c.Campaign), Text(c.StartedBy), Int8(messages.Count), Int8(latestMessage)));
            for (var i = 0; i < c.Participants.Length; i++)
            {
                var p = c.Participants[i];
                commands.Add(BatchCommand(
                    "INSERT INTO participants (id, conversation_id, ordinal, purpose, name, communication_id, state, start_time, end_time, disconnect_type) " +
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                    Text(p.Id), Text(c.Id), Int4(i), Text(p.Purpose.ToString()), Text(p.Name), Text(p.CommunicationId), Text(p.State.ToString()),
                    Int8(Ms(p.StartTime)), Int8(Ms(p.EndTime)), Text(p.DisconnectType?.ToString())));
            }
        }
        else if (c.Version == commit.ExpectedVersion)
        {
            // Messages only: the state stays, but the counter moves only if it is still the state they were decided on.
            commands.Add(BatchCommand(
                "WITH g AS (UPDATE conversations SET last_sequence = last_sequence + $1, last_message_time = GREATEST(last_message_time, $4) " +
                "WHERE id = $2 AND version = $3 AND state = 'Connected' RETURNING last_sequence) SELECT parley_guard(max(last_sequence)) FROM g",
                Int8(messages.Count), Text(c.Id), Int8(commit.ExpectedVersion), Int8(latestMessage)));
        }
        else
        {
            // A change of state: stamped at the time it was decided, or at the latest stored message's when that is later
            // (an append another node stamped later may have committed first): the end time never precedes a message.
            // GREATEST ignores nulls, so an end is stamped even before any message, and a null end stays null.
            var decidedAt = commit.Events.Where(e => e is not MessageAdded).Select(e => (long?)Ms(e.At)).Max() ?? Ms(c.EndTime);
            commands.Add(BatchCommand(
                "WITH g AS (UPDATE conversations SET state = $1, version = $3, last_sequence = last_sequence + $4, " +
                "last_message_time = GREATEST(last_message_time, $7), " +
                "end_time = CASE WHEN $2::bigint IS NULL THEN NULL ELSE GREATEST($2, last_message_time) END " +
                "WHERE id = $5 AND version = $6 RETURNING last_sequence, GREATEST($8::bigint, last_message_time) AS changed_at) " +
                "SELECT parley_guard(max(last_sequence)), max(changed_at) FROM g",
                Text(c.State.ToString()), Int8(Ms(c.EndTime)), Int8(c.Version), Int8(messages.Count), Text(c.Id), Int8(commit.ExpectedVersion),
                Int8(latestMessage), Int8(decidedAt)));
            foreach (var e in commit.Events.OfType<ParticipantDisconnected>())
            {
                var p = c.FindParticipant(e.ParticipantId)!;
                commands.Add(BatchCommand(
                    $"UPDATE participants SET state = $1, end_time = {StampedBy("$2", "$5")}, disconnect_type = $3 WHERE id = $4",
                    Text(p.State.ToString()), Int8(Ms(p.EndTime)), Text(p.DisconnectType?.ToString()), Text(p.Id), Text(c.Id)));
            }
        }

        // The guard reserved the numbers up to the counter; this transaction holds the row, so it reads them back as reserved.
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            commands.Add(BatchCommand(
                $"INSERT INTO messages ({MessageColumns}) SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14, c.last_sequence - $15 " +
                "FROM conversations c WHERE c.id = $2",
                Text(m.Id), Text(m.ConversationId), Text(m.ParticipantId), Text(m.Direction.ToString()), Text(m.Kind.ToString()), Text(m.Text),
                Text(m.Events.IsDefaultOrEmpty ? null : JsonSerializer.Serialize(m.Events.Select(e => new[] { e.EventType, e.Type }))),
                Text(m.Metadata is null || m.Metadata.IsEmpty ? null : JsonSerializer.Serialize(m.Metadata)),
                Int8(Ms(m.Timestamp)), Text(m.OriginatingEntity), Text(m.SenderName), Int8(m.Version), Text(m.Status), Text(m.ExternalKey),
                Int8(messages.Count - 1 - i)));
        }

        if (commit.SessionConversation is { } move)
            commands.Add(BatchCommand(
                "WITH s AS (UPDATE guest_sessions SET conversation_id = $1 WHERE id = $2 AND conversation_id IS NOT DISTINCT FROM $3 RETURNING 1::bigint AS one) " +
                "SELECT parley_guard(max(one)) FROM s",
                Text(move.NewConversationId), Text(move.SessionId), Text(move.ExpectedConversationId)));

        foreach (var o in commit.Outbox.IsDefault ? [] : commit.Outbox)
            commands.Add(BatchCommand(
                "INSERT INTO outbox (id, destination, message_id, conversation_id, body, state, attempts, due_at, created_at) " +
                "VALUES ($1,$2,$3,$4,$5,'Pending',0,$6,$6)",
                Text(o.Id), Text(o.Destination), Text(o.MessageId), Text(o.ConversationId), Bytes(o.Body), Int8(Ms(o.DueAt))));
        // A termination's channel deliveries, linked to it in its own commit (its receipt reads them live).
        if (commit.Audit is { } told && !commit.Outbox.IsDefaultOrEmpty)
            commands.Add(BatchCommand("INSERT INTO termination_deliveries (outbox_id, audit_id) SELECT unnest($1::text[]), $2",
                TextArray([.. commit.Outbox.Select(o => o.Id)]), Text(told.Id)));

        if (commit.Audit is { } a)
            commands.Add(BatchCommand(
                "INSERT INTO termination_audit (id, conversation_id, participant_id, lever, client_id, reason, at, sockets_notified, user_id, user_name) " +
                $"VALUES ($1,$2,$3,$4,$5,$6,{StampedBy("$7", "$2")},$8,$9,$10)",
                Text(a.Id), Text(a.ConversationId), Text(a.ParticipantId), Text(a.Lever.ToString()), Text(a.ClientId), Text(a.Reason),
                Int8(Ms(a.At)), Int4(a.SocketsNotified), Text(a.UserId), Text(a.UserName)));

        try
        {
            long lastSequence;
            DateTimeOffset? changedAt;
            await using (var r = await batch.ExecuteReaderAsync(CancellationToken.None))
            {
                await r.ReadAsync(CancellationToken.None);
                lastSequence = r.GetInt64(0);
                changedAt = r.FieldCount > 1 ? TimeOrNull(r, 1) : null;
                // Every statement's outcome, up to the batch's end (its implicit COMMIT): an error in any of them surfaces here.
                while (await r.NextResultAsync(CancellationToken.None)) { }
            }
            return CommitResult.StoredAt(lastSequence, changedAt);
        }
        catch (PostgresException e) when (e.SqlState == Refused) { return CommitResult.Refused; }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "messages_by_external_key"
            && messages.FirstOrDefault(m => m.ExternalKey is not null) is { ExternalKey: { } key })
        {
            throw new DuplicateMessageException(key);
        }
    }, ct);

    /// <summary>
    /// The time <paramref name="decided"/> (a parameter) moved up to the latest message of conversation <paramref name="conversation"/>:
    /// read from the row this commit's guard holds locked, so it is the value the guard stamped the change with.
    /// </summary>
    static string StampedBy(string decided, string conversation) =>
        $"(SELECT CASE WHEN {decided}::bigint IS NULL THEN NULL ELSE GREATEST({decided}, c.last_message_time) END FROM conversations c WHERE c.id = {conversation})";

    public Task<Page<ConversationMessage>> ListMessagesAsync(string conversationId, int pageSize, int pageNumber, CancellationToken ct) =>
        _db.ReadAsync(async c =>
        {
            var total = await _db.CountAsync("SELECT COUNT(*) FROM messages WHERE conversation_id = $1", c, Text(conversationId));
            var rows = await ReadMessagesAsync("WHERE conversation_id = $1 ORDER BY sequence DESC LIMIT $2 OFFSET $3", c,
                Text(conversationId), Int4(pageSize), Int8(Offset(pageSize, pageNumber)));
            return new Page<ConversationMessage>(rows, pageSize, pageNumber, total);
        }, ct);

    public Task<ConversationMessage?> GetMessageAsync(string messageId, CancellationToken ct) =>
        _db.ReadAsync(async c => (await ReadMessagesAsync("WHERE id = $1", c, Text(messageId))).FirstOrDefault(), ct);

    public Task<ConversationMessage?> FindByExternalKeyAsync(string externalKey, CancellationToken ct) =>
        _db.ReadAsync(async c => (await ReadMessagesAsync("WHERE external_key = $1", c, Text(externalKey))).FirstOrDefault(), ct);

    Task<List<ConversationMessage>> ReadMessagesAsync(string where, CancellationToken ct, params NpgsqlParameter[] args) =>
        _db.ListAsync($"SELECT {MessageColumns} FROM messages {where}", r =>
        {
            var events = r.IsDBNull(6)
                ? ImmutableArray<MessageEvent>.Empty
                : JsonSerializer.Deserialize<string[][]>(r.GetString(6))!.Select(e => new MessageEvent(e[0], e[1])).ToImmutableArray();
            var metadata = r.IsDBNull(7) ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(7))!.ToImmutableDictionary();
            return new ConversationMessage(r.GetString(0), r.GetString(1), r.GetString(2), Parse<MessageDirection>(r.GetString(3)),
                Parse<MessageKind>(r.GetString(4)), StringOrNull(r, 5), events, Time(r.GetInt64(8)), StringOrNull(r, 9),
                StringOrNull(r, 10), r.GetInt64(11), metadata, StringOrNull(r, 12), StringOrNull(r, 13), r.GetInt64(14));
        }, ct, args);

    public async Task<bool> SetMessageStatusAsync(string messageId, string status, CancellationToken ct) =>
        await _db.ExecuteAsync("UPDATE messages SET status = $1 WHERE id = $2", ct, Text(status), Text(messageId)) == 1;

    /// <summary>The latest message's time, kept on the row by the commits that append (no look-up of the messages).</summary>
    const string LastMessageTime = "c.last_message_time";

    public Task<IReadOnlyList<string>> ListIdleAsync(DateTimeOffset now, int max, CancellationToken ct) =>
        _db.ReadAsync<IReadOnlyList<string>>(async c => await _db.ListAsync(
            "SELECT c.id FROM conversations c WHERE c.state = 'Connected' AND c.inactivity_seconds > 0 " +
            $"AND COALESCE({LastMessageTime}, c.start_time) + c.inactivity_seconds * 1000 <= $1 LIMIT $2",
            r => r.GetString(0), c, Int8(Ms(now)), Int4(max)), ct);

    public Task<DateTimeOffset?> LastActivityAsync(string conversationId, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        await using var cmd = _db.Command($"SELECT COALESCE({LastMessageTime}, c.start_time) FROM conversations c WHERE c.id = $1", Text(conversationId));
        return await cmd.ExecuteScalarAsync(c) is long ms ? Time(ms) : (DateTimeOffset?)null;
    }, ct);

    /// <summary>
    /// Live conversations by filter, keyset-paged by id. <c>state = 'Connected'</c> is a literal so the planner can use the
    /// partial indexes on live conversations (migration 0006); a customer id starts from the guest session's address.
    /// </summary>
    public Task<IReadOnlyList<LiveConversation>> ListLiveAsync(LiveFilter f, int max, string? afterId, CancellationToken ct) =>
        _db.ReadAsync<IReadOnlyList<LiveConversation>>(async c =>
        {
            var where = new List<string> { "c.state = 'Connected'" };
            var args = new List<NpgsqlParameter>();
            string Arg(NpgsqlParameter p) { args.Add(p); return "$" + args.Count; }
            var from = "conversations c";
            if (f.CustomerId is { } customer)
            {
                from = "guest_sessions g JOIN conversations c ON c.guest_session_id = g.id";
                where.Add($"g.address = {Arg(Text(customer))}");
            }
            if (f.ChannelId is { } channelId) where.Add($"c.deployment_id = {Arg(Text(channelId))}");
            if (f.Channel is { } channel) where.Add($"c.channel = {Arg(Text(channel.ToString()))}");
            if (f.QueueId is { } queue) where.Add($"c.queue_id = {Arg(Text(queue))}");
            if (f.StartedBefore is { } before) where.Add($"c.start_time < {Arg(Int8(Ms(before)))}");
            if (f.StartedAfter is { } after) where.Add($"c.start_time > {Arg(Int8(Ms(after)))}");
            if (f.Campaign is { } campaign) where.Add($"c.campaign = {Arg(Text(campaign))}");
            if (f.StartedBy is { } startedBy) where.Add($"c.started_by = {Arg(Text(startedBy))}");
            if (afterId is not null) where.Add($"c.id > {Arg(Text(afterId))}");
            var limit = Arg(Int4(max));
            return await _db.ListAsync(
                $"SELECT c.id, c.channel, c.deployment_id, c.start_time, c.queue_id, c.campaign, c.started_by FROM {from} " +
                $"WHERE {string.Join(" AND ", where)} ORDER BY c.id LIMIT {limit}",
                r => new LiveConversation(r.GetString(0), Parse<ChannelKind>(r.GetString(1)), r.GetString(2), Time(r.GetInt64(3)),
                    StringOrNull(r, 4), StringOrNull(r, 5), StringOrNull(r, 6)),
                c, [.. args]);
        }, ct);

    public Task<Page<Conversation>> QueryAsync(ConversationFilter f, CancellationToken ct) => _db.ReadAsync(async c =>
    {
        var where = new List<string>();
        var args = new List<NpgsqlParameter>();
        string Arg(NpgsqlParameter p) { args.Add(p); return "$" + args.Count; }
        if (f.StartedFrom is { } from) where.Add($"start_time >= {Arg(Int8(Ms(from)))}");
        if (f.StartedBefore is { } before) where.Add($"start_time < {Arg(Int8(Ms(before)))}");
        if (f.Ended is { } ended) where.Add(ended ? "state = 'Disconnected'" : "state = 'Connected'");
        if (f.Channel is { } channel) where.Add($"channel = {Arg(Text(channel.ToString()))}");
        if (f.QueueId is { } queue) where.Add($"queue_id = {Arg(Text(queue))}");
        var whereSql = where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where);
        // NULLS FIRST ascending and NULLS LAST descending, as SQLite orders them.
        var orderColumn = f.OrderBy == "conversationEnd" ? "end_time" : "start_time";
        var order = $"ORDER BY {orderColumn} {(f.Descending ? "DESC NULLS LAST" : "ASC NULLS FIRST")}, id";
        var total = await _db.CountAsync($"SELECT COUNT(*) FROM conversations {whereSql}", c, [.. args.Select(p => p.Clone())]);
        var limit = Arg(Int4(f.PageSize));
        var offset = Arg(Int8(Offset(f.PageSize, f.PageNumber)));
        var rows = await LoadConversationsAsync($"SELECT {ConversationColumns} FROM conversations {whereSql} {order} LIMIT {limit} OFFSET {offset}", c, [.. args]);
        return new Page<Conversation>(rows, f.PageSize, f.PageNumber, total);
    }, ct);
}
