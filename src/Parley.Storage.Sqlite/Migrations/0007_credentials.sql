-- OAuth clients become editable and revocable; their changes and signing-key rotations are audited.
ALTER TABLE oauth_clients ADD COLUMN description TEXT;
ALTER TABLE oauth_clients ADD COLUMN date_modified INTEGER;
ALTER TABLE oauth_clients ADD COLUMN created_by TEXT;
ALTER TABLE oauth_clients ADD COLUMN modified_by TEXT;
-- Tokens carry the version they were issued under; regenerating the secret raises it and so ends them.
ALTER TABLE oauth_clients ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS credential_audit (
    id        TEXT PRIMARY KEY,
    action    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    by_client TEXT NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT
);
CREATE INDEX IF NOT EXISTS credential_audit_by_entity ON credential_audit (entity_id, at);
CREATE INDEX IF NOT EXISTS credential_audit_by_time ON credential_audit (at);

-- Token-signing keys by kid. The original key stays in signing_keys (key NULL here, kid '1').
CREATE TABLE IF NOT EXISTS token_signing_keys (
    kid        TEXT PRIMARY KEY,
    key        BLOB,
    created_at INTEGER NOT NULL,
    signs_from INTEGER NOT NULL,
    retires_at INTEGER
);
INSERT OR IGNORE INTO token_signing_keys (kid, key, created_at, signs_from, retires_at)
    VALUES ('1', NULL, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 0, NULL);
