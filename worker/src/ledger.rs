//! How an attempt ends, as the worker decides it: the outcome of a send,
//! the backoff before the next attempt, and the metrics of each end. The
//! statements themselves live with the jobs, in `canopy_core::store::jobs`.

use std::time::Duration;

use canopy_core::jobs::JobState;
use canopy_core::store::jobs::{self, AttemptEnd, ClaimRequest, Claimed, HandOut, Recorded};
use rand::Rng;
use sqlx::PgPool;

use crate::queue::Delivery;

impl From<&Delivery> for HandOut {
    fn from(delivery: &Delivery) -> Self {
        HandOut {
            tenant_id: delivery.tenant_id,
            job_id: delivery.job_id,
            attempt: delivery.attempt,
            dispatch: delivery.dispatch,
        }
    }
}

/// Claims the attempt a delivery names for worker `worker_id`; `None`
/// when the delivery is stale.
pub async fn claim(
    pool: &PgPool,
    delivery: &Delivery,
    worker_id: &str,
    lease: Duration,
) -> sqlx::Result<Option<Claimed>> {
    let request = ClaimRequest {
        tenant_id: delivery.tenant_id,
        id: delivery.job_id,
        attempt: delivery.attempt,
        worker_id,
        lease,
    };
    jobs::claim(pool, request).await
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        recipient: String,
    },
    /// Nothing to send any more (user deleted, already active, …).
    Moot(String),
    /// The mail server could not be reached: tried again as soon as it
    /// answers, without counting the attempt.
    Unreachable(String),
    /// Worth trying again later (4xx, a timeout in the conversation).
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
/// attempts are used up, then it is KILLED; an unreachable server gives the
/// attempt back. Answers the state recorded, or `None` when the attempt had
/// been taken over (this worker was silent too long and the job was handed
/// out again).
pub async fn finish(
    pool: &PgPool,
    job: &Claimed,
    outcome: &Outcome,
) -> sqlx::Result<Option<JobState>> {
    if let Outcome::Unreachable(cause) = outcome {
        jobs::give_back(pool, job, cause).await?;
        metrics::counter!("canopy_jobs_given_back_total", "kind" => job.kind.as_str()).increment(1);
        return Ok(Some(JobState::AwaitingDispatch));
    }
    let (state, error, recipient, retry_in) = match outcome {
        Outcome::Unreachable(_) => unreachable!("given back above"),
        Outcome::Sent { recipient } => (JobState::Done, None, Some(recipient.as_str()), None),
        Outcome::Moot(reason) => (
            JobState::Done,
            Some(format!("not sent: {reason}")),
            None,
            None,
        ),
        Outcome::Transient(cause) if job.attempts < job.max_attempts => (
            JobState::Failed,
            Some(cause.clone()),
            None,
            Some(backoff(job.attempts)),
        ),
        Outcome::Transient(cause) => (
            JobState::Killed,
            Some(format!("{cause} (after {} attempts)", job.attempts)),
            None,
            None,
        ),
        Outcome::Permanent(cause) => (JobState::Killed, Some(cause.clone()), None, None),
    };
    let recorded = jobs::finish(
        pool,
        job,
        AttemptEnd {
            state,
            error: error.as_deref(),
            recipient,
            retry_in: retry_in.unwrap_or_default(),
        },
    )
    .await?;
    if recorded == Recorded::TakenOver {
        return Ok(None);
    }
    let kind = job.kind.as_str();
    match (state, outcome) {
        (JobState::Done, Outcome::Sent { .. }) => {
            let since_commit = (chrono::Utc::now() - job.created_at)
                .to_std()
                .unwrap_or_default();
            metrics::histogram!("canopy_job_delivery_seconds", "kind" => kind)
                .record(since_commit.as_secs_f64());
            metrics::counter!("canopy_jobs_succeeded_total", "kind" => kind).increment(1);
        }
        (JobState::Done, _) => {
            metrics::counter!("canopy_jobs_succeeded_total", "kind" => kind).increment(1)
        }
        (JobState::Failed, _) => {
            metrics::counter!("canopy_jobs_retried_total", "kind" => kind).increment(1)
        }
        _ => metrics::counter!("canopy_jobs_killed_total", "kind" => kind).increment(1),
    }
    Ok(Some(state))
}

/// How much longer than a running attempt's lease a handed-out job may wait
/// in Redis before it is handed out again: a backlog is not a loss.
pub const PENDING_LEASE_FACTOR: u32 = 5;
