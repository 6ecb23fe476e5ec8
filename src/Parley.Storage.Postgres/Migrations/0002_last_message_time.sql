-- The latest stored message's time, kept on the conversation by the commit that appends: an end is stamped no earlier
-- than it (so nothing stored is later than the end, whichever node's clock decided it), and the inactivity sweep reads
-- it instead of looking up each conversation's last message. Null while a conversation has no message.
-- Existing conversations take the latest time of the messages they hold. Their stored end times are left as they were.
ALTER TABLE conversations ADD COLUMN last_message_time bigint;
UPDATE conversations c SET last_message_time = m.latest
    FROM (SELECT conversation_id, MAX(timestamp) AS latest FROM messages GROUP BY conversation_id) m
    WHERE m.conversation_id = c.id;
