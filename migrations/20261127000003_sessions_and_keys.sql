-- Who made each API key (a user or another key; neither for the key
-- create-tenant prints), and when it stops working on its own.
ALTER TABLE api_keys
    ADD COLUMN created_by_user_id bigint,
    ADD COLUMN created_by_key_id  bigint,
    ADD COLUMN expires_at         timestamptz;

-- Purging finished sessions and links by age.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX user_tokens_expires_idx ON user_tokens (expires_at);

-- Self sign-ups, marked when made, so that only they (and the customer a
-- sign-up created) are ever purged for staying unvalidated.
ALTER TABLE users ADD COLUMN signed_up boolean NOT NULL DEFAULT false;
ALTER TABLE customers ADD COLUMN signed_up boolean NOT NULL DEFAULT false;
CREATE INDEX users_unvalidated_sign_ups_idx ON users (created_at)
    WHERE signed_up AND status = 'PENDING_EMAIL_VALIDATION';
