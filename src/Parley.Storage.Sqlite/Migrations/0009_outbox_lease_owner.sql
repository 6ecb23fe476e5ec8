-- Node-owned outbox leases: a lease records the node that took it, so a node's start frees only its own leases (a live
-- node's are never taken from it) and a destination's cap counts what other nodes hold. Leases taken before this have no
-- owner; a start frees them as it always did.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
