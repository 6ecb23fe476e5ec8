-- Termination receipts (docs/ending-sessions.md "Receipts"). termination_deliveries links each outbox row a termination's
-- commit stored (the end notice to an open messaging channel) to the termination's audit id, in that same commit, so the
-- receipt reads those deliveries live from the outbox. socket_receipts: each node records, per guest socket it wrote the
-- end frame to, whether that write completed; one row per (termination, node, socket). Times in epoch ms.
-- New tables only, IF NOT EXISTS: a test that rewinds the schema version to replay an older migration replays this one.
CREATE TABLE IF NOT EXISTS termination_deliveries (
    outbox_id text PRIMARY KEY,
    audit_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS termination_deliveries_by_audit ON termination_deliveries (audit_id);
CREATE TABLE IF NOT EXISTS socket_receipts (
    termination_id text NOT NULL,
    conversation_id text NOT NULL,
    node_id text NOT NULL,
    socket_id text NOT NULL,
    delivered boolean NOT NULL,   -- the write completed; else it failed or was cut off (error says which)
    at bigint NOT NULL,
    error text,
    PRIMARY KEY (termination_id, node_id, socket_id)
);
