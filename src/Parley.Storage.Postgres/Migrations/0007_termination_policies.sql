-- Termination policies (docs/ending-sessions.md "Policies"): rules that end the live conversations of one deployment or
-- one open messaging integration. Exactly one of deployment_id, integration_id is set. Times in epoch ms.
-- A policy belongs to its channel: the foreign keys refuse a policy for a channel that is not there and delete a
-- channel's policies with it (ON DELETE CASCADE, in the delete's own transaction).
-- IF NOT EXISTS: a test that rewinds the schema version to replay an older migration replays this one over its tables.
CREATE TABLE IF NOT EXISTS termination_policies (
    id text PRIMARY KEY,
    name text NOT NULL,
    deployment_id text REFERENCES deployments (id) ON DELETE CASCADE,
    integration_id text REFERENCES open_integrations (id) ON DELETE CASCADE,
    type text NOT NULL,              -- MaxDuration | Campaign | BusinessHours
    enabled boolean NOT NULL,
    max_duration_seconds bigint,
    campaign text,
    started_by text,
    end_at bigint,
    close_at text,                   -- HH:mm, local
    time_zone text,                  -- IANA id
    days text,                       -- comma-separated day names; NULL: every day
    reason text,
    date_created bigint NOT NULL,
    date_modified bigint NOT NULL,
    created_by text NOT NULL,
    CHECK ((deployment_id IS NULL) <> (integration_id IS NULL))
);
CREATE INDEX IF NOT EXISTS termination_policies_deployment ON termination_policies (deployment_id);
CREATE INDEX IF NOT EXISTS termination_policies_integration ON termination_policies (integration_id);
