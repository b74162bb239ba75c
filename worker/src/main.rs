use std::sync::Arc;

use anyhow::Result;
use canopy_core::{config::Config, db, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<()> {
    telemetry::init();
    let config = Arc::new(Config::from_env()?);
    let pool = db::connect_and_migrate(&config.database_url).await?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        on_signal.cancel();
    });
    let probe = canopy_worker::http::Probe {
        pool: pool.clone(),
        redis: redis::Client::open(config.redis_url.as_str())?,
        metrics: canopy_core::metrics::install(),
    };
    let listener = tokio::net::TcpListener::bind(config.worker_addr).await?;
    tracing::info!(addr = %config.worker_addr, "serving /healthz, /readyz and /metrics");
    let http_stop = stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, canopy_worker::http::router(probe))
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await
    });
    canopy_worker::run(pool, config, stop).await?;
    http.await??;
    Ok(())
}
