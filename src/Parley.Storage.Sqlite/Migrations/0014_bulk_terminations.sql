-- Issue 14 (docs/ending-sessions.md): the campaign tag and the agentless caller (OAuth client) that started a
-- conversation, both set once when it starts; indexes for the live-conversation query that bulk terminations and
-- termination policies run (IConversationStore.ListLiveAsync); and the bulk termination jobs.
ALTER TABLE conversations ADD COLUMN campaign TEXT;
ALTER TABLE conversations ADD COLUMN started_by TEXT;

-- Partial indexes on live conversations only: an end takes the row out of them, so their size follows the live set,
-- not the history. Keyed by id last, so a filtered query pages by id (keyset) without sorting.
CREATE INDEX IF NOT EXISTS conversations_live ON conversations (id) WHERE state = 'Connected';
CREATE INDEX IF NOT EXISTS conversations_live_by_channel ON conversations (deployment_id, id) WHERE state = 'Connected';
CREATE INDEX IF NOT EXISTS conversations_live_by_queue ON conversations (queue_id, id) WHERE state = 'Connected';
CREATE INDEX IF NOT EXISTS conversations_live_by_campaign ON conversations (campaign, id) WHERE state = 'Connected' AND campaign IS NOT NULL;
CREATE INDEX IF NOT EXISTS conversations_live_by_session ON conversations (guest_session_id) WHERE state = 'Connected';
-- A customer id filter starts from the guest's address (the journey customer id, or the open messaging sender).
CREATE INDEX IF NOT EXISTS guest_sessions_by_address ON guest_sessions (address) WHERE address IS NOT NULL;

-- Bulk terminations (POST /api/v2/parley/terminations), every one of them, answered at once or run as a job; in the
-- store so any node answers GET. node_id: the node running it (a node marks its own PENDING jobs FAILED at start).
CREATE TABLE IF NOT EXISTS termination_jobs (
    id                TEXT PRIMARY KEY,
    state             TEXT NOT NULL,
    filter            TEXT NOT NULL,   -- the request's filter as JSON, answered back as given
    reason            TEXT,
    matched           INTEGER NOT NULL DEFAULT 0,
    ended             INTEGER NOT NULL DEFAULT 0,
    already_ended     INTEGER NOT NULL DEFAULT 0,
    failed            INTEGER NOT NULL DEFAULT 0,
    sockets_notified  INTEGER NOT NULL DEFAULT 0,
    channels_notified INTEGER NOT NULL DEFAULT 0,
    error_message     TEXT,
    client_id         TEXT NOT NULL,
    user_id           TEXT,
    user_name         TEXT,
    node_id           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    completed_at      INTEGER
);
CREATE INDEX IF NOT EXISTS termination_jobs_by_created ON termination_jobs (created_at, id);
CREATE INDEX IF NOT EXISTS termination_jobs_pending ON termination_jobs (node_id) WHERE state = 'PENDING';
