-- Canopy's foundation: tenants, API keys, the customer tree, entitlements,
-- users and customer administrators.
--
-- Every tenant-owned table carries tenant_id in its primary key and unique
-- keys (and so in the foreign keys between them), so that distributing by
-- tenant later is a configuration change rather than a rewrite.

CREATE EXTENSION IF NOT EXISTS ltree;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE tenants (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text        NOT NULL,
    require_approval boolean     NOT NULL DEFAULT false,
    portal_url       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Customer numbers are assigned from a per-tenant counter when a customer is
-- created without one. A sequence per tenant would avoid the row lock, but
-- the lock is held only for the creating transaction and keeps numbering
-- transactional (no gaps on rollback).
CREATE TABLE tenant_counters (
    tenant_id       bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    customer_number bigint NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    tenant_id    bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    name         text        NOT NULL,
    scopes       text[]      NOT NULL,
    prefix       text        NOT NULL,
    secret_hash  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_keys_secret_hash_key UNIQUE (tenant_id, secret_hash)
);

-- The tree. `path` holds the ids from the root down to the customer itself
-- (ltree labels), so ancestors (@>), a subtree (<@), depth (nlevel) and
-- subtree counts are each one GiST-indexed query, and a move rewrites the
-- subtree's paths in one UPDATE.
--
-- `sort_key` is the customer's place among its siblings (title
-- case-insensitively, then number); `tree_sort` chains the sort keys from the
-- root down, separated by chr(30), which sorts below every character a title
-- or number may hold. Ordering a subtree by tree_sort is therefore depth-first
-- pre-order with children by title, in one query.
CREATE TABLE customers (
    tenant_id  bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    parent_id  bigint,
    path       ltree       NOT NULL,
    number     text        NOT NULL,
    title      text        NOT NULL,
    sort_key   text COLLATE "C" GENERATED ALWAYS AS (lower(title) || chr(31) || number) STORED,
    tree_sort  text COLLATE "C" NOT NULL,
    info       text,
    email      text,
    phone      text,
    country    text,
    state      text,
    city       text,
    address    text,
    address2   text,
    zip        text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT customers_number_key UNIQUE (tenant_id, number),
    CONSTRAINT customers_parent_fkey FOREIGN KEY (tenant_id, parent_id)
        REFERENCES customers (tenant_id, id)
);

CREATE INDEX customers_path_idx ON customers USING gist (path);
CREATE INDEX customers_sort_idx ON customers (tenant_id, sort_key);
CREATE INDEX customers_roots_sort_idx ON customers (tenant_id, sort_key) WHERE parent_id IS NULL;
CREATE INDEX customers_children_idx ON customers (tenant_id, parent_id, sort_key);
CREATE INDEX customers_title_trgm_idx ON customers USING gin (title gin_trgm_ops);
CREATE INDEX customers_number_trgm_idx ON customers USING gin (number gin_trgm_ops);

CREATE TABLE entitlements (
    tenant_id       bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    kind            text        NOT NULL
        CHECK (kind IN ('AUTHORIZATION_CODE', 'ACTIVATION_KEY', 'CLOUD_ACCOUNT')),
    reference       text        NOT NULL,
    customer_id     bigint,
    -- The number of the customer it was last attached to; kept on detach.
    customer_number text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT entitlements_reference_key UNIQUE (tenant_id, kind, reference),
    CONSTRAINT entitlements_customer_fkey FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id)
);

CREATE INDEX entitlements_customer_idx ON entitlements (tenant_id, customer_id);

CREATE TABLE users (
    tenant_id     bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    customer_id   bigint,
    email         text        NOT NULL,
    first_name    text,
    last_name     text,
    phone         text,
    role          text        NOT NULL CHECK (role IN ('TENANT_ADMIN', 'CUSTOMER_USER')),
    status        text        NOT NULL
        CHECK (status IN ('PENDING_EMAIL_VALIDATION', 'PENDING_APPROVAL', 'ACTIVE', 'SUSPENDED')),
    password_hash text,
    last_login_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_customer_fkey FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id),
    CONSTRAINT users_role_customer_check
        CHECK ((role = 'TENANT_ADMIN') = (customer_id IS NULL))
);

CREATE UNIQUE INDEX users_email_key ON users (tenant_id, lower(email));
CREATE INDEX users_customer_idx ON users (tenant_id, customer_id);

CREATE TABLE customer_administrators (
    tenant_id   bigint      NOT NULL,
    customer_id bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_id, user_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX customer_administrators_user_idx ON customer_administrators (tenant_id, user_id);

-- One-time secrets behind email links. The link's token is an HMAC of this
-- row's id under the server secret; only its SHA-256 is stored.
CREATE TABLE user_tokens (
    tenant_id   bigint      NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    user_id     bigint      NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('EMAIL_VALIDATION', 'ACTIVATION', 'PASSWORD_RESET')),
    token_hash  bytea       NOT NULL,
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT user_tokens_hash_key UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX user_tokens_user_idx ON user_tokens (tenant_id, user_id, purpose);
