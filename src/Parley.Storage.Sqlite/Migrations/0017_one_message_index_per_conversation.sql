-- messages_by_conversation (conversation_id, version), from 0001, is covered by messages_by_sequence (conversation_id,
-- sequence), added later: every look-up of a conversation's messages (their page, their count, the foreign key's
-- cascade) uses the latter's leading column. Each message written updated both, and each is a leaf of its own per
-- conversation in a commit group: dropping one removes about one WAL frame per conversation per group
-- (BENCHMARKS.md, round two, 2026-12-02). PostgreSQL never had it.
DROP INDEX IF EXISTS messages_by_conversation;
