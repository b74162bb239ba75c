use sqlx::{PgConnection, PgExecutor};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub id: i64,
    pub name: String,
    pub require_approval: bool,
    pub portal_url: String,
}

pub async fn by_id<'e>(executor: impl PgExecutor<'e>, id: i64) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as("SELECT id, name, require_approval, portal_url FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    portal_url: &str,
    require_approval: bool,
) -> sqlx::Result<TenantRow> {
    sqlx::query_as(
        "INSERT INTO tenants (name, portal_url, require_approval) VALUES ($1, $2, $3)
         RETURNING id, name, require_approval, portal_url",
    )
    .bind(name)
    .bind(portal_url)
    .bind(require_approval)
    .fetch_one(conn)
    .await
}
