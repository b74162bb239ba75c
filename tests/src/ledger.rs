//! The jobs ledger as tests watch it: they wait for a job by polling the
//! ledger until it is where they expect, never by sleeping; and an app with
//! a worker checks, when the test ends, that no job was left unfinished.

use std::fmt::Write;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgExecutor, PgPool};

use crate::{TestApp, background, eventually};

/// A job as the ledger holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub tenant_id: i64,
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "tenant_id, id, kind, state, attempts, max_attempts, last_error";

/// Jobs not finished yet: waiting for the relay, handed to Redis, running,
/// or failed with an attempt still to come. (A failed job with no attempt
/// left is KILLED, but a FAILED one with none left would be finished too.)
const UNFINISHED: &str = "state IN ('AWAITING_DISPATCH', 'PENDING', 'RUNNING')
     OR (state = 'FAILED' AND attempts < max_attempts)";

/// How long a dropping app waits for its worker to finish the jobs under
/// way when the test ended.
pub(crate) const END_WAIT: Duration = Duration::from_secs(20);

async fn unfinished(db: impl PgExecutor<'_>) -> Vec<Job> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE {UNFINISHED} ORDER BY tenant_id, id"
    ))
    .fetch_all(db)
    .await
    .expect("read the jobs ledger")
}

/// One line a job, for failure messages.
pub fn describe(jobs: &[Job]) -> String {
    let mut out = String::new();
    for job in jobs {
        let _ = writeln!(
            out,
            "  job {} of tenant {}: {} {}, attempt {} of {}, last error: {}",
            job.id,
            job.tenant_id,
            job.kind,
            job.state,
            job.attempts,
            job.max_attempts,
            job.last_error.as_deref().unwrap_or("none"),
        );
    }
    if out.is_empty() {
        out.push_str("  no jobs\n");
    }
    out
}

impl TestApp {
    /// Every job in the ledger, in the order they were queued.
    pub async fn jobs(&self) -> Vec<Job> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs ORDER BY tenant_id, id"
        ))
        .fetch_all(&self.pool)
        .await
        .expect("read the jobs ledger")
    }

    /// Waits until a job is in `state`; returns it.
    pub async fn job_in_state(&self, state: &str) -> Job {
        eventually(&format!("a job in state {state}"), async || {
            let jobs = self.jobs().await;
            let found = jobs.iter().find(|job| job.state == state).cloned();
            found.ok_or_else(|| describe(&jobs))
        })
        .await
    }

    /// Waits until every job has finished: DONE, KILLED, or FAILED with no
    /// attempt left.
    pub async fn jobs_settled(&self) {
        eventually("every job to finish", async || {
            let open = unfinished(&self.pool).await;
            if open.is_empty() {
                Ok(())
            } else {
                Err(describe(&open))
            }
        })
        .await
    }

    /// Says the test leaves jobs unfinished on purpose (it stops the worker
    /// or breaks the SMTP server for good), so the app does not fail it for
    /// them when dropped.
    pub fn expect_unfinished_jobs(&self) {
        self.unfinished_expected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether dropping the app checks for unfinished jobs: only an app
    /// with an SMTP server (and so a worker, in the test process or in
    /// worker processes), when the test did not expect unfinished jobs and
    /// is not failing already. An app without one leaves its jobs waiting
    /// for the relay by design.
    pub(crate) fn checks_jobs_at_end(&self) -> bool {
        self.smtp.is_some()
            && !self
                .unfinished_expected
                .load(std::sync::atomic::Ordering::Relaxed)
            && !std::thread::panicking()
    }
}

/// The jobs still unfinished once they are all finished, or `within` has
/// passed. Run apart from the test's runtime, which is blocked in a drop.
pub(crate) fn unfinished_after(pool: &PgPool, within: Duration) -> Vec<Job> {
    let database = pool.connect_options().as_ref().clone();
    background::run_apart(async move {
        let mut conn = PgConnection::connect_with(&database)
            .await
            .expect("connect to the test database");
        let started = Instant::now();
        let open = loop {
            let open = unfinished(&mut conn).await;
            if open.is_empty() || started.elapsed() >= within {
                break open;
            }
            tokio::time::sleep(crate::POLL).await;
        };
        let _ = conn.close().await;
        open
    })
    .expect("read the jobs ledger")
}
