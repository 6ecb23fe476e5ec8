-- The relay leases only the oldest pending delivery of each conversation, so a channel receives a conversation's
-- messages in order (the Disconnect event after the last message); this index serves that check.
CREATE INDEX IF NOT EXISTS outbox_by_conversation ON outbox (conversation_id, state);
