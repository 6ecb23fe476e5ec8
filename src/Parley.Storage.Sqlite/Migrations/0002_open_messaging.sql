-- Open Messaging: integrations, external senders as sessions, delivery status and de-duplication keys on messages,
-- and the outbox of webhook deliveries (written in the same transaction as the message it carries).
ALTER TABLE guest_sessions ADD COLUMN channel TEXT NOT NULL DEFAULT 'WebMessaging';
ALTER TABLE guest_sessions ADD COLUMN address TEXT;
ALTER TABLE guest_sessions ADD COLUMN address_type TEXT;
ALTER TABLE guest_sessions ADD COLUMN display_name TEXT;

ALTER TABLE messages ADD COLUMN status TEXT;
ALTER TABLE messages ADD COLUMN external_key TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_external_key ON messages (external_key) WHERE external_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS open_integrations (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    webhook_url             TEXT NOT NULL,
    secret_token            TEXT NOT NULL,
    webhook_headers         TEXT NOT NULL,
    disconnect_notification INTEGER NOT NULL,
    inbound_after_end       TEXT NOT NULL,
    date_created            INTEGER NOT NULL,
    date_modified           INTEGER NOT NULL,
    created_by              TEXT NOT NULL,
    modified_by             TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    destination     TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          INTEGER NOT NULL,
    lease_until     INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, due_at);
CREATE INDEX IF NOT EXISTS outbox_by_destination ON outbox (destination, state, created_at);
