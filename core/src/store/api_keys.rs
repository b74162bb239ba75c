//! API keys: stored by the hash of their secret, never the secret itself;
//! looked up to authenticate, listed, created and revoked.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::authz::Scope;
use crate::id::TenantId;

/// How often `last_used_at` is written: at most once a minute per key, so a
/// busy integration does not cost a write per request.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub tenant_id: TenantId,
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit_per_minute: Option<i32>,
}

impl ApiKeyRow {
    /// Its own budget of operation cost per minute, if it has one.
    pub fn rate_limit(&self) -> Option<u32> {
        self.rate_limit_per_minute
            .and_then(|n| u32::try_from(n).ok())
    }

    /// Whether `last_used_at` is recent enough to leave alone.
    pub fn use_is_recorded(&self) -> bool {
        self.last_used_at.is_some_and(|at| {
            Utc::now().signed_duration_since(at).num_seconds() < LAST_USED_RESOLUTION_SECONDS
        })
    }
}

const COLUMNS: &str = "tenant_id, id, name, scopes, prefix, secret_hash, created_at, \
     last_used_at, revoked_at, expires_at, \
     rate_limit_per_minute";

pub async fn find_live_by_hash(
    pool: &PgPool,
    tenant_id: TenantId,
    hash: &[u8],
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys
         WHERE tenant_id = $1 AND secret_hash = $2 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())"
    ))
    .bind(tenant_id)
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// Records use, unless it was recorded within the last minute. The condition
/// sits in the statement, so concurrent requests and processes agree.
pub async fn touch(pool: &PgPool, key: &ApiKeyRow) -> sqlx::Result<()> {
    if !key.use_is_recorded() {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = now()
             WHERE tenant_id = $1 AND id = $2
               AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $3))",
        )
        .bind(key.tenant_id)
        .bind(key.id)
        .bind(LAST_USED_RESOLUTION_SECONDS as f64)
        .execute(pool)
        .await?;
    }
    Ok(())
}

pub async fn by_id(pool: &PgPool, tenant_id: TenantId, id: i64) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The tenant's keys with these ids, by id.
pub async fn by_ids(
    pool: &PgPool,
    tenant_id: TenantId,
    ids: &[i64],
) -> sqlx::Result<std::collections::HashMap<i64, ApiKeyRow>> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = ANY($2)"
    ))
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

pub async fn list(pool: &PgPool, tenant_id: TenantId) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// A key to store: only the secret's hash and visible prefix are kept.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit_per_minute: Option<i32>,
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    key: &NewKey<'_>,
) -> sqlx::Result<ApiKeyRow> {
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    sqlx::query_as(&format!(
        "INSERT INTO api_keys (tenant_id, name, scopes, prefix, secret_hash, expires_at,
                               rate_limit_per_minute)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(key.name)
    .bind(scopes)
    .bind(key.prefix)
    .bind(key.secret_hash)
    .bind(key.expires_at)
    .bind(key.rate_limit_per_minute)
    .fetch_one(conn)
    .await
}

/// Revokes the key; revoking a revoked key keeps its first revocation time.
pub async fn revoke(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
         WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}
