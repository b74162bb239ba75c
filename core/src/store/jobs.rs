//! The jobs table, the outbox: every statement that writes or reads a job,
//! for the API (enqueue, notices, lists, counts, retry), the relay (due
//! jobs, hand-outs) and the worker (claims, attempts, heartbeats). Each
//! state change names the state it expects, so a stale or duplicated
//! delivery changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::{Count, users};
use crate::id::{CustomerId, JobId, TenantId, UserId};
use crate::jobs::{JobKind, JobState, Notice, Payload, current_request_id};

/// A job to queue with the change that causes it.
pub struct NewJob<'a> {
    pub tenant_id: TenantId,
    pub kind: JobKind,
    pub payload: Payload,
    pub recipient: &'a str,
    pub user_id: Option<UserId>,
    /// The customer the job concerns; when `None`, the addressed user's.
    pub customer_id: Option<CustomerId>,
    pub max_attempts: i32,
}

/// Writes the job row on `conn`, inside the caller's transaction: a
/// rolled-back change leaves no job, a committed one always has its job.
pub async fn enqueue(conn: &mut PgConnection, job: NewJob<'_>) -> sqlx::Result<JobId> {
    let ids = enqueue_all(conn, std::slice::from_ref(&job)).await?;
    Ok(ids[0])
}

/// `enqueue` for many jobs in one statement; their ids in order.
pub async fn enqueue_all(conn: &mut PgConnection, jobs: &[NewJob<'_>]) -> sqlx::Result<Vec<JobId>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<TenantId> = jobs.iter().map(|j| j.tenant_id).collect();
    let kinds: Vec<JobKind> = jobs.iter().map(|j| j.kind).collect();
    let payloads: Vec<Json<&Payload>> = jobs.iter().map(|j| Json(&j.payload)).collect();
    let recipients: Vec<&str> = jobs.iter().map(|j| j.recipient).collect();
    let users: Vec<Option<UserId>> = jobs.iter().map(|j| j.user_id).collect();
    let attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    let customers: Vec<Option<CustomerId>> = jobs.iter().map(|j| j.customer_id).collect();
    sqlx::query_scalar(
        "INSERT INTO jobs (tenant_id, kind, payload, recipient, user_id, max_attempts, request_id,
                           customer_id)
         SELECT t, k, p, r, u, m, $7,
                coalesce(c, (SELECT customer_id FROM users WHERE tenant_id = t AND id = u))
         FROM unnest($1::bigint[], $2::text[], $3::jsonb[], $4::text[], $5::bigint[], $6::int[],
                     $8::bigint[])
              WITH ORDINALITY AS j(t, k, p, r, u, m, c, n)
         ORDER BY n
         RETURNING id",
    )
    .bind(tenants)
    .bind(kinds)
    .bind(payloads)
    .bind(recipients)
    .bind(users)
    .bind(attempts)
    .bind(current_request_id())
    .bind(customers)
    .fetch_all(conn)
    .await
}

/// Who is told about something that happened at a customer.
pub struct Notification<'a> {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub notice: Notice,
    pub subject_user_id: Option<UserId>,
    pub subject_label: &'a str,
    /// The user who did it, told nothing about their own act.
    pub actor_user_id: Option<UserId>,
    /// Whether the tenant's administrators hear of it when the customer
    /// and its ancestors have no administrator (approval requests).
    pub fall_back_to_tenant_admins: bool,
    pub max_attempts: i32,
}

/// Queues one ADMIN_NOTIFICATION per active administrator of the customer
/// or of any customer above it; returns how many.
pub async fn notify_administrators(
    conn: &mut PgConnection,
    notification: Notification<'_>,
) -> sqlx::Result<u64> {
    let recipients = users::administrators_to_tell(
        &mut *conn,
        notification.tenant_id,
        notification.customer_id,
        notification.fall_back_to_tenant_admins,
    )
    .await?;
    let jobs = notice_jobs(&notification, &recipients);
    Ok(enqueue_all(conn, &jobs).await?.len() as u64)
}

