//! Worker heartbeats (for jobQueue.activeWorkers) and the queue-depth gauge,
//! every few seconds; the heartbeat row goes when the worker stops.

use std::time::Duration;

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
    let _ = sqlx::query("DELETE FROM worker_heartbeats WHERE worker_id = $1")
        .bind(&worker_id)
        .execute(&pool)
        .await;
}

async fn beat(pool: &PgPool, worker_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO worker_heartbeats (worker_id) VALUES ($1)
         ON CONFLICT (worker_id) DO UPDATE SET last_seen = now()",
    )
    .bind(worker_id)
    .execute(pool)
    .await?;
    // Heartbeats of workers long gone.
    sqlx::query("DELETE FROM worker_heartbeats WHERE last_seen < now() - interval '1 day'")
        .execute(pool)
        .await?;
    let depth: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM jobs
         WHERE state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING', 'FAILED') GROUP BY state",
    )
    .fetch_all(pool)
    .await?;
    for state in ["AWAITING_DISPATCH", "PENDING", "RUNNING", "FAILED"] {
        let count = depth
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("canopy_jobs_queue_depth", "state" => state).set(count as f64);
    }
    Ok(())
}
