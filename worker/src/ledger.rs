//! The jobs table as the relay and the worker change it. Every statement
//! names the state it expects, so a stale or duplicated delivery changes
//! nothing.

use std::time::Duration;

use canopy_core::jobs::JobKind;
use rand::Rng;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::queue::Delivery;

/// A job claimed for one attempt.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub tenant_id: i64,
    pub id: i64,
    pub kind: String,
    pub payload: Json<serde_json::Value>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Claimed {
    pub fn kind(&self) -> Option<JobKind> {
        JobKind::parse(&self.kind)
    }
}

/// Claims the attempt a delivery names: PENDING with one attempt fewer
/// becomes RUNNING. Anything else (done, killed, another attempt, already
/// running) means the delivery is stale: `None`.
pub async fn claim(
    pool: &PgPool,
    delivery: &Delivery,
    lease: Duration,
) -> sqlx::Result<Option<Claimed>> {
    sqlx::query_as(
        "UPDATE jobs SET state = 'RUNNING', attempts = $3, updated_at = now(),
             run_at = now() + make_interval(secs => $4)
         WHERE tenant_id = $1 AND id = $2 AND state = 'PENDING' AND attempts = $3 - 1
         RETURNING tenant_id, id, kind, payload, attempts, max_attempts, created_at",
    )
    .bind(delivery.tenant_id)
    .bind(delivery.job_id)
    .bind(delivery.attempt)
    .bind(lease.as_secs_f64())
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

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        recipient: String,
    },
    /// Nothing to send any more (user deleted, already active, …).
    Moot(String),
    /// Worth trying again later (4xx, connection refused, timeout).
    Transient(String),
    /// Never going to work (5xx, template error).
    Permanent(String),
}

/// The wait before attempt `attempts + 1`: exponential from 2 s, at most
/// 10 minutes, with ±25 % jitter so failed jobs do not retry in lockstep.
pub fn backoff(attempts: i32) -> Duration {
    let base = 2f64 * 2f64.powi(attempts.clamp(1, 20) - 1);
    let capped = base.min(600.0);
    let jitter = rand::rng().random_range(0.75..1.25);
    Duration::from_secs_f64(capped * jitter)
}

/// Records the end of an attempt. Transient failures retry until the job's
/// attempts are used up, then it is KILLED.
pub async fn finish(pool: &PgPool, job: &Claimed, outcome: &Outcome) -> sqlx::Result<()> {
    let (state, error, recipient, retry_in) = match outcome {
        Outcome::Sent { recipient } => ("DONE", None, Some(recipient.as_str()), None),
        Outcome::Moot(reason) => ("DONE", Some(format!("not sent: {reason}")), None, None),
        Outcome::Transient(cause) if job.attempts < job.max_attempts => (
            "FAILED",
            Some(cause.clone()),
            None,
            Some(backoff(job.attempts)),
        ),
        Outcome::Transient(cause) => (
            "KILLED",
            Some(format!("{cause} (after {} attempts)", job.attempts)),
            None,
            None,
        ),
        Outcome::Permanent(cause) => ("KILLED", Some(cause.clone()), None, None),
    };
    sqlx::query(
        "UPDATE jobs SET state = $4, last_error = $5, recipient = coalesce($6, recipient),
             run_at = now() + make_interval(secs => $7), updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'RUNNING' AND attempts = $3",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(job.attempts)
    .bind(state)
    .bind(error.map(|e| truncate(&e, 500)))
    .bind(recipient)
    .bind(retry_in.unwrap_or_default().as_secs_f64())
    .execute(pool)
    .await?;
    let kind = job.kind.clone();
    match (state, outcome) {
        ("DONE", Outcome::Sent { .. }) => {
            let since_commit = (chrono::Utc::now() - job.created_at)
                .to_std()
                .unwrap_or_default();
            metrics::histogram!("canopy_job_delivery_seconds", "kind" => kind.clone())
                .record(since_commit.as_secs_f64());
            metrics::counter!("canopy_jobs_succeeded_total", "kind" => kind).increment(1);
        }
        ("DONE", _) => {
            metrics::counter!("canopy_jobs_succeeded_total", "kind" => kind).increment(1)
        }
        ("FAILED", _) => {
            metrics::counter!("canopy_jobs_retried_total", "kind" => kind).increment(1)
        }
        _ => metrics::counter!("canopy_jobs_killed_total", "kind" => kind).increment(1),
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A job due for the relay.
#[derive(Debug, sqlx::FromRow)]
pub struct Due {
    pub tenant_id: i64,
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub dispatches: i32,
}

/// Locks up to `limit` due jobs that no other relay holds.
pub async fn lock_due(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "SELECT tenant_id, id, kind, state, attempts, max_attempts, dispatches FROM jobs
         WHERE state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING', 'FAILED') AND run_at <= now()
         ORDER BY run_at LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How much longer than a running attempt's lease a handed-out job may wait
/// in Redis before it is handed out again: a backlog is not a loss.
pub const PENDING_LEASE_FACTOR: u32 = 5;

/// Marks a job handed to Redis (as `delivery`), leased until it must be
/// seen running: `PENDING_LEASE_FACTOR` running leases.
pub async fn dispatched(
    conn: &mut PgConnection,
    delivery: &Delivery,
    lease: Duration,
    note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'PENDING', attempts = $3 - 1, dispatches = $4, updated_at = now(),
             last_error = coalesce($6, last_error),
             run_at = now() + make_interval(secs => $5)
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(delivery.tenant_id)
    .bind(delivery.job_id)
    .bind(delivery.attempt)
    .bind(delivery.dispatch)
    .bind((lease * PENDING_LEASE_FACTOR).as_secs_f64())
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts hand-outs whose push failed back to AWAITING_DISPATCH, unless a
/// worker got to them after all.
pub async fn undispatched(pool: &PgPool, deliveries: &[Delivery]) -> sqlx::Result<()> {
    for delivery in deliveries {
        sqlx::query(
            "UPDATE jobs SET state = 'AWAITING_DISPATCH', run_at = now(), updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND state = 'PENDING' AND dispatches = $3",
        )
        .bind(delivery.tenant_id)
        .bind(delivery.job_id)
        .bind(delivery.dispatch)
        .execute(pool)
        .await?;
    }
    Ok(())
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
