-- Sign-in: sessions, and addresses claimed by users.

CREATE TABLE sessions (
    tenant_id  bigint      NOT NULL,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    user_id    bigint      NOT NULL,
    token_hash bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT sessions_token_hash_key UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX sessions_user_idx ON sessions (tenant_id, user_id);

-- An email change takes effect when the new address is validated; until
-- then the new address is the user's `pending_email`. The link's token row
-- records which address it validates.
ALTER TABLE users ADD COLUMN pending_email text;
ALTER TABLE user_tokens ADD COLUMN email text;

-- Every address a user holds or is changing to, lower-cased: one unique key
-- decides that no two users hold or reserve the same address.
CREATE TABLE email_claims (
    tenant_id bigint NOT NULL,
    address   text   NOT NULL,
    user_id   bigint NOT NULL,
    PRIMARY KEY (tenant_id, address),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX email_claims_user_idx ON email_claims (tenant_id, user_id);

INSERT INTO email_claims (tenant_id, address, user_id)
SELECT tenant_id, lower(email), id FROM users;
