//! Worker heartbeats, every second: jobQueue.activeWorkers counts them,
//! and a worker whose heartbeat goes silent has its running jobs handed
//! out again (`relay`). The heartbeat row goes when the worker stops.

use canopy_core::store::jobs::{self, HEARTBEAT_EVERY};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub async fn run(pool: PgPool, worker_id: String, shutdown: CancellationToken) {
    loop {
        if let Err(error) = jobs::beat(&pool, &worker_id).await {
            tracing::warn!(%error, "cannot record the worker heartbeat");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
    }
    let _ = jobs::forget_worker(&pool, &worker_id).await;
}
