//! `canopy-worker` as a separate process, for tests that kill, stop and
//! run several workers at once.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::Command;

use crate::TestApp;
use crate::process::Process;

/// A `canopy-worker` process; a [`Process`] for all but starting it.
pub struct WorkerProcess(Process);

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
    /// server, serving /healthz and the rest on a free port.
    pub async fn start(app: &TestApp) -> Self {
        Self::start_with_env(app, &[]).await
    }

    /// Like `start`, with these environment variables over the usual ones.
    pub async fn start_with_env(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let free = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        Self::spawn(app, Some(free), env).await
    }

    /// Like `start`, with `CANOPY_WORKER_ADDR` set to `addr`, or unset.
    pub async fn start_with_addr(app: &TestApp, addr: Option<SocketAddr>) -> Self {
        Self::spawn(app, addr, &[]).await
    }

    async fn spawn(app: &TestApp, addr: Option<SocketAddr>, env: &[(&str, &str)]) -> Self {
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let server = crate::database::server_url();
        let mut command = Command::new(binary());
        command
            .env("DATABASE_URL", format!("{server}/{database}"))
            .env("REDIS_URL", &app.config.redis_url)
            .env("CANOPY_QUEUE", &app.config.queue)
            .env("SMTP_URL", app.mail().url())
            .env("CANOPY_SECRET", crate::TEST_SECRET)
            .env("CANOPY_JOB_LEASE_SECONDS", "2")
            .env("RUST_LOG", "warn,canopy_worker=info")
            .env_remove("CANOPY_LOG_FORMAT")
            .env("NO_COLOR", "1");
        match addr {
            Some(addr) => command.env("CANOPY_WORKER_ADDR", addr.to_string()),
            None => command.env_remove("CANOPY_WORKER_ADDR"),
        };
        command.envs(env.iter().copied());
        Self(Process::spawn("canopy-worker", command))
    }

    /// Where the worker says it serves /healthz, /readyz and /metrics.
    pub async fn serving_addr(&self) -> SocketAddr {
        self.wait_for_log("the worker to say where it serves", |line| {
            let (_, rest) = line
                .split_once("serving /healthz, /readyz and /metrics")?
                .1
                .split_once("addr=")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .await
    }
}

impl Deref for WorkerProcess {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.0
    }
}

impl DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}
