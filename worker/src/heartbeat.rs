//! Worker heartbeats, every second: jobQueue.activeWorkers counts them,
//! and a worker whose heartbeat goes silent has its running jobs handed
//! out again (`relay`). The heartbeat row goes when the worker stops.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use canopy_core::store::jobs::{self, HEARTBEAT_EVERY, WORKER_SILENCE};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// This worker process: its id (which its heartbeat and its claims name),
/// and when it last recorded its heartbeat.
#[derive(Clone)]
pub struct Worker {
    pub id: String,
    pub liveness: Liveness,
}

/// When this process last recorded its heartbeat. A worker that could not
/// for half of [`WORKER_SILENCE`] may soon be taken for dead and its jobs
/// handed to others, so it starts no send meanwhile.
#[derive(Clone)]
pub struct Liveness(Arc<Mutex<Instant>>);

impl Liveness {
    /// Just recorded (the caller has beaten once).
    pub fn just_beaten() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    fn beaten(&self) {
        *self.0.lock().expect("liveness") = Instant::now();
    }

    /// Whether the heartbeat was recorded recently enough to send.
    pub fn may_send(&self) -> bool {
        self.0.lock().expect("liveness").elapsed() < WORKER_SILENCE / 2
    }

    /// Waits until the heartbeat is recent enough to send; false when
    /// `stop` came first.
    pub async fn wait(&self, stop: &CancellationToken) -> bool {
        while !self.may_send() {
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT_EVERY / 4) => {}
                () = stop.cancelled() => return false,
            }
        }
        true
    }
}

pub async fn run(pool: PgPool, worker: Worker, shutdown: CancellationToken) {
    loop {
        match jobs::beat(&pool, &worker.id).await {
            Ok(()) => worker.liveness.beaten(),
            Err(error) => tracing::warn!(%error, "cannot record the worker heartbeat"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
    }
    let _ = jobs::forget_worker(&pool, &worker.id).await;
}
