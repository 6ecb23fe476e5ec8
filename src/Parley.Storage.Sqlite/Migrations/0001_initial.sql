-- Conversations, their participants and messages; guest sessions; the termination audit; directory data.
-- Times are Unix epoch milliseconds (UTC), the precision of the wire format.
CREATE TABLE IF NOT EXISTS conversations (
    id                    TEXT PRIMARY KEY,
    channel               TEXT NOT NULL,
    deployment_id         TEXT NOT NULL,
    guest_session_id      TEXT NOT NULL,
    disconnect_mode       TEXT NOT NULL,
    originating_direction TEXT NOT NULL,
    state                 TEXT NOT NULL,
    start_time            INTEGER NOT NULL,
    end_time              INTEGER,
    version               INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_start ON conversations (start_time);
CREATE INDEX IF NOT EXISTS conversations_by_state ON conversations (state, start_time);

CREATE TABLE IF NOT EXISTS participants (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    ordinal          INTEGER NOT NULL,
    purpose          TEXT NOT NULL,
    name             TEXT NOT NULL,
    communication_id TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL,
    start_time       INTEGER NOT NULL,
    end_time         INTEGER,
    disconnect_type  TEXT
);
CREATE INDEX IF NOT EXISTS participants_by_conversation ON participants (conversation_id, ordinal);

CREATE TABLE IF NOT EXISTS messages (
    id                 TEXT PRIMARY KEY,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id),
    participant_id     TEXT NOT NULL,
    direction          TEXT NOT NULL,
    kind               TEXT NOT NULL,
    text               TEXT,
    events             TEXT,
    metadata           TEXT,
    timestamp          INTEGER NOT NULL,
    originating_entity TEXT,
    sender_name        TEXT,
    version            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, version);

CREATE TABLE IF NOT EXISTS guest_sessions (
    id              TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    conversation_id TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS termination_audit (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL,
    participant_id   TEXT,
    lever            TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    reason           TEXT,
    at               INTEGER NOT NULL,
    sockets_notified INTEGER
);
CREATE INDEX IF NOT EXISTS termination_audit_by_conversation ON termination_audit (conversation_id, at);
CREATE INDEX IF NOT EXISTS termination_audit_by_time ON termination_audit (at);

CREATE TABLE IF NOT EXISTS deployments (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    allowed_origins    TEXT NOT NULL,
    disconnect_enabled INTEGER NOT NULL,
    disconnect_type    TEXT NOT NULL,
    clear_enabled      INTEGER NOT NULL,
    date_created       INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS oauth_clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    permissions  TEXT NOT NULL,
    date_created INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS signing_keys (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL
);
