-- An end (state 'Connected' -> 'Disconnected') rewrites every index whose key or condition names the state. Two of
-- them were keyed in an order that has nothing to do with the order ends come in (a bulk ends by id), so each end
-- touched leaves of its own in both. A bulk of 10,000 ended in 1.89, 1.54 s before, 1.34, 1.30 s after (BENCHMARKS.md,
-- round two, third run).
--
-- conversations_by_state (state, start_time): the live listing (GET /api/v2/conversations) reads the live rows from
-- conversations_live and sorts them, and an analytics query by end has an interval, served by conversations_by_start.
DROP INDEX IF EXISTS conversations_by_state;
-- The customer filter's join by session: an index of every conversation, not of the live ones only, is one an end does
-- not touch (the session id never changes); a session has a handful of conversations, the live one found among them.
DROP INDEX IF EXISTS conversations_live_by_session;
CREATE INDEX IF NOT EXISTS conversations_by_session ON conversations (guest_session_id);
