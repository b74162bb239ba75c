//! The jobs ledger as the API writes and reads it.

use sqlx::PgConnection;

use canopy_core::jobs::Notice;

/// Who is told about something that happened at a customer.
pub struct Notification<'a> {
    pub tenant_id: i64,
    pub customer_id: Option<i64>,
    pub notice: Notice,
    pub subject_user_id: Option<i64>,
    pub subject_label: &'a str,
    /// The user who did it, told nothing about their own act.
    pub actor_user_id: Option<i64>,
    /// Whether the tenant's administrators hear of it when the customer
    /// and its ancestors have no administrator (approval requests).
    pub fall_back_to_tenant_admins: bool,
    pub max_attempts: i32,
}

/// Queues one ADMIN_NOTIFICATION per active administrator of the customer
/// or of any customer above it, in one statement; returns how many.
pub async fn notify_administrators(
    conn: &mut PgConnection,
    notification: Notification<'_>,
) -> sqlx::Result<u64> {
    let notice = serde_json::to_value(notification.notice)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let result = sqlx::query(
        "WITH administrators AS (
             SELECT DISTINCT u.id, u.email FROM customers target
             JOIN customers c ON c.tenant_id = target.tenant_id AND c.path @> target.path
             JOIN customer_administrators a ON a.tenant_id = c.tenant_id AND a.customer_id = c.id
             JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
             WHERE target.tenant_id = $1 AND target.id = $2 AND u.status = 'ACTIVE'
         ),
         recipients AS (
             SELECT id, email FROM administrators
             UNION ALL
             SELECT u.id, u.email FROM users u
             WHERE $7 AND u.tenant_id = $1 AND u.role = 'TENANT_ADMIN' AND u.status = 'ACTIVE'
               AND NOT EXISTS (SELECT 1 FROM administrators)
         )
         INSERT INTO jobs (tenant_id, kind, payload, recipient, user_id, max_attempts)
         SELECT $1, 'ADMIN_NOTIFICATION',
                jsonb_build_object('type', 'notice', 'recipientUserId', r.id, 'notice', $3::text,
                                   'subjectUserId', $4::bigint, 'customerId', $2::bigint,
                                   'subjectLabel', $5::text),
                r.email, r.id, $8
         FROM recipients r
         WHERE r.id IS DISTINCT FROM $6",
    )
    .bind(notification.tenant_id)
    .bind(notification.customer_id)
    .bind(notice)
    .bind(notification.subject_user_id)
    .bind(notification.subject_label)
    .bind(notification.actor_user_id)
    .bind(notification.fall_back_to_tenant_admins)
    .bind(notification.max_attempts)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRow {
    pub tenant_id: i64,
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub recipient: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "j.tenant_id, j.id, j.kind, j.state, j.attempts, j.max_attempts, \
     j.last_error, j.recipient, j.created_at, j.updated_at";

/// Emails addressed to a user, newest first; `before` is the cursor (an id).
pub async fn for_user(
    pool: &sqlx::PgPool,
    tenant_id: i64,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs j
         WHERE j.tenant_id = $1 AND j.user_id = $2 AND j.id < $3
         ORDER BY j.id DESC LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn count_for_user(
    pool: &sqlx::PgPool,
    tenant_id: i64,
    user_id: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .fetch_one(pool)
        .await
}

pub async fn by_id(pool: &sqlx::PgPool, tenant_id: i64, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs j WHERE j.tenant_id = $1 AND j.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}
