-- Operating the queue: worker heartbeats, and what the ledger needs to stay
-- fast as it grows.

-- Each worker process writes its heartbeat here every few seconds; a
-- worker is active while its heartbeat is recent. Workers serve every
-- tenant, so this table is not tenant-owned.
CREATE TABLE worker_heartbeats (
    worker_id  text        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now()
);

-- Retention prunes DONE rows by age.
CREATE INDEX jobs_done_idx ON jobs (updated_at) WHERE state = 'DONE';
