-- A partner's own id for customers and users: optional, unique per
-- tenant, so a partner looks up and upserts by it.

ALTER TABLE customers
    ADD COLUMN external_id text CHECK (char_length(external_id) BETWEEN 1 AND 255);
ALTER TABLE users
    ADD COLUMN external_id text CHECK (char_length(external_id) BETWEEN 1 AND 255);

CREATE UNIQUE INDEX customers_external_id_key ON customers (tenant_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX users_external_id_key ON users (tenant_id, external_id)
    WHERE external_id IS NOT NULL;
