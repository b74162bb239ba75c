//! Canopy's worker: the relay that hands committed jobs to Redis, and the
//! consumer that turns each job into an email.
//!
//! - `relay`: jobs table → Redis (FOR UPDATE SKIP LOCKED; task id from the job id)
//! - `queue`: the Redis side (apalis-redis storage, task ids, polling)
//! - `consumer`: the apalis worker; each delivery is claimed in the ledger,
//!   composed by its kind's module in `jobs`, sent by `mail`, and recorded
//! - `ledger`: how an attempt ends (outcome, backoff, metrics); the
//!   statements are in `canopy_core::store::jobs`
//! - `heartbeat`: the worker's heartbeat, for jobQueue.activeWorkers and
//!   for handing out again the jobs of a worker that died
//! - `counters`: the queue-depth gauge and the folding of job counters
//! - `retention`: finished jobs, expired account data and finished tasks
//!   in Redis, deleted in batches
//! - `http`: /healthz, /readyz and /metrics for operators

pub mod consumer;
pub mod counters;
pub mod heartbeat;
pub mod http;
pub mod jobs;
pub mod ledger;
pub mod mail;
pub mod queue;
pub mod relay;
pub mod retention;
pub mod webhooks;

use std::sync::Arc;

use anyhow::Result;
use canopy_core::config::Config;
use canopy_core::secrets::Keyring;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Runs the relay and the consumer until `shutdown` is cancelled; a job in
/// progress finishes first. Redis being down is waited out, never fatal.
pub async fn run(pool: PgPool, config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    canopy_core::metrics::install();
    let mailer = Arc::new(mail::Mailer::from_config(&config)?);
    let keyring = Arc::new(Keyring::load(&pool, &config).await?);
    let worker_id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    // Alive before the first claim, so no claim names a silent worker; and
    // the heartbeat outlives the consumer: attempts finishing after the
    // shutdown began still belong to a live worker.
    canopy_core::store::jobs::beat(&pool, &worker_id).await?;
    let worker = heartbeat::Worker {
        id: worker_id,
        liveness: heartbeat::Liveness::just_beaten(),
    };
    let beating = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat::run(
        pool.clone(),
        worker.clone(),
        beating.clone(),
    ));
    let relay = tokio::spawn(relay::run(
        pool.clone(),
        config.clone(),
        worker.id.clone(),
        shutdown.clone(),
    ));
    let counters = tokio::spawn(counters::run(pool.clone(), shutdown.clone()));
    let retention = tokio::spawn(retention::run(
        pool.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    let webhooks = tokio::spawn(webhooks::run(
        pool.clone(),
        config.clone(),
        keyring.clone(),
        shutdown.clone(),
    ));
    consumer::run(pool, config, keyring, mailer, worker, shutdown).await;
    beating.cancel();
    relay.await?;
    heartbeat.await?;
    counters.await?;
    retention.await?;
    webhooks.await?;
    tracing::info!("worker stopped");
    Ok(())
}
