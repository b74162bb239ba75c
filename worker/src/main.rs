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
    canopy_worker::run(pool, config, stop).await
}
