//! Retention: account data past its use (`canopy_core::purge`), DONE
//! jobs older than `CANOPY_JOB_RETENTION_DAYS` and audit entries older
//! than `CANOPY_AUDIT_RETENTION_DAYS`, and answers kept for
//! Idempotency-Keys after their 24 hours, are deleted
//! in small batches, each its own short statement, so the ledger stays
//! bounded without long locks. Any number of workers may prune at once.
//!
//! apalis keeps every task it carried and never trims its sets of finished
//! tasks; tasks finished over an hour ago are forgotten in Redis (their jobs
//! live on in the ledger, and no task id is ever pushed twice), and so is
//! the metadata of workers that were killed, and their heartbeats a day
//! after their last.

use std::time::Duration;

use std::sync::Arc;

use canopy_core::config::Config;
use canopy_core::purge::Purged;
use canopy_core::store::{audit, idempotency, jobs, webhooks};
use sqlx::PgPool;

use crate::queue;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 1000;
const EVERY: Duration = Duration::from_secs(60);

/// How long Redis keeps a finished task.
pub const REDIS_KEEPS_FINISHED: Duration = Duration::from_secs(3600);

pub async fn run(pool: PgPool, config: Arc<Config>, shutdown: CancellationToken) {
    loop {
        match prune(&pool, config.job_retention, &shutdown).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned finished jobs"),
            Err(error) => tracing::warn!(%error, "cannot prune finished jobs"),
        }
        match prune_audit(&pool, config.audit_retention, &shutdown).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned audit entries"),
            Err(error) => tracing::warn!(%error, "cannot prune audit entries"),
        }
        match prune_events(&pool, config.event_retention, &shutdown).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned events and their webhook deliveries"),
            Err(error) => tracing::warn!(%error, "cannot prune events"),
        }
        match prune_idempotency(&pool, &shutdown).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot answers kept for Idempotency-Keys"),
            Err(error) => tracing::warn!(%error, "cannot forget answers kept for Idempotency-Keys"),
        }
        match canopy_core::purge::run(&pool).await {
            Ok(purged) if purged != Purged::default() => {
                tracing::info!(?purged, "purged expired sessions, links and sign-ups")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot purge account data"),
        }
        if let Err(error) = jobs::forget_departed_workers(&pool).await {
            tracing::warn!(%error, "cannot forget departed workers' heartbeats");
        }
        if let Err(error) = vacuum_redis(&config, REDIS_KEEPS_FINISHED).await {
            tracing::warn!(%error, "cannot remove finished tasks from Redis");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Runs `batch` (a delete of at most `BATCH` rows) until it deletes fewer,
/// or the worker stops; answers how many rows went.
async fn in_batches<F: Future<Output = sqlx::Result<u64>>>(
    shutdown: &CancellationToken,
    mut batch: impl FnMut() -> F,
) -> sqlx::Result<u64> {
    let mut total = 0;
    while !shutdown.is_cancelled() {
        let deleted = batch().await?;
        total += deleted;
        if deleted < BATCH as u64 {
            break;
        }
    }
    Ok(total)
}

/// The moment `retention` ago (at most a hundred years: the
/// configuration's bound).
fn ago(retention: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(36_500))
}

/// Deletes DONE jobs older than `retention`, a batch at a time; returns how many.
pub async fn prune(
    pool: &PgPool,
    retention: Duration,
    shutdown: &CancellationToken,
) -> sqlx::Result<u64> {
    in_batches(shutdown, || jobs::prune_done(pool, retention, BATCH)).await
}

/// Deletes audit entries older than `retention`, a batch at a time;
/// returns how many.
pub async fn prune_audit(
    pool: &PgPool,
    retention: Duration,
    shutdown: &CancellationToken,
) -> sqlx::Result<u64> {
    let before = ago(retention);
    in_batches(shutdown, || audit::prune(pool, before, BATCH)).await
}

/// Deletes events (with their deliveries) older than `retention`, a batch
/// at a time; returns how many.
pub async fn prune_events(
    pool: &PgPool,
    retention: Duration,
    shutdown: &CancellationToken,
) -> sqlx::Result<u64> {
    let before = ago(retention);
    in_batches(shutdown, || webhooks::prune_events(pool, before, BATCH)).await
}

/// Forgets the answers kept for Idempotency-Keys once they stop answering
/// repeats (24 hours), a batch at a time; returns how many.
pub async fn prune_idempotency(pool: &PgPool, shutdown: &CancellationToken) -> sqlx::Result<u64> {
    in_batches(shutdown, || idempotency::prune(pool, BATCH)).await
}

/// Forgets the tasks Redis finished `age` ago or earlier, and what apalis
/// keeps of killed workers; returns how many tasks.
pub async fn vacuum_redis(config: &Config, age: Duration) -> anyhow::Result<u64> {
    let mut conn = queue::connect(&config.redis_url).await?;
    let forgotten = queue::forget_finished(&mut conn, config, age).await?;
    queue::forget_departed_workers(&mut conn, config).await?;
    Ok(forgotten)
}
