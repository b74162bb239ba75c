-- Webhooks: what changed is written as events in the transaction of the
-- change (the outbox), and each event a tenant's endpoints asked for gets
-- a delivery, which workers send, retry and log.

CREATE TABLE events (
    tenant_id   bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    type        text        NOT NULL,
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_created_idx ON events (created_at);

CREATE TABLE webhook_endpoints (
    tenant_id    bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    url          text        NOT NULL CHECK (char_length(url) <= 2048),
    events       text[]      NOT NULL,
    description  text        CHECK (char_length(description) <= 200),
    -- The signing secret is derived from the server secret (this one's
    -- id) and the generation; none is stored.
    secret_id    text        NOT NULL,
    generation   integer     NOT NULL DEFAULT 1,
    enabled      boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    -- Deliveries that failed in a row since the last success.
    failures     integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    tenant_id        bigint      NOT NULL,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    endpoint_id      bigint      NOT NULL,
    event_id         bigint      NOT NULL,
    -- PENDING until sent (DELIVERED) or given up (FAILED).
    state            text        NOT NULL DEFAULT 'PENDING'
                                 CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         integer     NOT NULL DEFAULT 0,
    -- When it is due; a worker sending it pushes this past its lease.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_latency_ms  integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'PENDING';
CREATE INDEX webhook_deliveries_endpoint_idx
    ON webhook_deliveries (tenant_id, endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (tenant_id, event_id);

-- Each event gets a delivery for every enabled endpoint of its tenant that
-- asked for its type, in the statement that writes it.
CREATE FUNCTION events_deliver() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id)
    SELECT e.tenant_id, w.id, e.id FROM new_events e
    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.enabled
     AND e.type = ANY (w.events);
    RETURN NULL;
END $$;

CREATE TRIGGER events_deliver AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_deliver();

-- A job given up (its attempts spent, refused for good, or cancelled) is
-- the event job.killed, whoever killed it: the worker, its recovery, or an
-- operator. Its id is the global id the API shows (`Job:<id>` in URL-safe
-- base64, unpadded).
CREATE FUNCTION jobs_killed_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (tenant_id, type, data)
    VALUES (NEW.tenant_id, 'job.killed', jsonb_build_object(
        'id', translate(rtrim(encode(convert_to('Job:' || NEW.id, 'UTF8'), 'base64'), '='),
                        '+/', '-_'),
        'kind', NEW.kind,
        'cancelled', NEW.action IS NOT DISTINCT FROM 'CANCELLED'));
    RETURN NULL;
END $$;

-- Row by row, but only for the rare update that kills a job.
CREATE TRIGGER jobs_killed_event AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'KILLED' AND OLD.state <> 'KILLED')
    EXECUTE FUNCTION jobs_killed_event();
