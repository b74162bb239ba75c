-- The X-Request-Id of the request that wrote each job, so an operator can
-- follow an email back to the call that caused it. Null for jobs written
-- outside a request (create-tenant, earlier jobs).
ALTER TABLE jobs ADD COLUMN request_id text;
