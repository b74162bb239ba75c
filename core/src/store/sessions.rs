//! Sessions of signed-in users: opened, found by the hash of their secret,
//! listed per user, ended, and purged once expired.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::users::{COLUMNS as USER_COLUMNS, UserRow};
use crate::id::{TenantId, UserId};

/// A live session and the user it signs in.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionUser {
    pub session_id: i64,
    #[sqlx(flatten)]
    pub user: UserRow,
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO sessions (tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)
         RETURNING id",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(token_hash)
    .bind(expires_at)
    .fetch_one(conn)
    .await
}

/// The session with this hash, if it has not expired and its user may
/// still sign in: a suspended user's sessions stop working at once.
pub async fn find_live(
    pool: &PgPool,
    tenant_id: TenantId,
    token_hash: &[u8],
) -> sqlx::Result<Option<SessionUser>> {
    sqlx::query_as(&format!(
        "SELECT s.id AS session_id, {USER_COLUMNS}
         FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
         WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.expires_at > now()
           AND u.status = 'ACTIVE'"
    ))
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}

pub async fn delete(conn: &mut PgConnection, tenant_id: TenantId, id: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A live session, as its user and their managers see it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The live sessions of each user, newest first; at most
/// `MAX_LISTED_PER_USER` per user.
pub async fn live_for_users(
    pool: &PgPool,
    tenant_id: TenantId,
    user_ids: &[UserId],
) -> sqlx::Result<std::collections::HashMap<UserId, Vec<SessionRow>>> {
    let rows: Vec<SessionRow> = sqlx::query_as(
        "SELECT id, user_id, created_at, expires_at FROM (
             SELECT s.*, row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS n
             FROM sessions s
             WHERE tenant_id = $1 AND user_id = ANY($2) AND expires_at > now()) s
         WHERE n <= $3 ORDER BY id DESC",
    )
    .bind(tenant_id)
    .bind(user_ids)
    .bind(MAX_LISTED_PER_USER)
    .fetch_all(pool)
    .await?;
    let mut map: std::collections::HashMap<UserId, Vec<SessionRow>> = Default::default();
    for row in rows {
        map.entry(row.user_id).or_default().push(row);
    }
    Ok(map)
}

/// How many sessions `User.sessions` lists at most.
pub const MAX_LISTED_PER_USER: i64 = 100;

/// Ends every session of a user but `keep`; returns how many ended.
pub async fn delete_for_user(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    keep: Option<i64>,
) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND id IS DISTINCT FROM $3",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Deletes up to `limit` expired sessions; answers how many.
pub async fn purge_expired(pool: &PgPool, limit: i64) -> sqlx::Result<u64> {
    let deleted: i64 = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM sessions WHERE (tenant_id, id) IN (
     SELECT tenant_id, id FROM sessions WHERE expires_at < now()
     LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING 1)
 SELECT count(*) FROM gone",
    )
    .bind(limit)
    .fetch_one(pool)
    .await?;
    Ok(deleted as u64)
}
