-- Routing queues: every deployment and Open Messaging integration routes its conversations to one, and a conversation
-- records the queue it started on. name_key is the name lower-cased by the server (QueueFilter.NameKey): the name filter
-- and the sort use it, so SQLite and PostgreSQL compare names alike.
CREATE TABLE queues (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    name_key      text NOT NULL,
    description   text,
    date_created  bigint NOT NULL,
    date_modified bigint NOT NULL,
    created_by    text,
    modified_by   text
);
CREATE INDEX queues_by_name ON queues (name_key COLLATE "C", id);

-- What existed before routes to the demo queue, at its documented default id (ParleyOptions.DefaultQueueId). It is
-- created here only when there is something to route; on an empty store the start creates the demo queue at the
-- configured id (Parley:Demo:QueueId).
INSERT INTO queues (id, name, name_key, description, date_created, date_modified, created_by, modified_by)
SELECT 'd1e2a3b4-0000-4000-8000-000000000002', 'Parley demo queue', 'parley demo queue',
       'Where the demo deployment routes its conversations; created at start.',
       (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint, 'parley', 'parley'
WHERE EXISTS (SELECT 1 FROM deployments) OR EXISTS (SELECT 1 FROM open_integrations) OR EXISTS (SELECT 1 FROM conversations);

ALTER TABLE deployments ADD COLUMN queue_id text NOT NULL DEFAULT 'd1e2a3b4-0000-4000-8000-000000000002';
ALTER TABLE open_integrations ADD COLUMN queue_id text NOT NULL DEFAULT 'd1e2a3b4-0000-4000-8000-000000000002';
-- Set once, when the conversation starts, from its deployment's or integration's queue. Those stored before took the
-- demo queue above, as their deployment or integration did.
ALTER TABLE conversations ADD COLUMN queue_id text;
UPDATE conversations SET queue_id = 'd1e2a3b4-0000-4000-8000-000000000002';
