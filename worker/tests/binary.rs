//! The `canopy-worker` binary as an operator runs it: it creates and migrates
//! its database, connects to Redis, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use canopy_tests::TestDb;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_canopy-worker");

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The running worker; killed on drop if still running, and what it logged
/// shown when the test is failing.
struct Worker {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Worker {
    fn start(db: &TestDb, port: u16, namespace: &RedisNamespace) -> Self {
        let mut child = Command::new(BIN)
            .env("DATABASE_URL", db.url())
            .env("CANOPY_WORKER_ADDR", format!("127.0.0.1:{port}"))
            .env("CANOPY_QUEUE", &namespace.0)
            .env("RUST_LOG", "info")
            .env_remove("CANOPY_LOG_FORMAT")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start canopy-worker");
        let stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until a logged line contains `text`; false if the log ends or
    /// `within` passes first.
    async fn wait_for_line(&mut self, text: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        if self.seen.iter().any(|line| line.contains(text)) {
            return true;
        }
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if started.elapsed() >= within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            eprintln!("--- canopy-worker log ---\n{}", self.log());
        }
    }
}

#[tokio::test]
async fn worker_starts_connects_and_stops_on_sigterm() {
    let db = TestDb::named();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let namespace = RedisNamespace::new();
    let mut worker = Worker::start(&db, port, &namespace);

    assert!(
        worker
            .wait_for_line("worker connected to Redis", Duration::from_secs(20))
            .await,
        "canopy-worker did not log \"worker connected to Redis\" within 20 s"
    );

    // Its own health, readiness and metrics, on CANOPY_WORKER_ADDR.
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("/readyz answers");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "postgres": "ok", "redis": "ok" }));
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The queue depth appears with the first heartbeat.
    let started = std::time::Instant::now();
    loop {
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        if text.contains("canopy_jobs_queue_depth") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no queue depth in {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    worker.terminate();
    let status = worker
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("canopy-worker still running 10 s after SIGTERM");
    assert!(
        status.success(),
        "canopy-worker exited with {status} after SIGTERM"
    );
    // The process has exited, so its stderr closes and the reader drains.
    assert!(
        worker
            .wait_for_line("worker stopped", Duration::from_secs(5))
            .await,
        "canopy-worker did not log \"worker stopped\"; log:\n{}",
        worker.log()
    );

    drop(worker);
    drop(db);
}

/// The Redis keys of a queue prefix, deleted when the test ends.
struct RedisNamespace(String);

impl RedisNamespace {
    fn new() -> Self {
        Self(format!("canopy-bin-{}", random_hex()))
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        )
        .and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
        let _: redis::RedisResult<()> = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{}:jobs:workers", self.0))
            .query(&mut conn);
    }
}
