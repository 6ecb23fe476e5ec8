-- The inactivity lever: a deployment's timeout, snapshotted into each conversation it starts (0 = none).
ALTER TABLE deployments ADD COLUMN inactivity_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN inactivity_seconds INTEGER NOT NULL DEFAULT 0;
-- The sweep looks only at live conversations that have a timeout.
CREATE INDEX IF NOT EXISTS conversations_with_timeout ON conversations (id) WHERE inactivity_seconds > 0 AND state = 'Connected';
