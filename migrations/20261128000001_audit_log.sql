-- The audit log: one entry per mutation that changed something, written in
-- the mutation's own transaction. It is the one record of who acted: the
-- creator of an API key and the operator who cancelled, retried or paused
-- jobs are read from it, so their columns go.

CREATE TABLE audit_entries (
    tenant_id        bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    at               timestamptz NOT NULL DEFAULT now(),
    -- The GraphQL mutation (createUser), or the command (create-tenant).
    operation        text        NOT NULL CHECK (operation ~ '^[a-zA-Z-]{1,64}$'),
    -- Who: a user or an API key of the tenant, or nobody (a public
    -- mutation made by no one signed in). No foreign keys: the log
    -- outlives what it names.
    actor_user_id    bigint,
    actor_key_id     bigint,
    session_id       bigint,
    client_addr      inet,
    request_id       text,
    -- Where in the tree: the path of the customer concerned when it was
    -- written, so a customer administrator sees the entries of its
    -- subtree (by the ids on the path, which a move does not change).
    customer_path    ltree,
    -- What: the objects it made or changed, as `Kind:number`.
    objects          text[]      NOT NULL DEFAULT '{}',
    -- A few facts of the change (a status set, a kind paused).
    detail           jsonb,
    CHECK (actor_key_id IS NULL OR actor_user_id IS NULL),
    PRIMARY KEY (tenant_id, id)
);

-- Newest first, per tenant (the primary key); by operation; by object;
-- within a subtree; and by age, for retention.
CREATE INDEX audit_entries_operation_idx ON audit_entries (tenant_id, operation, id DESC);
CREATE INDEX audit_entries_objects_idx ON audit_entries USING gin (objects);
CREATE INDEX audit_entries_path_idx ON audit_entries USING gist (customer_path)
    WHERE customer_path IS NOT NULL;
CREATE INDEX audit_entries_at_idx ON audit_entries (at);

-- What the dropped columns knew, kept as entries.
INSERT INTO audit_entries (tenant_id, at, operation, actor_user_id, actor_key_id, objects)
SELECT tenant_id, created_at, 'createApiKey', created_by_user_id, created_by_key_id,
       ARRAY['ApiKey:' || id]
FROM api_keys
WHERE created_by_user_id IS NOT NULL OR created_by_key_id IS NOT NULL;

INSERT INTO audit_entries (tenant_id, at, operation, actor_user_id, actor_key_id, objects)
SELECT tenant_id, action_at,
       CASE action WHEN 'CANCELLED' THEN 'cancelJob' ELSE 'retryJob' END,
       action_by_user_id, action_by_key_id, ARRAY['Job:' || id]
FROM jobs
WHERE action IS NOT NULL AND action_at IS NOT NULL;

INSERT INTO audit_entries (tenant_id, at, operation, actor_user_id, actor_key_id, detail)
SELECT tenant_id, paused_at, 'pauseJobKind', paused_by_user_id, paused_by_key_id,
       jsonb_build_object('kind', kind)
FROM job_kind_pauses;

ALTER TABLE api_keys
    DROP COLUMN created_by_user_id,
    DROP COLUMN created_by_key_id;

ALTER TABLE jobs
    DROP COLUMN action_at,
    DROP COLUMN action_by_user_id,
    DROP COLUMN action_by_key_id;

ALTER TABLE job_kind_pauses
    DROP COLUMN paused_by_user_id,
    DROP COLUMN paused_by_key_id;
