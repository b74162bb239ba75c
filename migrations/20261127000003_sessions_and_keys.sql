-- Who made each API key (a user or another key; neither for the key
-- create-tenant prints), and when it stops working on its own.
ALTER TABLE api_keys
    ADD COLUMN created_by_user_id bigint,
    ADD COLUMN created_by_key_id  bigint,
    ADD COLUMN expires_at         timestamptz;

-- Purging finished sessions and links by age.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX user_tokens_expires_idx ON user_tokens (expires_at);
