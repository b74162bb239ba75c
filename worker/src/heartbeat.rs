//! Worker heartbeats (for jobQueue.activeWorkers) and the queue-depth gauge,
//! every few seconds; the heartbeat row goes when the worker stops.

use std::time::Duration;

use canopy_core::jobs::JobState;
use canopy_core::store::jobs;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);

pub async fn run(pool: PgPool, worker_id: String, shutdown: CancellationToken) {
    loop {
        if let Err(error) = beat(&pool, &worker_id).await {
            tracing::warn!(%error, "cannot record the worker heartbeat");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
    let _ = jobs::forget_worker(&pool, &worker_id).await;
}

async fn beat(pool: &PgPool, worker_id: &str) -> sqlx::Result<()> {
    jobs::beat(pool, worker_id).await?;
    let depth = jobs::queue_depth(pool).await?;
    for state in [
        JobState::AwaitingDispatch,
        JobState::Pending,
        JobState::Running,
        JobState::Failed,
    ] {
        let count = depth
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("canopy_jobs_queue_depth", "state" => state.as_str()).set(count as f64);
    }
    Ok(())
}
