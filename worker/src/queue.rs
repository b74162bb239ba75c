//! The Redis side of the queue: apalis-redis storage under the
//! installation's prefix, and the task that names a job's attempt.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use apalis_redis::{ConnectionManager, RedisStorage};
use canopy_core::config::Config;
use serde::{Deserialize, Serialize};

/// What Redis carries: which attempt of which job. Ids only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub tenant_id: i64,
    pub job_id: i64,
    pub attempt: i32,
    /// Which hand-out of the job this is.
    pub dispatch: i32,
}

impl Delivery {
    /// The task id: the job id and its hand-out number, so a relay that
    /// repeats a push (after a failed commit) queues it once.
    pub fn task_id(&self) -> String {
        format!("job-{}-{}-{}", self.tenant_id, self.job_id, self.dispatch)
    }
}

/// Every key of the queue starts with this.
pub fn namespace(config: &Config) -> String {
    format!("{}:jobs", config.queue)
}

/// A Redis connection that reconnects by itself, with a response timeout
/// long enough not to kill a worker under load.
pub async fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = apalis_redis::Client::open(url)?;
    client
        .get_connection_manager_with_config(
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_connection_timeout(Some(Duration::from_secs(2))),
        )
        .await
}

/// The storage, consumed as JSON values so a task that does not decode is
/// dropped by the handler instead of stopping the worker.
pub fn storage(conn: ConnectionManager, config: &Config) -> RedisStorage<serde_json::Value> {
    let settings = apalis_redis::Config::default()
        .queue(namespace(config))
        .batch_size(config.worker_concurrency.min(10))
        .heartbeat_interval(Duration::from_secs(5))
        .missed_heartbeats(6)
        .emit_events(false);
    RedisStorage::new(conn).with_config(settings)
}

/// Polls at a fixed rhythm, arming the next tick at once so that a tick
/// falling during a fetch is never lost.
pub struct Ticks {
    every: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Ticks {
    pub fn every(every: Duration) -> Self {
        Self { every, sleep: None }
    }
}

impl PollStrategy for Ticks {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let every = self.every;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let mut next = Box::pin(tokio::time::sleep(every));
        // Registers the waker for the next tick now.
        let _ = next.as_mut().poll(cx);
        self.sleep = Some(next);
        Poll::Ready(Some(()))
    }
}
