-- A deployment's guest onMessage rate limit per session (0 = none); the real platform's is 2 per second.
ALTER TABLE deployments ADD COLUMN guest_messages_per_second INTEGER NOT NULL DEFAULT 0;
