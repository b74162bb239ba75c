//! The Redis side of the queue: apalis-redis storage under the
//! installation's prefix, the task that names a job's attempt, and the
//! housekeeping apalis leaves undone (what it keeps of stopped workers and
//! of finished tasks).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis::prelude::{PollSnapshot, PollStrategy};
use apalis_redis::{ConnectionManager, RedisStorage};
use canopy_core::config::Config;
use canopy_core::id::{JobId, TenantId};
use futures_util::StreamExt;
use redis::{RedisResult, Script};
use serde::{Deserialize, Serialize};

/// What Redis carries: which attempt of which job. Ids only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub tenant_id: TenantId,
    pub job_id: JobId,
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
    RedisStorage::new(conn).with_config(settings(config))
}

/// apalis-redis's settings for the installation's queue, and so its key names.
pub fn settings(config: &Config) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(namespace(config))
        .batch_size(config.worker_concurrency.min(10))
        // A worker killed with tasks drawn but not yet claimed: the other
        // workers put them back within about five seconds.
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(4)
        .emit_events(false)
}

/// The one key apalis-redis 1.0 writes outside the installation's prefix:
/// a sorted set listing each queue by its workers set
/// (`{CANOPY_QUEUE}:jobs:workers`), added by every worker that registers.
pub const APALIS_QUEUES: &str = "core:apalis:queues:list";

/// What apalis keeps of one worker: its metadata hash.
pub fn worker_metadata_key(config: &Config, worker: &str) -> String {
    format!("{}:workers:metadata:{worker}", namespace(config))
}

/// A worker that stops takes its traces with it. apalis registers each
/// worker in `{ns}:workers`, keeps `{ns}:workers:metadata:{name}` and lists
/// the queue in [`APALIS_QUEUES`], and on stopping removes none of them
/// (1.0's cleanup names the worker's inflight set where its name belongs).
/// Tasks the worker still held (it lost Redis mid-task) go back to the
/// queue; the queue leaves apalis's list with its last live worker.
static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: workers set, the worker's metadata, its inflight set, the active
-- list, the signal list, apalis's list of queues
-- ARGV: the worker's name, the heartbeat time below which a worker is dead
local held = redis.call("smembers", KEYS[3])
if #held > 0 then
  redis.call("rpush", KEYS[4], unpack(held))
  redis.call("del", KEYS[3])
  redis.call("del", KEYS[5])
  redis.call("lpush", KEYS[5], 1)
end
redis.call("zrem", KEYS[1], ARGV[1])
redis.call("del", KEYS[2])
if redis.call("zcount", KEYS[1], ARGV[2], "+inf") == 0 then
  redis.call("zrem", KEYS[6], KEYS[1])
end
return #held
"#,
    )
});

/// Removes what apalis keeps of the stopped worker `worker` (see [`LEAVE`]).
pub async fn leave(conn: &mut ConnectionManager, config: &Config, worker: &str) -> RedisResult<()> {
    let settings = settings(config);
    let alive_since = unix_now().saturating_sub(settings.orphaned_duration().as_secs());
    let requeued: u64 = LEAVE
        .key(settings.workers_set())
        .key(worker_metadata_key(config, worker))
        .key(format!("{}:{worker}", settings.inflight_jobs_set()))
        .key(settings.active_jobs_list())
        .key(settings.signal_list())
        .key(APALIS_QUEUES)
        .arg(worker)
        .arg(alive_since)
        .invoke_async(conn)
        .await?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            worker,
            "tasks a stopped worker held went back to the queue"
        );
    }
    Ok(())
}

/// Deletes the metadata of those of the named workers not registered.
static FORGET_DEPARTED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[1]: the workers set; ARGV[1]: the metadata prefix; ARGV[2..]: names
local forgotten = 0
for i = 2, #ARGV do
  if not redis.call("zscore", KEYS[1], ARGV[i]) then
    forgotten = forgotten + redis.call("del", ARGV[1] .. ARGV[i])
  end
end
return forgotten
"#,
    )
});

/// Deletes the metadata of workers apalis no longer counts: those killed
/// (a live worker drops them from `{ns}:workers` when it takes their tasks
/// back, but keeps their metadata). Returns how many.
pub async fn forget_departed_workers(
    conn: &mut ConnectionManager,
    config: &Config,
) -> RedisResult<u64> {
    let prefix = worker_metadata_key(config, "");
    let pattern = format!("{}*", glob_escape(&prefix));
    let workers_set = settings(config).workers_set();
    let mut forgotten = 0;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH)
            .query_async(conn)
            .await?;
        let names: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix))
            .collect();
        if !names.is_empty() {
            forgotten += FORGET_DEPARTED
                .key(&workers_set)
                .arg(&prefix)
                .arg(&names)
                .invoke_async::<u64>(conn)
                .await?;
        }
        if next == 0 {
            return Ok(forgotten);
        }
        cursor = next;
    }
}

/// Forgets finished tasks, given by id, that finished at or before a time:
/// their id in the finished set, their data, result and record. A task
/// with no record left (removed by an older vacuum) goes from the set too.
static FORGET_FINISHED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: the finished set, the data hash, the metadata prefix
-- ARGV[1]: finished at or before (unix seconds); ARGV[2..]: task ids
local before = tonumber(ARGV[1])
local forgotten = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local meta = KEYS[3] .. ":" .. id
  local done_at = tonumber(redis.call("hget", meta, "done_at"))
  if done_at == nil or done_at <= before then
    redis.call("srem", KEYS[1], id)
    redis.call("hdel", KEYS[2], id)
    redis.call("hdel", KEYS[3] .. ":result", id)
    redis.call("del", meta)
    forgotten = forgotten + 1
  end
