-- Notification channels and their subscriptions, in the store so every node sees them (docs/notifications.md "Several
-- nodes"): a channel created on one node can be subscribed on another and its socket opened on either. Times in epoch ms.
CREATE TABLE notification_channels (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX notification_channels_client ON notification_channels (client_id, expires);
CREATE INDEX notification_channels_expires ON notification_channels (expires);
CREATE TABLE notification_subscriptions (
    channel_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    PRIMARY KEY (channel_id, topic)
);
