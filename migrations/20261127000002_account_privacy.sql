-- Account privacy: a tenant may switch self sign-up off, and people hear
-- about their own accounts (someone tried to sign up with their address)
-- through ACCOUNT_NOTICE jobs.

ALTER TABLE tenants ADD COLUMN self_sign_up boolean NOT NULL DEFAULT true;

ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (
    'EMAIL_VALIDATION', 'INVITATION', 'ADMIN_NOTIFICATION', 'PASSWORD_RESET', 'ACCOUNT_NOTICE'));