end
return forgotten
"#,
    )
});

/// Forgets every task that finished `age` ago or earlier. apalis keeps a
/// finished task's id in `{ns}:done` (or `{ns}:dead`), its data in
/// `{ns}:data` and its record in `{ns}:meta:{id}`, and trims none of
/// them; the job itself lives on in the ledger. (`{ns}:failed` is never
/// written by apalis-redis 1.0.) Returns how many tasks were forgotten.
pub async fn forget_finished(
    conn: &mut ConnectionManager,
    config: &Config,
    age: Duration,
) -> RedisResult<u64> {
    let settings = settings(config);
    let before = unix_now().saturating_sub(age.as_secs());
    let mut forgotten = 0;
    for finished in [settings.done_jobs_set(), settings.dead_jobs_set()] {
        let mut cursor = 0u64;
        loop {
            let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(&finished)
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(conn)
                .await?;
            if !ids.is_empty() {
                forgotten += FORGET_FINISHED
                    .key(&finished)
                    .key(settings.job_data_hash())
                    .key(settings.job_meta_hash())
                    .arg(before)
                    .arg(&ids)
                    .invoke_async::<u64>(conn)
                    .await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(forgotten)
}

/// Keys or members looked at per round trip, so no script holds Redis long.
const SCAN_BATCH: usize = 500;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `text` matched literally in a SCAN pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// When an idle worker asks Redis for work: as soon as the relay pushes
/// (it announces each batch on the queue's `pushed` channel, which
/// `listen_for_pushes` turns into `Wakeups`), and at every tick of
/// `fallback` besides, so a missed message costs at most one tick.
pub struct Wake {
    wakeups: Wakeups,
    fallback: Ticks,
}

impl Wake {
    pub fn new(wakeups: Wakeups, fallback: Duration) -> Self {
        Self {
            wakeups,
            fallback: Ticks::every(fallback),
        }
    }
}

impl PollStrategy for Wake {
    fn poll_drive(&mut self, cx: &mut Context<'_>, snapshot: &PollSnapshot) -> Poll<Option<()>> {
        let woken = self.wakeups.take(cx);
        // The tick is always armed, whether or not a push woke the worker.
        let ticked = self.fallback.poll_drive(cx, snapshot).is_ready();
        if woken || ticked {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

/// A wake-up that coalesces: pushes while the worker is busy wake it once.
#[derive(Clone, Default)]
pub struct Wakeups(Arc<Wakeup>);

#[derive(Default)]
struct Wakeup {
    woken: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wakeups {
    pub fn wake(&self) {
        self.0.woken.store(true, Ordering::Release);
        if let Some(waker) = self.0.waker.lock().expect("waker").take() {
            waker.wake();
        }
    }

    /// Whether a wake-up came; registers `cx` for the next either way.
    fn take(&self, cx: &Context<'_>) -> bool {
        *self.0.waker.lock().expect("waker") = Some(cx.waker().clone());
        self.0.woken.swap(false, Ordering::AcqRel)
    }
}

/// The relay's mark in the Redis it hands tasks to. Missing, Redis
/// restarted empty or was flushed (or is new): the tasks of PENDING jobs
/// may be gone.
fn holding_key(config: &Config) -> String {
    format!("{}:holding", namespace(config))
}

pub async fn holds_mark(conn: &mut ConnectionManager, config: &Config) -> RedisResult<bool> {
    redis::cmd("EXISTS")
        .arg(holding_key(config))
        .query_async::<bool>(conn)
        .await
}

pub async fn mark_holding(conn: &mut ConnectionManager, config: &Config) -> RedisResult<()> {
    redis::cmd("SET")
        .arg(holding_key(config))
        .arg(1)
        .query_async::<()>(conn)
        .await
}

/// The channel the relay announces each pushed batch on. (apalis-redis
/// 1.0's own `available` events are never sent for batch pushes: its script
/// compares the flag with "1" and receives "true".)
fn pushed_channel(config: &Config) -> String {
    format!("{}:pushed", namespace(config))
}

/// Wakes the idle workers: tasks were pushed.
pub async fn announce_push(conn: &mut ConnectionManager, config: &Config) -> RedisResult<()> {
    redis::cmd("PUBLISH")
        .arg(pushed_channel(config))
        .arg(1)
        .query_async::<i64>(conn)
        .await
        .map(drop)
}

/// Wakes `wakeups` at each task pushed to the queue, until the
/// subscription's connection ends (an error) or the subscription closes.
pub async fn listen_for_pushes(url: &str, config: &Config, wakeups: Wakeups) -> RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(pushed_channel(config)).await?;
    let mut messages = pubsub.into_on_message();
    while messages.next().await.is_some() {
        wakeups.wake();
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts how often the worker would be woken.
    struct Counter(AtomicUsize);

    impl std::task::Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_push_wakes_an_idle_worker_at_once_and_coalesces() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let snapshot = PollSnapshot::default();
        let wakeups = Wakeups::default();
        let mut wake = Wake::new(wakeups.clone(), Duration::from_secs(3600));

        assert!(wake.poll_drive(&mut cx, &snapshot).is_pending(), "idle");
        wakeups.wake();
        wakeups.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken once");
        assert!(wake.poll_drive(&mut cx, &snapshot).is_ready());
        assert!(
            wake.poll_drive(&mut cx, &snapshot).is_pending(),
            "two pushes while busy are one wake-up"
        );
    }
}
