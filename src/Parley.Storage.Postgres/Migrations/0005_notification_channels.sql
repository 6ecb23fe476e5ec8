-- Notification channels and their subscriptions, in the store so every node sees them (docs/notifications.md "Several
-- nodes"): a channel created on one node can be subscribed on another and its socket opened on either. Times in epoch ms.
-- IF NOT EXISTS: a test that rewinds the schema version to replay an older migration replays this one over its tables.
CREATE TABLE IF NOT EXISTS notification_channels (
    id text PRIMARY KEY,
    client_id text NOT NULL,
    user_id text,   -- the user of the token that created it; NULL for a client-credentials token
    expires bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_channels_client ON notification_channels (client_id, expires);
CREATE INDEX IF NOT EXISTS notification_channels_user ON notification_channels (user_id, expires);
CREATE INDEX IF NOT EXISTS notification_channels_expires ON notification_channels (expires);
CREATE TABLE IF NOT EXISTS notification_subscriptions (
    channel_id text NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    topic text NOT NULL,
    PRIMARY KEY (channel_id, topic)
);
