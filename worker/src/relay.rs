//! The relay: moves committed job rows to Redis. Rows are locked with
//! FOR UPDATE SKIP LOCKED, so any number of relays share the work without
//! handing out a row twice; each hand-out has a task id of its own (job id
//! and hand-out number).
//!
//! The relay also reconciles: a PENDING job nobody claimed within its lease
//! (Redis lost it) is handed out again, and a RUNNING job whose lease ran
//! out (its worker died) counts as a failed attempt and is retried.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::RedisStorage;
use canopy_core::config::Config;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::ledger::{self, Due};
use crate::queue::{self, Delivery};

/// Rows handed out per transaction.
const BATCH: i64 = 100;
/// How often the relay looks for due rows when idle.
const IDLE_POLL: Duration = Duration::from_millis(200);

pub async fn run(pool: PgPool, config: Arc<Config>, shutdown: CancellationToken) {
    let mut storage: Option<RedisStorage<serde_json::Value>> = None;
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        if storage.is_none() {
            match queue::connect(&config.redis_url).await {
                Ok(conn) => storage = Some(queue::storage(conn, &config)),
                Err(error) => tracing::warn!(%error, "relay cannot reach Redis"),
            }
        }
        let mut busy = false;
        if let Some(storage) = storage.as_mut() {
            match dispatch_due(&pool, storage, &config).await {
                Ok(handed_out) => {
                    failures = 0;
                    busy = handed_out as i64 == BATCH;
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(error = %format!("{error:#}"), "relay could not hand out jobs; retrying");
                }
            }
        }
        if busy {
            continue;
        }
        let pause = if failures == 0 {
            IDLE_POLL
        } else {
            Duration::from_millis(200 * u64::from(failures.min(25)))
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Hands out one batch of due jobs; returns how many.
///
/// Rows are marked PENDING under a new hand-out number and committed
/// first, then pushed: a task in Redis always finds its row PENDING. A push
/// that fails puts its row (and the rest of the batch) back to
/// AWAITING_DISPATCH; the hand-out number stays spent, so the next push is
/// a task id Redis has never seen.
pub async fn dispatch_due(
    pool: &PgPool,
    storage: &mut RedisStorage<serde_json::Value>,
    config: &Config,
) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let due = ledger::lock_due(&mut tx, BATCH).await?;
    let mut handed_out = Vec::with_capacity(due.len());
    for job in &due {
        let note = match job.state.as_str() {
            "RUNNING" if job.attempts >= job.max_attempts => {
                ledger::kill(&mut tx, job, "the worker stopped during the last attempt").await?;
                metrics::counter!("canopy_jobs_killed_total", "kind" => job.kind.clone())
                    .increment(1);
                continue;
            }
            "RUNNING" => Some("the worker stopped during the attempt; retrying"),
            _ => None,
        };
        let delivery = next_delivery(job);
        ledger::dispatched(&mut tx, &delivery, config.job_lease, note).await?;
        handed_out.push((delivery, job.kind.clone()));
    }
    tx.commit().await?;
    for (index, (delivery, kind)) in handed_out.iter().enumerate() {
        if let Err(error) = push(storage, delivery).await {
            let unsent: Vec<Delivery> = handed_out[index..].iter().map(|(d, _)| *d).collect();
            ledger::undispatched(pool, &unsent).await?;
            return Err(error);
        }
        metrics::counter!("canopy_jobs_enqueued_total", "kind" => kind.clone()).increment(1);
        tracing::debug!(
            job_id = delivery.job_id,
            attempt = delivery.attempt,
            "job handed to the queue"
        );
    }
    Ok(due.len())
}

/// The next hand-out of a due job. A PENDING job (never claimed) keeps its
/// attempt; any other goes on to the next attempt.
fn next_delivery(job: &Due) -> Delivery {
    Delivery {
        tenant_id: job.tenant_id,
        job_id: job.id,
        attempt: job.attempts + 1,
        dispatch: job.dispatches + 1,
    }
}

async fn push(storage: &mut RedisStorage<serde_json::Value>, delivery: &Delivery) -> Result<()> {
    let task = TaskBuilder::new(serde_json::to_value(delivery)?)
        .task_id(TaskId::from_string(delivery.task_id()))
        .build();
    storage
        .push_task(task)
        .await
        .map_err(|e| anyhow::anyhow!("cannot push to Redis: {e}"))
}
