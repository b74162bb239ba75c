-- Operating the queue: who last acted on a job (cancel, retry), kinds
-- paused per tenant, jobs found by the customer they concern or their
-- recipient, and how many jobs ended each minute.

ALTER TABLE jobs
    -- The customer the job concerns: a notice's customer, else the
    -- addressed user's. No foreign key: the ledger outlives the customer.
    ADD COLUMN customer_id bigint,
    -- The last operator action on the job, and who took it (a user or an
    -- API key of the tenant).
    ADD COLUMN action text CHECK (action IN ('CANCELLED', 'RETRIED')),
    ADD COLUMN action_at timestamptz,
    ADD COLUMN action_by_user_id bigint,
    ADD COLUMN action_by_key_id bigint;

UPDATE jobs j SET customer_id = coalesce(
    (j.payload ->> 'customerId')::bigint,
    (SELECT u.customer_id FROM users u WHERE u.tenant_id = j.tenant_id AND u.id = j.user_id))
WHERE j.payload ->> 'customerId' IS NOT NULL OR j.user_id IS NOT NULL;

CREATE INDEX jobs_customer_idx ON jobs (tenant_id, customer_id, id DESC)
    WHERE customer_id IS NOT NULL;
CREATE INDEX jobs_recipient_idx ON jobs (tenant_id, lower(recipient), id DESC);

-- A paused kind's jobs are not handed out: the relay holds them
-- (AWAITING_DISPATCH, due at 'infinity', so its scan never meets them
-- again) and a worker refuses to claim them; resuming makes the held jobs
-- due at once.
CREATE TABLE job_kind_pauses (
    tenant_id         bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind              text        NOT NULL,
    paused_at         timestamptz NOT NULL DEFAULT now(),
    paused_by_user_id bigint,
    paused_by_key_id  bigint,
    PRIMARY KEY (tenant_id, kind)
);

-- How many jobs ended (DONE), failed an attempt to be retried (FAILED) or
-- were given up (KILLED) in each minute, per tenant and kind: jobQueue's
-- throughput, without reading the ledger. Each database session adds to
-- its own shard of a minute's row, so concurrent workers do not queue on
-- one row lock; reading sums at most a few thousand rows. Kept two hours.
CREATE TABLE job_minutes (
    tenant_id bigint      NOT NULL,
    minute    timestamptz NOT NULL,
    kind      text        NOT NULL,
    shard     smallint    NOT NULL,
    done      bigint      NOT NULL DEFAULT 0,
    retried   bigint      NOT NULL DEFAULT 0,
    killed    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, minute, kind, shard)
);

CREATE FUNCTION jobs_ended_minute() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_minutes AS m (tenant_id, minute, kind, shard, done, retried, killed)
    VALUES (NEW.tenant_id, date_trunc('minute', now()), NEW.kind, pg_backend_pid() % 8,
            (NEW.state = 'DONE')::int, (NEW.state = 'FAILED')::int, (NEW.state = 'KILLED')::int)
    ON CONFLICT (tenant_id, minute, kind, shard) DO UPDATE
        SET done = m.done + excluded.done,
            retried = m.retried + excluded.retried,
            killed = m.killed + excluded.killed;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_ended_minute AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('DONE', 'FAILED', 'KILLED'))
    EXECUTE FUNCTION jobs_ended_minute();

-- retryJobs walks a tenant's FAILED and KILLED jobs oldest first.
CREATE INDEX jobs_retryable_idx ON jobs (tenant_id, id) WHERE state IN ('FAILED', 'KILLED');
-- The retention of job_minutes deletes by age across tenants.
CREATE INDEX job_minutes_minute_idx ON job_minutes (minute);
