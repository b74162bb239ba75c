-- A tenant's brand, for its account pages and its emails: a logo (an https
-- URL the pages and emails load) and an accent colour.
ALTER TABLE tenants
    ADD COLUMN logo_url text
        CHECK (logo_url ~ '^https://[^[:space:]"''<>]+$' AND length(logo_url) <= 2048),
    ADD COLUMN accent_color text CHECK (accent_color ~ '^#[0-9a-f]{6}$');
