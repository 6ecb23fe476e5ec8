-- Every message gets its place in its conversation: sequence 1, 2, 3, … (dense, unique per conversation), taken from the
-- conversation's counter in the commit that stores the message. Existing messages are numbered in rowid order (the order
-- they were committed in), and each conversation's counter starts after its last one.
ALTER TABLE conversations ADD COLUMN last_sequence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET sequence = numbered.n
    FROM (SELECT rowid AS rid, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY rowid) AS n FROM messages) AS numbered
    WHERE messages.rowid = numbered.rid;
UPDATE conversations SET last_sequence = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_sequence ON messages (conversation_id, sequence);
-- Ordered by sequence now: the (conversation, version) index serves nothing any more and would only cost every insert.
DROP INDEX IF EXISTS messages_by_conversation;
