-- Which worker process claimed a job's latest attempt. A worker that dies
-- stops its heartbeat; the relay then hands its running jobs out again
-- within seconds, instead of when their leases run out.
ALTER TABLE jobs ADD COLUMN claimed_by text;

CREATE INDEX jobs_running_idx ON jobs (claimed_by) WHERE state = 'RUNNING';

-- Since when a worker has beaten without a silence: only a relay whose own
-- worker has been heard for a while judges others silent, so after an
-- outage of Postgres (every heartbeat stale at once) no live worker is
-- taken for dead before it could beat again.
ALTER TABLE worker_heartbeats ADD COLUMN beating_since timestamptz NOT NULL DEFAULT now();
