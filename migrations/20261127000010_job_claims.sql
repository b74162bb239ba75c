-- Which worker process claimed a job's latest attempt. A worker that dies
-- stops its heartbeat; the relay then hands its running jobs out again
-- within seconds, instead of when their leases run out.
ALTER TABLE jobs ADD COLUMN claimed_by text;

CREATE INDEX jobs_running_idx ON jobs (claimed_by) WHERE state = 'RUNNING';
