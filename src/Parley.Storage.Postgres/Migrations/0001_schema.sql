-- The schema of the SQLite store after its migration 0008, in PostgreSQL's types, plus what several nodes need: the
-- outbox lease's owner and an insertion order for the outbox (SQLite's rowid), and the guard function a commit uses to
-- abort itself. Times are Unix epoch milliseconds (UTC), the precision of the wire format, as in SQLite.

-- A commit's guard: given the value its guarded statement returned (NULL when the statement matched no row), raises
-- SQLSTATE PR001 so that the whole commit (one implicit transaction) rolls back and the adapter answers "refused".
CREATE FUNCTION parley_guard(v bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'parley: commit refused by its guard' USING ERRCODE = 'PR001';
    END IF;
    RETURN v;
END $$;

CREATE TABLE conversations (
    id                    text PRIMARY KEY,
    channel               text NOT NULL,
    deployment_id         text NOT NULL,
    guest_session_id      text NOT NULL,
    disconnect_mode       text NOT NULL,
    originating_direction text NOT NULL,
    state                 text NOT NULL,
    start_time            bigint NOT NULL,
    end_time              bigint,
    version               bigint NOT NULL,
    inactivity_seconds    bigint NOT NULL DEFAULT 0,
    last_sequence         bigint NOT NULL DEFAULT 0
);
CREATE INDEX conversations_by_start ON conversations (start_time);
CREATE INDEX conversations_by_state ON conversations (state, start_time);
CREATE INDEX conversations_with_timeout ON conversations (id) WHERE inactivity_seconds > 0 AND state = 'Connected';

CREATE TABLE participants (
    id               text PRIMARY KEY,
    conversation_id  text NOT NULL REFERENCES conversations (id),
    ordinal          integer NOT NULL,
    purpose          text NOT NULL,
    name             text NOT NULL,
    communication_id text NOT NULL UNIQUE,
    state            text NOT NULL,
    start_time       bigint NOT NULL,
    end_time         bigint,
    disconnect_type  text
);
CREATE INDEX participants_by_conversation ON participants (conversation_id, ordinal);

CREATE TABLE messages (
    id                 text PRIMARY KEY,
    conversation_id    text NOT NULL REFERENCES conversations (id),
    participant_id     text NOT NULL,
    direction          text NOT NULL,
    kind               text NOT NULL,
    text               text,
    events             text,
    metadata           text,
    timestamp          bigint NOT NULL,
    originating_entity text,
    sender_name        text,
    version            bigint NOT NULL,
    status             text,
    external_key       text,
    sequence           bigint NOT NULL
);
CREATE UNIQUE INDEX messages_by_external_key ON messages (external_key) WHERE external_key IS NOT NULL;
CREATE UNIQUE INDEX messages_by_sequence ON messages (conversation_id, sequence);

CREATE TABLE guest_sessions (
    id              text PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE,
    deployment_id   text NOT NULL,
    conversation_id text,
    created_at      bigint NOT NULL,
    channel         text NOT NULL DEFAULT 'WebMessaging',
    address         text,
    address_type    text,
    display_name    text
);
CREATE INDEX guest_sessions_by_created ON guest_sessions (created_at, id);

CREATE TABLE termination_audit (
    id               text PRIMARY KEY,
    conversation_id  text NOT NULL,
    participant_id   text,
    lever            text NOT NULL,
    client_id        text NOT NULL,
    reason           text,
    at               bigint NOT NULL,
    sockets_notified integer
);
CREATE INDEX termination_audit_by_conversation ON termination_audit (conversation_id, at);
CREATE INDEX termination_audit_by_time ON termination_audit (at);

CREATE TABLE deployments (
    id                        text PRIMARY KEY,
    name                      text NOT NULL,
    allowed_origins           text NOT NULL,
    disconnect_enabled        boolean NOT NULL,
    disconnect_type           text NOT NULL,
    clear_enabled             boolean NOT NULL,
    date_created              bigint NOT NULL,
    inactivity_seconds        bigint NOT NULL DEFAULT 0,
    guest_messages_per_second integer NOT NULL DEFAULT 0
);

CREATE TABLE oauth_clients (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    secret_hash        text NOT NULL,
    permissions        text NOT NULL,
    date_created       bigint NOT NULL,
    description        text,
    date_modified      bigint,
    created_by         text,
    modified_by        text,
    credential_version bigint NOT NULL DEFAULT 0
);

-- The original token-signing key (kid '1'); created once, by whichever node starts first.
CREATE TABLE signing_keys (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);

CREATE TABLE open_integrations (
    id                         text PRIMARY KEY,
    name                       text NOT NULL,
    webhook_url                text NOT NULL,
    secret_token               text NOT NULL,
    webhook_headers            text NOT NULL,
    disconnect_notification    boolean NOT NULL,
    inbound_after_end          text NOT NULL,
    date_created               bigint NOT NULL,
    date_modified              bigint NOT NULL,
    created_by                 text NOT NULL,
    modified_by                text NOT NULL,
    previous_secret_token      text,
    previous_secret_expires_at bigint
);

-- seq: insertion order (SQLite's rowid). A conversation's outbox rows are inserted under its row's lock (the guarded
-- statement of their commit), so within a conversation seq follows commit order.
CREATE TABLE outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              text PRIMARY KEY,
    destination     text NOT NULL,
    message_id      text NOT NULL,
    conversation_id text NOT NULL,
    body            bytea NOT NULL,
    state           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    due_at          bigint NOT NULL,
    lease_until     bigint,
    lease_owner     text,
    last_status     integer,
    last_error      text,
    created_at      bigint NOT NULL,
    delivered_at    bigint
);
CREATE INDEX outbox_due ON outbox (state, due_at);
CREATE INDEX outbox_by_destination ON outbox (destination, state, created_at);
CREATE INDEX outbox_by_conversation ON outbox (conversation_id, state, seq);

CREATE TABLE credential_audit (
    id        text PRIMARY KEY,
    action    text NOT NULL,
    entity_id text NOT NULL,
    by_client text NOT NULL,
    at        bigint NOT NULL,
    detail    text
);
CREATE INDEX credential_audit_by_entity ON credential_audit (entity_id, at);
CREATE INDEX credential_audit_by_time ON credential_audit (at);

CREATE TABLE token_signing_keys (
    kid        text PRIMARY KEY,
    key        bytea,
    created_at bigint NOT NULL,
    signs_from bigint NOT NULL,
    retires_at bigint
);
INSERT INTO token_signing_keys (kid, key, created_at, signs_from, retires_at)
    VALUES ('1', NULL, (extract(epoch FROM now()) * 1000)::bigint, 0, NULL);
