-- Which replicas have live sessions of which (tenant, user), so a Notify knows
-- whose replies to wait for over the bus and waits for nobody when no replica
-- is watching. Each replica heartbeats its row in notify_replicas; a replica
-- that stops (or is killed) expires, and its presence rows go with it.
CREATE TABLE notify_replicas (
    replica_id text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE TABLE notify_presence (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    replica_id text NOT NULL REFERENCES notify_replicas (replica_id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, user_id, replica_id)
);

-- The cascade, and a replica's own re-sync, find its rows without a scan.
CREATE INDEX notify_presence_replica ON notify_presence (replica_id);
