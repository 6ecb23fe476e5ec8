-- The inactivity lever: a deployment's timeout, snapshotted into each conversation it starts (0 = none).
ALTER TABLE deployments ADD COLUMN inactivity_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN inactivity_seconds INTEGER NOT NULL DEFAULT 0;
