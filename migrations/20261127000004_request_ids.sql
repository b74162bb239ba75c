-- The X-Request-Id of the request that wrote each job, so an operator can
-- follow an email back to the call that caused it. Null for jobs written
-- outside a request (create-tenant, earlier jobs).
ALTER TABLE jobs ADD COLUMN request_id text;

-- A key's own budget of operation cost per minute, for a partner that
-- calls at a high rate; null: CANOPY_LIMIT_CALLER.
ALTER TABLE api_keys ADD COLUMN rate_limit_per_minute integer
    CHECK (rate_limit_per_minute BETWEEN 1 AND 100000000);
