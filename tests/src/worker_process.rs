//! `canopy-worker` as a separate process, for tests that kill, stop and
//! run several workers at once.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::TestApp;

pub struct WorkerProcess {
    child: Option<Child>,
    /// What the worker wrote to stderr (its log), line by line.
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
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
    /// server, serving /healthz and the rest on a free port.
    pub async fn start(app: &TestApp) -> Self {
        Self::start_with_env(app, &[]).await
    }

    /// Like `start`, with these environment variables over the usual ones.
    pub async fn start_with_env(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
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
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match addr {
            Some(addr) => command.env("CANOPY_WORKER_ADDR", addr.to_string()),
            None => command.env_remove("CANOPY_WORKER_ADDR"),
        };
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("canopy-worker starts");
        // Read all along, so the worker never blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            child: Some(child),
            log,
            reader: Some(reader),
        }
    }

    /// What the worker has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Where the worker says it serves /healthz, /readyz and /metrics.
    pub async fn serving_addr(&self) -> SocketAddr {
        let started = Instant::now();
        loop {
            let found = self.log().iter().find_map(|line| {
                let (_, rest) = line
                    .split_once("serving /healthz, /readyz and /metrics")?
                    .1
                    .split_once("addr=")?;
                rest.split_whitespace().next()?.parse().ok()
            });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the worker never said where it serves; log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(crate::POLL).await;
        }
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
        let child = self.child.as_ref().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.wait_exit()
    }

    /// The exit status once the worker has stopped by itself, with all it
    /// logged read.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
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
        if std::thread::panicking() {
            eprintln!("--- canopy-worker log ---\n{}", self.log().join("\n"));
        }
    }
}
