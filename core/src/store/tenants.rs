//! Tenants and their settings.

use sqlx::{PgConnection, PgExecutor};

use crate::id::TenantId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub require_approval: bool,
    pub portal_url: String,
    /// Whether anyone may sign up (`signUp`); off, sign-up answers as if
    /// the tenant did not exist.
    pub self_sign_up: bool,
    /// Its logo, an https URL, for its account pages and emails.
    pub logo_url: Option<String>,
    /// Its accent colour, `#rrggbb` in lower case.
    pub accent_color: Option<String>,
}

const COLUMNS: &str =
    "id, name, require_approval, portal_url, self_sign_up, logo_url, accent_color";

pub async fn by_id<'e>(
    executor: impl PgExecutor<'e>,
    id: TenantId,
) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// A tenant's settings, to create it with or to change it to.
pub struct Settings<'a> {
    pub name: &'a str,
    pub portal_url: &'a str,
    pub require_approval: bool,
    pub self_sign_up: bool,
    pub logo_url: Option<&'a str>,
    pub accent_color: Option<&'a str>,
}

pub async fn insert(conn: &mut PgConnection, settings: &Settings<'_>) -> sqlx::Result<TenantRow> {
    sqlx::query_as(&format!(
        "INSERT INTO tenants (name, portal_url, require_approval, self_sign_up, logo_url,
                              accent_color)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {COLUMNS}"
    ))
    .bind(settings.name)
    .bind(settings.portal_url)
    .bind(settings.require_approval)
    .bind(settings.self_sign_up)
    .bind(settings.logo_url)
    .bind(settings.accent_color)
    .fetch_one(conn)
    .await
}

/// Locks the tenant's row until the transaction ends.
pub async fn lock(conn: &mut PgConnection, id: TenantId) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    id: TenantId,
    settings: &Settings<'_>,
) -> sqlx::Result<TenantRow> {
    sqlx::query_as(&format!(
        "UPDATE tenants SET name = $2, portal_url = $3, require_approval = $4, self_sign_up = $5,
             logo_url = $6, accent_color = $7
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(settings.name)
    .bind(settings.portal_url)
    .bind(settings.require_approval)
    .bind(settings.self_sign_up)
    .bind(settings.logo_url)
    .bind(settings.accent_color)
    .fetch_one(conn)
    .await
}
