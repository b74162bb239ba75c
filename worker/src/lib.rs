//! Canopy's worker: it will carry the email jobs from Redis to SMTP. For now
//! it connects to Redis, reports readiness and stops cleanly on shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use canopy_core::config::Config;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown` is cancelled. A Redis that is down is waited for
/// with backoff rather than treated as fatal, so the worker survives a
/// Redis restart.
pub async fn run(pool: PgPool, config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    let client = redis::Client::open(config.redis_url.as_str())?;
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            result = attempt => match result {
                Ok(_) => {
                    tracing::info!(queue = %config.queue, "worker connected to Redis");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?delay, "worker cannot reach Redis");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
    shutdown.cancelled().await;
    drop(pool);
    tracing::info!("worker stopped");
    Ok(())
}
