-- Secrets by default: an installation started without CANOPY_SECRET
-- generates 256 random bits at its first start and keeps them here, so
-- every process of the installation shares them and restarts keep links
-- valid. One row at most.
CREATE TABLE server_secrets (
    id         integer     PRIMARY KEY CHECK (id = 1),
    secret     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Which server secret made each link (a short HMAC under it, never the
-- secret), so that after a rotation a retried email rebuilds the same link
-- from CANOPY_SECRET_PREVIOUS. Null for links made before it was recorded.
ALTER TABLE user_tokens ADD COLUMN secret_id text;

-- Earlier versions signed links with a development secret built into the
-- binary when CANOPY_SECRET was unset, the same in every installation:
-- anyone could forge those links. Every live one is revoked; its holder
-- asks for a new link. A token was made under that secret exactly when its
-- stored hash is the hash of the token that secret derives for its row.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

UPDATE user_tokens t SET revoked_at = now()
WHERE t.consumed_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > now()
  AND t.token_hash = digest(
        t.tenant_id::text || '.' || rtrim(translate(encode(
            hmac(t.purpose || ':' || t.tenant_id || ':' || t.id,
                 'canopy-development-secret-do-not-use-in-production', 'sha256'),
            'base64'), '+/', '-_'), '='),
        'sha256');
