//! `canopy-worker` as a separate process, for tests that kill, stop and
//! run several workers at once.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::TestApp;

pub struct WorkerProcess {
    child: Option<Child>,
}

/// The built `canopy-worker` next to the test binary; built if missing.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let binary = profile_dir.join("canopy-worker");
    if !binary.exists() {
        let built = Command::new(env!("CARGO"))
            .args(["build", "-p", "canopy-worker", "--bin", "canopy-worker"])
            .status()
            .expect("cargo builds canopy-worker");
        assert!(built.success());
    }
    binary
}

impl WorkerProcess {
    /// Starts a worker process for `app`'s database, Redis prefix and SMTP
    /// server.
    pub async fn start(app: &TestApp) -> Self {
        Self::start_with_env(app, &[]).await
    }

    /// Like `start`, with these environment variables over the usual ones.
    pub async fn start_with_env(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let server = crate::database::server_url();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary())
            .env("DATABASE_URL", format!("{server}/{database}"))
            .env("REDIS_URL", &app.config.redis_url)
            .env("CANOPY_QUEUE", &app.config.queue)
            .env("SMTP_URL", app.mail().url())
            .env("CANOPY_SECRET", crate::TEST_SECRET)
            .env("CANOPY_JOB_LEASE_SECONDS", "2")
            .env("CANOPY_WORKER_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("canopy-worker starts");
        Self { child: Some(child) }
    }

    /// SIGKILL: the worker dies wherever it is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status once it has stopped.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the worker did not stop"
            );
            std::thread::sleep(crate::POLL);
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