/// The ADMIN_NOTIFICATION jobs of `notification` to `recipients`, but
/// none to the user who did it.
pub fn notice_jobs<'a>(
    notification: &Notification<'_>,
    recipients: &'a [users::Recipient],
) -> Vec<NewJob<'a>> {
    recipients
        .iter()
        .filter(|r| Some(r.id) != notification.actor_user_id)
        .map(|r| NewJob {
            tenant_id: notification.tenant_id,
            kind: JobKind::AdminNotification,
            payload: Payload::Notice {
                recipient_user_id: r.id,
                notice: notification.notice,
                subject_user_id: notification.subject_user_id,
                customer_id: notification.customer_id,
                subject_label: notification.subject_label.to_owned(),
            },
            recipient: &r.email,
            user_id: Some(r.id),
            customer_id: notification.customer_id,
            max_attempts: notification.max_attempts,
        })
        .collect()
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRow {
    pub tenant_id: TenantId,
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub recipient: Option<String>,
    pub request_id: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub action: Option<JobAction>,
}

crate::text_enum! {
    /// What an operator last did to a job.
    pub enum JobAction {
        Cancelled = "CANCELLED",
        Retried = "RETRIED",
    }
}

const COLUMNS: &str = "j.tenant_id, j.id, j.kind, j.state, j.attempts, j.max_attempts, \
     j.last_error, j.recipient, j.request_id, j.customer_id, j.created_at, j.updated_at, \
     j.action";

/// Emails addressed to a user, newest first; `before` is the cursor (an id).
pub async fn for_user(
    pool: &PgPool,
    tenant_id: TenantId,
    user_id: UserId,
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
    pool: &PgPool,
    tenant_id: TenantId,
    user_id: UserId,
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .fetch_one(pool)
        .await
}

