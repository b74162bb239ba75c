//! The job counters and gauges: the queue-depth gauge every few seconds,
//! and the folding of the ledger's counter rows (`job_counts`, which
//! jobQueue reads) once a minute, so they stay a handful of rows; the
//! per-minute throughput counts are kept two hours.

use std::time::{Duration, Instant};

use canopy_core::jobs::JobState;
use canopy_core::store::jobs;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const GAUGE_EVERY: Duration = Duration::from_secs(5);
const FOLD_EVERY: Duration = Duration::from_secs(60);

pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    let mut folded = Instant::now();
    loop {
        if let Err(error) = measure_depth(&pool).await {
            tracing::warn!(%error, "cannot measure the queue depth");
        }
        if folded.elapsed() >= FOLD_EVERY {
            folded = Instant::now();
            if let Err(error) = jobs::fold_counts(&pool).await {
                tracing::warn!(%error, "cannot fold the job counters");
            }
            if let Err(error) = jobs::forget_old_minutes(&pool).await {
                tracing::warn!(%error, "cannot forget old throughput minutes");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(GAUGE_EVERY) => {}
        }
    }
}

/// Sets `canopy_jobs_queue_depth` for each state a job waits or runs in.
async fn measure_depth(pool: &PgPool) -> sqlx::Result<()> {
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
