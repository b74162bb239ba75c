-- Idempotent mutations: a request sent with an Idempotency-Key runs once
-- per tenant, caller and key; a repeat within 24 hours answers what the
-- first answered.

CREATE TABLE idempotent_requests (
    tenant_id      bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- `key:12` or `user:5`: keys of one caller never meet another's.
    caller         text        NOT NULL,
    key            text        NOT NULL,
    -- SHA-256 of the operation (query, operation name, variables).
    request_hash   bytea       NOT NULL,
    -- RUNNING: claimed, nothing committed; COMMITTED: its change committed,
    -- the answer not yet kept; DONE: the answer is kept.
    state          text        NOT NULL CHECK (state IN ('RUNNING', 'COMMITTED', 'DONE')),
    -- Which run holds the claim: a run taking over an abandoned claim
    -- draws a new one, and a change commits only under its own.
    claim          bigint      NOT NULL,
    -- Until when a RUNNING claim is held; past it, the run is taken as
    -- dead (it never committed) and a repeat runs again.
    held_until     timestamptz NOT NULL,
    -- The kept answer: HTTP status and body; or, for an answer that held a
    -- secret, only the global id of what the first request made.
    status         smallint,
    body           text,
    secret_of      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, caller, key)
);

CREATE INDEX idempotent_requests_created_idx ON idempotent_requests (created_at);
