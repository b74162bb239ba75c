//! Worker heartbeats (for jobQueue.activeWorkers), every few seconds; the
//! heartbeat row goes when the worker stops.

use std::time::Duration;

use canopy_core::store::jobs;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);

pub async fn run(pool: PgPool, worker_id: String, shutdown: CancellationToken) {
    loop {
        if let Err(error) = jobs::beat(&pool, &worker_id).await {
            tracing::warn!(%error, "cannot record the worker heartbeat");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
    let _ = jobs::forget_worker(&pool, &worker_id).await;
}
