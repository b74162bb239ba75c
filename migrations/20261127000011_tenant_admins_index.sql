-- A tenant's administrators, found without reading all its users: they are
-- told of what no customer administrator is there to hear (approval
-- requests), and there are few of them among many users.
CREATE INDEX users_tenant_admins_idx ON users (tenant_id) WHERE role = 'TENANT_ADMIN';