pub async fn by_id(pool: &PgPool, tenant_id: TenantId, id: JobId) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs j WHERE j.tenant_id = $1 AND j.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Deletes up to `limit` DONE jobs last changed more than `retention` ago;
/// answers how many.
pub async fn prune_done(pool: &PgPool, retention: Duration, limit: i64) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "DELETE FROM jobs WHERE (tenant_id, id) IN (
             SELECT tenant_id, id FROM jobs
             WHERE state = 'DONE' AND updated_at < now() - make_interval(secs => $1)
             LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(retention.as_secs_f64())
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// Folds the counters' +1 / -1 rows (written by the ledger's triggers) into
/// one row per tenant, kind and state, in one statement; rows appended
/// meanwhile are left for next time. Several workers may fold at once.
pub async fn fold_counts(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query(
        "WITH folded AS (DELETE FROM job_counts RETURNING tenant_id, kind, state, count)
         INSERT INTO job_counts (tenant_id, kind, state, count)
         SELECT tenant_id, kind, state, sum(count) FROM folded
         GROUP BY tenant_id, kind, state HAVING sum(count) <> 0",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Jobs per kind and state, for jobQueue: from the counters the ledger's
/// triggers keep (`job_counts`), not a scan of the ledger.
pub async fn counts(
    pool: &PgPool,
    tenant_id: TenantId,
) -> sqlx::Result<Vec<(JobKind, JobState, i64)>> {
    sqlx::query_as(
        "SELECT kind, state, sum(count)::bigint FROM job_counts
         WHERE tenant_id = $1 GROUP BY kind, state",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Worker processes whose heartbeat is recent.
pub async fn active_workers(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM worker_heartbeats
         WHERE last_seen > now() - make_interval(secs => $1)",
    )
    .bind(WORKER_SILENCE.as_secs_f64())
    .fetch_one(pool)
    .await
}

/// A worker process as its heartbeat shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WorkerBeat {
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Heard from within [`WORKER_SILENCE`].
    pub active: bool,
}

/// The worker processes heard from (retention forgets them a day after
/// their last heartbeat), latest heartbeat first, at most `limit`.
pub async fn workers(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<WorkerBeat>> {
    sqlx::query_as(
        "SELECT worker_id, started_at, last_seen,
                last_seen > now() - make_interval(secs => $1) AS active
         FROM worker_heartbeats ORDER BY last_seen DESC, worker_id LIMIT $2",
    )
    .bind(WORKER_SILENCE.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Which of a tenant's jobs: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub kind: Option<JobKind>,
    pub state: Option<JobState>,
    /// The recipient's address, matched whole and without regard to case.
    pub recipient: Option<String>,
    /// The user the job is addressed to.
    pub user_id: Option<UserId>,
    /// The customer the job concerns.
    pub customer_id: Option<CustomerId>,
}

impl JobFilter {
    /// Whether only kind and state are asked, which the counters answer.
    fn counted(&self) -> bool {
        self.recipient.is_none() && self.user_id.is_none() && self.customer_id.is_none()
    }

    fn push(&self, query: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, tenant_id: TenantId) {
        query.push(" WHERE j.tenant_id = ").push_bind(tenant_id);
        if let Some(kind) = self.kind {
            query.push(" AND j.kind = ").push_bind(kind);
        }
        if let Some(state) = self.state {
            query.push(" AND j.state = ").push_bind(state);
        }
        if let Some(recipient) = &self.recipient {
            query
                .push(" AND lower(j.recipient) = lower(")
                .push_bind(recipient.clone())
                .push(")");
        }
        if let Some(user_id) = self.user_id {
            query.push(" AND j.user_id = ").push_bind(user_id);
        }
        if let Some(customer_id) = self.customer_id {
            query.push(" AND j.customer_id = ").push_bind(customer_id);
        }
    }
}

/// The tenant's jobs that `filter` names, newest first.
pub async fn list(
    pool: &PgPool,
    tenant_id: TenantId,
    filter: &JobFilter,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    let mut query = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM jobs j"));
    filter.push(&mut query, tenant_id);
    if let Some(before) = before {
        query.push(" AND j.id < ").push_bind(before);
    }
    query.push(" ORDER BY j.id DESC LIMIT ").push_bind(limit);
    query.build_query_as().fetch_all(pool).await
}

/// Past this many matches of a filter by recipient, user or customer, a
/// count is a lower bound.
pub const COUNT_UP_TO: i64 = 10_000;

/// How many of the tenant's jobs `filter` names. By kind and state alone,
/// exact, from the counters (`job_counts`), not a scan of the ledger;
/// otherwise counted from the ledger up to [`COUNT_UP_TO`].
pub async fn count(pool: &PgPool, tenant_id: TenantId, filter: &JobFilter) -> sqlx::Result<Count> {
    if filter.counted() {
        let mut query =
            sqlx::QueryBuilder::new("SELECT coalesce(sum(j.count), 0)::bigint FROM job_counts j");
        filter.push(&mut query, tenant_id);
        return Ok(Count::exact(
            query.build_query_scalar().fetch_one(pool).await?,
        ));
    }
    let mut query = sqlx::QueryBuilder::new("SELECT count(*) FROM (SELECT FROM jobs j");
    filter.push(&mut query, tenant_id);
    query
        .push(" LIMIT ")
        .push_bind(COUNT_UP_TO + 1)
        .push(") AS m");
    let value: i64 = query.build_query_scalar().fetch_one(pool).await?;
    Ok(Count {
        value: value.min(COUNT_UP_TO),
        exact: value <= COUNT_UP_TO,
    })
}

/// The states a job is retried from.
pub const RETRIED_FROM: [JobState; 2] = [JobState::Failed, JobState::Killed];

/// Puts a FAILED or KILLED job back in the queue with `extra` more
/// attempts; `None` when the job is in another state (or absent).
pub async fn retry(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: JobId,
    extra_attempts: i32,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "UPDATE jobs j SET state = 'AWAITING_DISPATCH', run_at = now(), updated_at = now(),
             max_attempts = greatest(j.max_attempts, j.attempts + $3), action = 'RETRIED'
         WHERE j.tenant_id = $1 AND j.id = $2 AND j.state IN ('FAILED', 'KILLED')
         RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(extra_attempts)
    .fetch_optional(conn)
    .await
}

/// Retries at most `limit` of the FAILED or KILLED jobs `filter` names
/// (its state, when given, is one of those), oldest first; answers which,
/// and whether more remain. Jobs an operator cancelled are left alone:
/// only `retry`, one by one, brings them back.
pub async fn retry_matching(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    filter: &JobFilter,
    extra_attempts: i32,
    limit: i64,
) -> sqlx::Result<(Vec<JobId>, bool)> {
    let mut query = sqlx::QueryBuilder::new("WITH picked AS (SELECT j.tenant_id, j.id FROM jobs j");
    filter.push(&mut query, tenant_id);
    query
        .push(
            " AND j.state IN ('FAILED', 'KILLED') AND j.action IS DISTINCT FROM 'CANCELLED'
             ORDER BY j.id LIMIT ",
        )
        .push_bind(limit + 1)
        .push(
            " FOR UPDATE SKIP LOCKED), retried AS (
             UPDATE jobs j SET state = 'AWAITING_DISPATCH', run_at = now(), updated_at = now(),
                 max_attempts = greatest(j.max_attempts, j.attempts + ",
        )
        .push_bind(extra_attempts)
        .push("), action = 'RETRIED' FROM (SELECT * FROM picked ORDER BY id LIMIT ")
        .push_bind(limit)
        .push(
            ") p WHERE j.tenant_id = p.tenant_id AND j.id = p.id RETURNING j.id)
             SELECT coalesce((SELECT array_agg(id ORDER BY id) FROM retried), '{}'),
                    (SELECT count(*) FROM picked)",
        );
    let (retried, picked): (Vec<JobId>, i64) = query.build_query_as().fetch_one(conn).await?;
    Ok((retried, picked > limit))
}

/// Cancels a job that is not running nor finished: it ends KILLED with
/// `cause` (followed by the error it had), and is never
/// sent (a worker that drew it finds it no longer PENDING). Notices to a
/// person about its own account are cancelled only when `notices_too`.
/// `None` when the job is in another state, of a kind not allowed (or
/// absent).
pub async fn cancel(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: JobId,
    cause: &str,
    notices_too: bool,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "UPDATE jobs j SET state = 'KILLED', updated_at = now(),
             last_error = left(concat_ws('; before it: ', $3, j.last_error), 500),
             action = 'CANCELLED'
         WHERE j.tenant_id = $1 AND j.id = $2
           AND j.state IN ('AWAITING_DISPATCH', 'PENDING', 'FAILED')
           AND (j.kind <> 'ACCOUNT_NOTICE' OR $4)
         RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(cause)
    .bind(notices_too)
    .fetch_optional(conn)
    .await
}

/// A kind of job paused for a tenant.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Pause {
    pub tenant_id: TenantId,
    pub kind: JobKind,
    pub paused_at: DateTime<Utc>,
}

/// Pauses a kind for a tenant; `None` when it already was.
pub async fn pause(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    kind: JobKind,
) -> sqlx::Result<Option<Pause>> {
    sqlx::query_as(
        "INSERT INTO job_kind_pauses (tenant_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING
         RETURNING tenant_id, kind, paused_at",
    )
    .bind(tenant_id)
    .bind(kind)
    .fetch_optional(conn)
    .await
}

/// Resumes a paused kind: the jobs the relay held become due at once.
/// False when the kind was not paused.
///
/// The pause row is deleted first: that waits for a relay holding jobs
/// under it (`hold_paused` locks it), so the next statement sees every job
/// held and none stays held after its pause is gone.
pub async fn resume(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    kind: JobKind,
) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM job_kind_pauses WHERE tenant_id = $1 AND kind = $2")
        .bind(tenant_id)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE jobs SET run_at = now()
         WHERE tenant_id = $1 AND kind = $2 AND state = 'AWAITING_DISPATCH'
           AND run_at = 'infinity'",
    )
    .bind(tenant_id)
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(true)
}

/// The tenant's paused kinds.
pub async fn pauses(pool: &PgPool, tenant_id: TenantId) -> sqlx::Result<Vec<Pause>> {
    sqlx::query_as("SELECT tenant_id, kind, paused_at FROM job_kind_pauses WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(pool)
        .await
}

/// Holds the due jobs of paused kinds (not running ones): AWAITING_DISPATCH,
/// due at 'infinity', until `resume` makes them due. Each pause row is
/// locked while the relay's transaction lasts, so a resume waits for it.
/// Answers the jobs held; a pause lifted meanwhile holds nothing.
pub async fn hold_paused(conn: &mut PgConnection, due: &[&Due]) -> sqlx::Result<Vec<JobId>> {
    let tenants: Vec<TenantId> = due.iter().map(|d| d.tenant_id).collect();
    let ids: Vec<JobId> = due.iter().map(|d| d.id).collect();
    sqlx::query_scalar(
        "WITH d AS (SELECT j.tenant_id, j.id, j.kind
                    FROM unnest($1::bigint[], $2::bigint[]) AS u(tenant_id, id)
                    JOIN jobs j ON j.tenant_id = u.tenant_id AND j.id = u.id
                    WHERE j.state <> 'RUNNING'),
              paused AS (SELECT p.tenant_id, p.kind FROM job_kind_pauses p
                         WHERE (p.tenant_id, p.kind) IN (SELECT tenant_id, kind FROM d)
                         FOR SHARE)
         UPDATE jobs j SET state = 'AWAITING_DISPATCH', run_at = 'infinity', updated_at = now()
         FROM d JOIN paused p ON p.tenant_id = d.tenant_id AND p.kind = d.kind
         WHERE j.tenant_id = d.tenant_id AND j.id = d.id
         RETURNING j.id",
    )
    .bind(tenants)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Jobs of one kind that ended in one minute.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Minute {
    pub kind: JobKind,
    pub minute: DateTime<Utc>,
    pub done: i64,
    pub retried: i64,
    pub killed: i64,
}

/// For each of `kinds`, every minute of the last hour, oldest first (the
/// current minute last), with how many of its jobs ended in it.
pub async fn throughput(
    pool: &PgPool,
    tenant_id: TenantId,
    kinds: &[JobKind],
) -> sqlx::Result<Vec<Minute>> {
    sqlx::query_as(
        "SELECT k.kind, m.minute, coalesce(sum(j.done), 0)::bigint AS done,
                coalesce(sum(j.retried), 0)::bigint AS retried,
                coalesce(sum(j.killed), 0)::bigint AS killed
         FROM generate_series(date_trunc('minute', now()) - interval '59 minutes',
                              date_trunc('minute', now()), interval '1 minute') AS m(minute)
         CROSS JOIN unnest($2::text[]) AS k(kind)
         LEFT JOIN job_minutes j ON j.tenant_id = $1 AND j.minute = m.minute AND j.kind = k.kind
         GROUP BY k.kind, m.minute ORDER BY m.minute",
    )
    .bind(tenant_id)
    .bind(kinds)
    .fetch_all(pool)
    .await
}

/// Forgets the per-minute counts older than two hours; answers how many rows.
pub async fn forget_old_minutes(pool: &PgPool) -> sqlx::Result<u64> {
    let forgotten =
        sqlx::query("DELETE FROM job_minutes WHERE minute < now() - interval '2 hours'")
            .execute(pool)
            .await?;
    Ok(forgotten.rows_affected())
}

/// A job claimed for one attempt.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub tenant_id: TenantId,
    pub id: JobId,
    pub kind: JobKind,
    pub payload: Json<serde_json::Value>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// One claim of one attempt: which job and attempt, by which worker
/// process, for how long before its lease runs out unrenewed.
pub struct ClaimRequest<'a> {
    pub tenant_id: TenantId,
    pub id: JobId,
    pub attempt: i32,
    pub worker_id: &'a str,
    pub lease: Duration,
}

/// Claims attempt `attempt` of a job for worker `worker_id`: PENDING with
/// one attempt fewer becomes RUNNING, leased for `lease`. Anything else
/// (done, killed, another attempt, already running) means the delivery is
/// stale: `None`; so does a kind paused for the job's tenant (the caller
/// gives the hand-out back, `undispatched`, and the relay holds it).
pub async fn claim(pool: &PgPool, request: ClaimRequest<'_>) -> sqlx::Result<Option<Claimed>> {
    sqlx::query_as(
        "UPDATE jobs SET state = 'RUNNING', attempts = $3, updated_at = now(), claimed_by = $4,
             run_at = now() + make_interval(secs => $5)
         WHERE tenant_id = $1 AND id = $2 AND state = 'PENDING' AND attempts = $3 - 1
           AND NOT EXISTS (SELECT FROM job_kind_pauses p
                           WHERE p.tenant_id = jobs.tenant_id AND p.kind = jobs.kind)
         RETURNING tenant_id, id, kind, payload, attempts, max_attempts, created_at",
    )
    .bind(request.tenant_id)
    .bind(request.id)
    .bind(request.attempt)
    .bind(request.worker_id)
    .bind(request.lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Extends a running attempt's lease, so a slow send is not taken for a
/// dead worker.
pub async fn renew(pool: &PgPool, job: &Claimed, lease: Duration) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET run_at = now() + make_interval(secs => $4)
         WHERE tenant_id = $1 AND id = $2 AND state = 'RUNNING' AND attempts = $3",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(job.attempts)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// How an attempt ended, as the ledger keeps it.
pub struct AttemptEnd<'a> {
    /// DONE, FAILED (retried after `retry_in`) or KILLED.
    pub state: JobState,
    pub error: Option<&'a str>,
    /// Where the email went, when it was sent.
    pub recipient: Option<&'a str>,
    pub retry_in: Duration,
}

/// The longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 500;

/// Records the end of a running attempt. A job sent after a failure (an
/// attempt that failed, or an unreachable server) keeps that cause, saying
/// so, for whoever asks why it took longer.
pub async fn finish(pool: &PgPool, job: &Claimed, end: AttemptEnd<'_>) -> sqlx::Result<Recorded> {
    let error = end
        .error
        .map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
    let finished = sqlx::query(
        "UPDATE jobs SET state = $4,
             last_error = CASE
                 WHEN $5::text IS NULL AND $4 = 'DONE' AND last_error IS NOT NULL
                 THEN left(format('sent on attempt %s; before it: %s', attempts, last_error), 500)
                 ELSE $5 END,
             recipient = coalesce($6, recipient),
             run_at = now() + make_interval(secs => $7), updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'RUNNING' AND attempts = $3",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(job.attempts)
    .bind(end.state)
    .bind(error)
    .bind(end.recipient)
    .bind(end.retry_in.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(Recorded::of(finished.rows_affected()))
}

/// Whether an attempt's end was recorded, or the attempt was no longer
/// running (its worker was taken for dead and the job handed out again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Yes,
    TakenOver,
}

impl Recorded {
    fn of(rows: u64) -> Self {
        if rows > 0 { Self::Yes } else { Self::TakenOver }
    }
}

/// Gives a running attempt back, uncounted, for a mail server that could
/// not be reached: the job waits for the relay again, its cause kept.
pub async fn give_back(pool: &PgPool, job: &Claimed, cause: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'AWAITING_DISPATCH', attempts = attempts - 1,
             last_error = left($4, 500), run_at = now(), updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'RUNNING' AND attempts = $3",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(job.attempts)
    .bind(cause)
    .execute(pool)
    .await?;
    Ok(())
}

/// A job due for the relay.
#[derive(Debug, sqlx::FromRow)]
pub struct Due {
    pub tenant_id: TenantId,
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub dispatches: i32,
    /// Whether its kind was paused for its tenant as the relay looked.
    pub paused: bool,
}

/// Locks up to `limit` due jobs that no other relay holds.
pub async fn lock_due(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "SELECT tenant_id, id, kind, state, attempts, max_attempts, dispatches,
                EXISTS (SELECT FROM job_kind_pauses p
                        WHERE p.tenant_id = jobs.tenant_id AND p.kind = jobs.kind) AS paused
         FROM jobs
         WHERE state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING', 'FAILED') AND run_at <= now()
         ORDER BY run_at LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One hand-out of a job to Redis: which attempt, and which hand-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandOut {
    pub tenant_id: TenantId,
    pub job_id: JobId,
    pub attempt: i32,
    pub dispatch: i32,
}

/// A job handed to Redis, with the note that replaces its last error (why
/// it is handed out again), if any.
pub struct Dispatch<'a> {
    pub hand_out: HandOut,
    pub note: Option<&'a str>,
}

/// Marks jobs handed to Redis, in one statement: PENDING until `lease` has
/// passed without a worker claiming them.
pub async fn dispatched(
    conn: &mut PgConnection,
    dispatches: &[Dispatch<'_>],
    lease: Duration,
) -> sqlx::Result<()> {
    if dispatches.is_empty() {
        return Ok(());
    }
    let tenants: Vec<TenantId> = dispatches.iter().map(|d| d.hand_out.tenant_id).collect();
    let ids: Vec<JobId> = dispatches.iter().map(|d| d.hand_out.job_id).collect();
    let attempts: Vec<i32> = dispatches.iter().map(|d| d.hand_out.attempt).collect();
    let numbers: Vec<i32> = dispatches.iter().map(|d| d.hand_out.dispatch).collect();
    let notes: Vec<Option<&str>> = dispatches.iter().map(|d| d.note).collect();
    sqlx::query(
        "UPDATE jobs j SET state = 'PENDING', attempts = d.attempt - 1, dispatches = d.dispatch,
             claimed_by = NULL, updated_at = now(), last_error = coalesce(d.note, j.last_error),
             run_at = now() + make_interval(secs => $6)
         FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[])
              AS d(tenant_id, id, attempt, dispatch, note)
         WHERE j.tenant_id = d.tenant_id AND j.id = d.id",
    )
    .bind(tenants)
    .bind(ids)
    .bind(attempts)
    .bind(numbers)
    .bind(notes)
    .bind(lease.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts hand-outs whose push failed back to AWAITING_DISPATCH, unless a
/// worker got to them after all; one statement.
pub async fn undispatched(pool: &PgPool, hand_outs: &[HandOut]) -> sqlx::Result<()> {
    let tenants: Vec<TenantId> = hand_outs.iter().map(|h| h.tenant_id).collect();
    let ids: Vec<JobId> = hand_outs.iter().map(|h| h.job_id).collect();
    let numbers: Vec<i32> = hand_outs.iter().map(|h| h.dispatch).collect();
    sqlx::query(
        "UPDATE jobs j SET state = 'AWAITING_DISPATCH', run_at = now(), updated_at = now()
         FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS h(tenant_id, id, dispatch)
         WHERE j.tenant_id = h.tenant_id AND j.id = h.id
           AND j.state = 'PENDING' AND j.dispatches = h.dispatch",
    )
    .bind(tenants)
    .bind(ids)
    .bind(numbers)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes every PENDING job due now, for a Redis that lost the tasks handed
/// to it; answers how many. When a task survived after all, the job's
/// attempt is claimed once: a claim succeeds only for a PENDING job at
/// that attempt.
pub async fn pending_due_now(pool: &PgPool) -> sqlx::Result<u64> {
    let made =
        sqlx::query("UPDATE jobs SET run_at = now() WHERE state = 'PENDING' AND run_at > now()")
            .execute(pool)
            .await?;
    Ok(made.rows_affected())
}

/// Makes due now every running job whose worker has gone silent (no
/// heartbeat for [`WORKER_SILENCE`]: killed, or cut off), so the relay
/// hands it out again within seconds rather than when its lease runs out;
/// answers how many. Only a judge that has itself beaten without a
/// silence for as long does so (see `worker_heartbeats.beating_since`).
/// Jobs claimed by no recorded worker wait for their lease.
pub async fn silent_workers_jobs_due_now(pool: &PgPool, judge: &str) -> sqlx::Result<u64> {
    let made = sqlx::query(
        "UPDATE jobs j SET run_at = now()
         WHERE j.state = 'RUNNING' AND j.run_at > now() AND j.claimed_by IS NOT NULL
           AND NOT EXISTS (SELECT FROM worker_heartbeats h
                           WHERE h.worker_id = j.claimed_by
                             AND h.last_seen > now() - make_interval(secs => $1))
           AND EXISTS (SELECT FROM worker_heartbeats me
                       WHERE me.worker_id = $2
                         AND me.beating_since <= now() - make_interval(secs => $1)
                         AND me.last_seen > now() - make_interval(secs => $3))",
    )
    .bind(WORKER_SILENCE.as_secs_f64())
    .bind(judge)
    .bind((HEARTBEAT_EVERY * 2).as_secs_f64())
    .execute(pool)
    .await?;
    Ok(made.rows_affected())
}

/// A job whose worker vanished after its last allowed attempt.
pub async fn kill(conn: &mut PgConnection, job: &Due, cause: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'KILLED', last_error = $3, updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(cause)
    .execute(conn)
    .await?;
    Ok(())
}

/// How often a worker process records that it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A worker silent for this long is taken for dead: it is no longer
/// counted active, and its running jobs are handed out again. A worker
/// that has not beaten for half of it sends nothing new (it may be about
/// to be taken for dead).
pub const WORKER_SILENCE: Duration = Duration::from_secs(10);

/// Records that worker `worker_id` is alive.
pub async fn beat(pool: &PgPool, worker_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO worker_heartbeats AS h (worker_id) VALUES ($1)
         ON CONFLICT (worker_id) DO UPDATE SET last_seen = now(),
             beating_since = CASE WHEN h.last_seen < now() - make_interval(secs => $2)
                                  THEN now() ELSE h.beating_since END",
    )
    .bind(worker_id)
    .bind(WORKER_SILENCE.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the heartbeats of workers silent for a day (killed, never to
/// return); answers how many.
pub async fn forget_departed_workers(pool: &PgPool) -> sqlx::Result<u64> {
    let forgotten =
        sqlx::query("DELETE FROM worker_heartbeats WHERE last_seen < now() - interval '1 day'")
            .execute(pool)
            .await?;
    Ok(forgotten.rows_affected())
}

/// A worker that stops takes its heartbeat with it.
pub async fn forget_worker(pool: &PgPool, worker_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM worker_heartbeats WHERE worker_id = $1")
        .bind(worker_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// How many jobs wait or run, per unfinished state, across tenants.
pub async fn queue_depth(pool: &PgPool) -> sqlx::Result<Vec<(JobState, i64)>> {
    sqlx::query_as(
        "SELECT state, count(*) FROM jobs
         WHERE state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING', 'FAILED') GROUP BY state",
    )
    .fetch_all(pool)
    .await
}
