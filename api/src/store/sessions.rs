use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::users::{COLUMNS as USER_COLUMNS, UserRow};

/// A live session and the user it signs in.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionUser {
    pub session_id: i64,
    #[sqlx(flatten)]
    pub user: UserRow,
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: i64,
    user_id: i64,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(token_hash)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The session with this hash, if it has not expired and its user may
/// still sign in: a suspended user's sessions stop working at once.
pub async fn find_live(
    pool: &PgPool,
    tenant_id: i64,
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

pub async fn delete(pool: &PgPool, tenant_id: i64, id: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends every session of a user.
pub async fn delete_for_user(
    conn: &mut PgConnection,
    tenant_id: i64,
    user_id: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
