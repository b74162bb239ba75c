//! The relay: moves committed job rows to Redis. Rows are locked with
//! FOR UPDATE SKIP LOCKED, so any number of relays share the work without
//! handing out a row twice; each hand-out has a task id of its own (job id
//! and hand-out number).
//!
//! The relay also reconciles: a PENDING job nobody claimed within its lease
//! (Redis lost it) is handed out again, and a RUNNING job whose lease ran
//! out (its worker died) counts as a failed attempt and is retried. Once a
//! second it looks for faults it need not wait a lease for: a Redis that
//! lost its data, and a worker whose heartbeat went silent.
//!
//! It wakes when a transaction that wrote jobs commits (LISTEN on
//! `canopy_jobs`, sent by a trigger), and also looks once a second, for
//! retries that fall due and for a wake-up missed while reconnecting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::RedisStorage;
use canopy_core::config::Config;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::ledger::PENDING_LEASE_FACTOR;
use crate::queue::{self, Delivery};
use canopy_core::jobs::JobState;
use canopy_core::store::jobs::{self, Dispatch, Due, HandOut};

/// Rows handed out per transaction.
const BATCH: i64 = 100;
/// How often the relay looks for due rows when nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often the relay looks for lost tasks and silent workers.
const RECOVERY_EVERY: Duration = Duration::from_secs(1);
/// The channel the jobs table's trigger notifies on.
const CHANNEL: &str = "canopy_jobs";

/// Runs the relay of worker process `worker_id` (the judge of which other
/// workers went silent) until `shutdown`.
pub async fn run(
    pool: PgPool,
    config: Arc<Config>,
    worker_id: String,
    shutdown: CancellationToken,
) {
    let mut storage: Option<RedisStorage<serde_json::Value>> = None;
    let mut listener: Option<PgListener> = None;
    let mut failures = 0u32;
    let mut recovered_at: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        if storage.is_none() {
            match queue::connect(&config.redis_url).await {
                Ok(conn) => storage = Some(queue::storage(conn, &config)),
                Err(error) => tracing::warn!(%error, "relay cannot reach Redis"),
            }
        }
        let mut busy = false;
        if let Some(storage) = storage.as_mut() {
            if recovered_at.is_none_or(|at| at.elapsed() >= RECOVERY_EVERY) {
                recovered_at = Some(Instant::now());
                recover(&pool, storage, &config, &worker_id).await;
            }
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
            woken = new_jobs(&mut listener) => {
                if !woken {
                    // The connection broke: listen again next round, and
                    // meanwhile the timer keeps looking.
                    listener = None;
                }
            }
        }
    }
}

/// Makes due now the jobs whose hand-out was lost (see
/// [`recover_lost_tasks`]) and the running jobs of workers that died.
async fn recover(
    pool: &PgPool,
    storage: &mut RedisStorage<serde_json::Value>,
    config: &Config,
    worker_id: &str,
) {
    if let Err(error) = recover_lost_tasks(pool, storage, config).await {
        tracing::warn!(error = %format!("{error:#}"), "relay cannot check Redis for lost tasks");
    }
    match jobs::silent_workers_jobs_due_now(pool, worker_id).await {
        Ok(0) => {}
        Ok(again) => tracing::warn!(
            jobs = again,
            "a worker went silent during its attempts; handing them out again"
        ),
        Err(error) => tracing::warn!(%error, "relay cannot look for silent workers"),
    }
}

/// Hands PENDING jobs out again at once when Redis lost its data (it
/// restarted empty), instead of when their leases run out minutes later.
async fn recover_lost_tasks(
    pool: &PgPool,
    storage: &mut RedisStorage<serde_json::Value>,
    config: &Config,
) -> Result<()> {
    if !queue::holds_mark(storage.get_connection(), config).await? {
        let again = jobs::pending_due_now(pool).await?;
        if again > 0 {
            tracing::warn!(
                jobs = again,
                "Redis lost its tasks; handing the pending jobs out again"
            );
        }
        // Marked only once the jobs are due: a failure above tries again.
        queue::mark_holding(storage.get_connection(), config).await?;
    }
    Ok(())
}

/// A connection listening for new jobs; `None` (the timer alone) when it
/// cannot be had now.
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "relay cannot listen for new jobs; polling");
            return None;
        }
    };
    match listener.listen(CHANNEL).await {
        Ok(()) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "relay cannot listen for new jobs; polling");
            None
        }
    }
}

/// Waits for a notification of new jobs; false when the connection broke.
/// Without a listener it waits forever (the timer wakes the relay).
async fn new_jobs(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(listener) => listener.try_recv().await.is_ok_and(|n| n.is_some()),
        None => std::future::pending().await,
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
    let due = jobs::lock_due(&mut tx, BATCH).await?;
    // A paused kind's jobs stay with the ledger until it is resumed.
    let paused: Vec<&Due> = due.iter().filter(|job| job.paused).collect();
    let held = if paused.is_empty() {
        Vec::new()
    } else {
        jobs::hold_paused(&mut tx, &paused).await?
    };
    let mut handed_out = Vec::with_capacity(due.len());
    let mut notes = Vec::with_capacity(due.len());
    for job in due.iter().filter(|job| !held.contains(&job.id)) {
        let note = match job.state {
            JobState::Running if job.attempts >= job.max_attempts => {
                jobs::kill(&mut tx, job, "the worker stopped during the last attempt").await?;
                metrics::counter!("canopy_jobs_killed_total", "kind" => job.kind.as_str())
                    .increment(1);
                continue;
            }
            JobState::Running => Some("the worker stopped during the attempt; retrying"),
            _ => None,
        };
        handed_out.push((next_delivery(job), job.kind));
        notes.push(note);
    }
    let dispatches: Vec<Dispatch<'_>> = handed_out
        .iter()
        .zip(&notes)
        .map(|((delivery, _), note)| Dispatch {
            hand_out: HandOut::from(delivery),
            note: *note,
        })
        .collect();
    let lease = config.job_lease * PENDING_LEASE_FACTOR;
    jobs::dispatched(&mut tx, &dispatches, lease).await?;
    tx.commit().await?;
    // One script call pushes the batch, all or none.
    if let Err(error) = push_all(storage, config, handed_out.iter().map(|(d, _)| d)).await {
        let unsent: Vec<HandOut> = handed_out.iter().map(|(d, _)| HandOut::from(d)).collect();
        jobs::undispatched(pool, &unsent).await?;
        return Err(error);
    }
    for (delivery, kind) in &handed_out {
        metrics::counter!("canopy_jobs_enqueued_total", "kind" => kind.as_str()).increment(1);
        tracing::debug!(
            job_id = delivery.job_id.0,
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

async fn push_all(
    storage: &mut RedisStorage<serde_json::Value>,
    config: &Config,
    deliveries: impl Iterator<Item = &Delivery>,
) -> Result<()> {
    let tasks = deliveries
        .map(|delivery| {
            Ok(TaskBuilder::new(serde_json::to_value(delivery)?)
                .task_id(TaskId::from_string(delivery.task_id()))
                .build())
        })
        .collect::<Result<Vec<_>>>()?;
    if tasks.is_empty() {
        return Ok(());
    }
    storage
        .push_all(futures_util::stream::iter(tasks))
        .await
        .map_err(|e| anyhow::anyhow!("cannot push to Redis: {e}"))?;
    // The tasks are queued either way; a lost announcement costs the
    // workers one fallback poll.
    if let Err(error) = queue::announce_push(storage.get_connection(), config).await {
        tracing::warn!(%error, "relay cannot wake the workers");
    }
    Ok(())
}
