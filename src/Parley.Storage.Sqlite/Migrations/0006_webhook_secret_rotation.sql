-- Webhook secret rotation: the replaced secret stays in force (verifies and signs beside the new one) until it expires.
ALTER TABLE open_integrations ADD COLUMN previous_secret_token TEXT;
ALTER TABLE open_integrations ADD COLUMN previous_secret_expires_at INTEGER;
