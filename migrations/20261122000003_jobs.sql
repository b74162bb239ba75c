-- The jobs ledger. A job row is written in the same transaction as the
-- change that causes it; the relay hands committed rows to Redis and the
-- worker records each attempt here. Payloads carry ids, never secrets.

CREATE TABLE jobs (
    tenant_id    bigint      NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    kind         text        NOT NULL
        CHECK (kind IN ('EMAIL_VALIDATION', 'INVITATION', 'ADMIN_NOTIFICATION', 'PASSWORD_RESET')),
    state        text        NOT NULL DEFAULT 'AWAITING_DISPATCH'
        CHECK (state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING', 'DONE', 'FAILED', 'KILLED')),
    payload      jsonb       NOT NULL,
    -- The address the email goes to, as known when it was queued.
    recipient    text,
    -- The user it is addressed to, for User.emailDeliveries. No foreign key:
    -- the ledger outlives the user.
    user_id      bigint,
    attempts     integer     NOT NULL DEFAULT 0,
    -- How many times the relay handed it to Redis: each hand-out is a task
    -- id of its own, so a hand-out Redis lost or dropped is replaced, and
    -- the ledger's claim keeps a duplicate from running twice.
    dispatches   integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL,
    last_error   text,
    -- When the relay should (re)dispatch it: now for new jobs, after the
    -- backoff for failed ones, after the lease for dispatched ones.
    run_at       timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- What the relay scans: jobs to hand to Redis, oldest due first.
CREATE INDEX jobs_due_idx ON jobs (run_at)
    WHERE state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING', 'FAILED');
CREATE INDEX jobs_user_idx ON jobs (tenant_id, user_id, id DESC) WHERE user_id IS NOT NULL;
CREATE INDEX jobs_kind_state_idx ON jobs (tenant_id, kind, state, id DESC);

-- How an activation link was handed out (SEND_ACTIVATION_EMAIL or
-- DISPLAY_ACTIVATION_LINK), for User.invitation.
ALTER TABLE user_tokens ADD COLUMN method text;
