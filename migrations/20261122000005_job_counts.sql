-- jobQueue's counts per kind and state, kept by triggers so that reading
-- them costs the same at a million jobs as at ten.
--
-- The triggers only append (+1 / -1 rows): nothing waits for a counter row,
-- so job writes never lock one another out or deadlock over counts. Workers
-- fold the rows into one per tenant, kind and state every minute, so
-- reading stays a sum over a handful of rows.

CREATE TABLE job_counts (
    tenant_id bigint NOT NULL,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    kind      text   NOT NULL,
    state     text   NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE FUNCTION jobs_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO job_counts (tenant_id, kind, state, count)
        VALUES (OLD.tenant_id, OLD.kind, OLD.state, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO job_counts (tenant_id, kind, state, count)
        VALUES (NEW.tenant_id, NEW.kind, NEW.state, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_counted_rows AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_counted();
CREATE TRIGGER jobs_counted_states AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION jobs_counted();

INSERT INTO job_counts (tenant_id, kind, state, count)
SELECT tenant_id, kind, state, count(*) FROM jobs GROUP BY tenant_id, kind, state;

-- jobQueue.jobs(state: …) without a kind, newest first.
CREATE INDEX jobs_state_idx ON jobs (tenant_id, state, id DESC);
