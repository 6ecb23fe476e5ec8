-- Termination policies (docs/ending-sessions.md "Policies"): rules that end the live conversations of one deployment or
-- one open messaging integration. Exactly one of deployment_id, integration_id is set. Times in epoch ms.
-- A policy belongs to its channel: deleting the deployment or integration deletes its policies (the triggers below, in
-- the delete's own transaction; this store does not turn on SQLite's foreign keys).
-- IF NOT EXISTS: a test that rewinds the schema version to replay an older migration replays this one over its tables.
CREATE TABLE IF NOT EXISTS termination_policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    deployment_id TEXT,
    integration_id TEXT,
    type TEXT NOT NULL,              -- MaxDuration | Campaign | BusinessHours
    enabled INTEGER NOT NULL,
    max_duration_seconds INTEGER,
    campaign TEXT,
    started_by TEXT,
    end_at INTEGER,
    close_at TEXT,                   -- HH:mm, local
    time_zone TEXT,                  -- IANA id
    days TEXT,                       -- comma-separated day names; NULL: every day
    reason TEXT,
    date_created INTEGER NOT NULL,
    date_modified INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS termination_policies_deployment ON termination_policies (deployment_id);
CREATE INDEX IF NOT EXISTS termination_policies_integration ON termination_policies (integration_id);
CREATE TRIGGER IF NOT EXISTS termination_policies_deployment_deleted AFTER DELETE ON deployments
BEGIN
    DELETE FROM termination_policies WHERE deployment_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS termination_policies_integration_deleted AFTER DELETE ON open_integrations
BEGIN
    DELETE FROM termination_policies WHERE integration_id = OLD.id;
END;
