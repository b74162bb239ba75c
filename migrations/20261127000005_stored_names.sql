-- Every column that stores an enum's name lists the names it accepts, so
-- a row can only hold what the application can read back: the scopes of
-- API keys and the way an activation link was handed out join the
-- statuses, roles, kinds, states and purposes already checked.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
    scopes <@ ARRAY['CUSTOMERS_READ', 'CUSTOMERS_WRITE', 'USERS_READ', 'USERS_WRITE',
                    'JOBS_READ', 'JOBS_WRITE', 'API_KEYS_WRITE']::text[]
);

ALTER TABLE user_tokens ADD CONSTRAINT user_tokens_method_check CHECK (
    method IS NULL OR method IN ('SEND_ACTIVATION_EMAIL', 'DISPLAY_ACTIVATION_LINK')
);
