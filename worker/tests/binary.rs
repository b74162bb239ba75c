//! The `canopy-worker` binary as an operator runs it: it creates and migrates
//! its database, connects to Redis, and stops cleanly on SIGTERM.

use std::process::Command;
use std::time::Duration;

use canopy_tests::process::Process;
use canopy_tests::{RedisNamespace, TestDb, eventually, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_canopy-worker");

#[tokio::test]
async fn worker_starts_connects_and_stops_on_sigterm() {
    let db = TestDb::named();
    let port = free_port();
    let namespace = RedisNamespace::new("canopy-bin");
    let mut command = Command::new(BIN);
    command
        .env("DATABASE_URL", db.url())
        .env("CANOPY_WORKER_ADDR", format!("127.0.0.1:{port}"))
        .env("CANOPY_QUEUE", namespace.name())
        .env("RUST_LOG", "info")
        .env_remove("CANOPY_LOG_FORMAT")
        .env("NO_COLOR", "1");
    let mut worker = Process::spawn("canopy-worker", command);

    worker.wait_for_line("worker connected to Redis").await;

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
    eventually("the queue depth in /metrics", async || {
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        if text.contains("canopy_jobs_queue_depth") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;

    let status = worker.terminate(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "canopy-worker exited with {status} after SIGTERM"
    );
    // Everything it logged up to its exit has been read.
    assert!(
        worker
            .log()
            .iter()
            .any(|line| line.contains("worker stopped")),
        "canopy-worker did not log \"worker stopped\"; log:\n{}",
        worker.log_text()
    );
}
