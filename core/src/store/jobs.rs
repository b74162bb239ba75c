//! The jobs ledger as the API writes and reads it.

use sqlx::PgConnection;

use crate::jobs::Notice;

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
         INSERT INTO jobs (tenant_id, kind, payload, recipient, user_id, max_attempts, request_id)
         SELECT $1, 'ADMIN_NOTIFICATION',
                jsonb_build_object('type', 'notice', 'recipientUserId', r.id, 'notice', $3::text,
                                   'subjectUserId', $4::bigint, 'customerId', $2::bigint,
                                   'subjectLabel', $5::text),
                r.email, r.id, $8, $9
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
    .bind(crate::jobs::current_request_id())
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
    pub request_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "j.tenant_id, j.id, j.kind, j.state, j.attempts, j.max_attempts, \
     j.last_error, j.recipient, j.request_id, j.created_at, j.updated_at";

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

/// Jobs per kind and state, for jobQueue: from the counters the ledger's
/// triggers keep (`job_counts`), not a scan of the ledger.
pub async fn counts(
    pool: &sqlx::PgPool,
    tenant_id: i64,
) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT kind, state, sum(count)::bigint FROM job_counts
         WHERE tenant_id = $1 GROUP BY kind, state",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Worker processes whose heartbeat is recent.
pub async fn active_workers(pool: &sqlx::PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM worker_heartbeats WHERE last_seen > now() - interval '30 seconds'",
    )
    .fetch_one(pool)
    .await
}

fn push_filter(
    query: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>,
    tenant_id: i64,
    kind: Option<&'static str>,
    state: Option<&'static str>,
) {
    query.push(" WHERE j.tenant_id = ").push_bind(tenant_id);
    if let Some(kind) = kind {
        query.push(" AND j.kind = ").push_bind(kind);
    }
    if let Some(state) = state {
        query.push(" AND j.state = ").push_bind(state);
    }
}

/// The tenant's jobs, newest first, by kind and state.
pub async fn list(
    pool: &sqlx::PgPool,
    tenant_id: i64,
    kind: Option<&'static str>,
    state: Option<&'static str>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    let mut query = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM jobs j"));
    push_filter(&mut query, tenant_id, kind, state);
    if let Some(before) = before {
        query.push(" AND j.id < ").push_bind(before);
    }
    query.push(" ORDER BY j.id DESC LIMIT ").push_bind(limit);
    query.build_query_as().fetch_all(pool).await
}

/// How many of the tenant's jobs are of `kind` and in `state`, from the
/// counters (`job_counts`), not a scan of the ledger.
pub async fn count(
    pool: &sqlx::PgPool,
    tenant_id: i64,
    kind: Option<&'static str>,
    state: Option<&'static str>,
) -> sqlx::Result<i64> {
    let mut query =
        sqlx::QueryBuilder::new("SELECT coalesce(sum(j.count), 0)::bigint FROM job_counts j");
    push_filter(&mut query, tenant_id, kind, state);
    query.build_query_scalar().fetch_one(pool).await
}

/// Puts a FAILED or KILLED job back in the queue with `extra` more
/// attempts; `None` when the job is in another state (or absent).
pub async fn retry(
    pool: &sqlx::PgPool,
    tenant_id: i64,
    id: i64,
    extra_attempts: i32,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "UPDATE jobs j SET state = 'AWAITING_DISPATCH', run_at = now(), updated_at = now(),
             max_attempts = greatest(j.max_attempts, j.attempts + $3)
         WHERE j.tenant_id = $1 AND j.id = $2 AND j.state IN ('FAILED', 'KILLED')
         RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(extra_attempts)
    .fetch_optional(pool)
    .await
}
