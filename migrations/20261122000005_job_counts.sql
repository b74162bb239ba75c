-- jobQueue's counts per kind and state, kept by triggers so that reading
-- them costs the same at a million jobs as at ten. Each tenant, kind and
-- state has 16 slots (by job id), so jobs written at the same time rarely
-- wait for one another's counter row.

CREATE TABLE job_counts (
    tenant_id bigint   NOT NULL,
    kind      text     NOT NULL,
    state     text     NOT NULL,
    slot      smallint NOT NULL,
    count     bigint   NOT NULL,
    PRIMARY KEY (tenant_id, kind, state, slot)
);

CREATE FUNCTION count_job(tenant bigint, job_kind text, job_state text, job_id bigint, delta integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO job_counts (tenant_id, kind, state, slot, count)
    VALUES (tenant, job_kind, job_state, (job_id % 16)::smallint, delta)
    ON CONFLICT (tenant_id, kind, state, slot)
    DO UPDATE SET count = job_counts.count + excluded.count
$$;

CREATE FUNCTION jobs_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM count_job(OLD.tenant_id, OLD.kind, OLD.state, OLD.id, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM count_job(NEW.tenant_id, NEW.kind, NEW.state, NEW.id, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_counted_rows AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_counted();
CREATE TRIGGER jobs_counted_states AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION jobs_counted();

INSERT INTO job_counts (tenant_id, kind, state, slot, count)
SELECT tenant_id, kind, state, (id % 16)::smallint, count(*) FROM jobs
GROUP BY tenant_id, kind, state, (id % 16)::smallint;
