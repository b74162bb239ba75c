//! `canopy-worker`: the relay and the consumer, with /healthz, /readyz and
//! /metrics for operators.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use canopy_core::{config::Config, db, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small objects across threads, where glibc's malloc spent about a
/// tenth of the process's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line an operator can act on, e.g. a taken CANOPY_WORKER_ADDR.
            eprintln!("canopy-worker: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let config = Arc::new(Config::from_env()?);
    // Before anything else, so a taken address stops the start at once.
    let listener = canopy_worker::http::listen(config.worker_addr).await?;
    let addr = listener.local_addr()?;
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
    let http_stop = stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, canopy_worker::http::router(probe))
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await
    });
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    canopy_worker::run(pool, config, stop).await?;
    http.await??;
    Ok(())
}
