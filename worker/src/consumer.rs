//! The apalis worker: takes deliveries from Redis, claims each attempt in
//! the ledger, composes the email and sends it, and records how it went.
//! A lost Redis connection ends an apalis worker; this module starts a new
//! one (under a new name) until shutdown. Each apalis worker that ends
//! removes what apalis keeps of it in Redis (`queue::leave`).

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use canopy_core::config::Config;
use canopy_core::jobs::JobState;
use canopy_core::secrets::Keyring;
use canopy_core::store::jobs::{self as jobs_store, HandOut};
use lettre::message::Mailbox;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::heartbeat::Worker;
use crate::jobs::{self, Composed, Context};
use crate::ledger::{self, Outcome};
use crate::mail::templates::Templates;
use crate::mail::{Mailer, Reachability, SendError, mask};
use crate::queue::{self, Delivery, Wake, Wakeups};

/// How often an idle worker asks Redis for work when no push woke it (a
/// missed wake-up, or a task put back by another worker's leaving).
const FALLBACK_POLL: Duration = Duration::from_secs(1);

pub async fn run(
    pool: PgPool,
    config: Arc<Config>,
    keyring: Arc<Keyring>,
    mailer: Arc<Mailer>,
    worker: Worker,
    shutdown: CancellationToken,
) {
    let worker_id = worker.id.clone();
    let context = match build_context(
        pool,
        config.clone(),
        keyring,
        mailer,
        worker,
        shutdown.clone(),
    ) {
        Ok(context) => Arc::new(context),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "worker cannot start");
            return;
        }
    };
    // Each process, and each restart within it, gets a name of its own.
    let instance = worker_id;
    let mut generation = 0u32;
    // Names of ended apalis workers whose traces are still in Redis.
    let mut ended_workers: Vec<String> = Vec::new();
    while !shutdown.is_cancelled() {
        generation += 1;
        let mut conn = match queue::connect(&config.redis_url).await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "worker cannot reach Redis; retrying");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::info!(queue = %queue::namespace(&config), "worker connected to Redis");
        leave(&mut conn, &config, &mut ended_workers).await;
        let name = format!("canopy-{instance}-{generation}");
        let wakeups = Wakeups::default();
        let listening = tokio::spawn({
            let (config, wakeups) = (config.clone(), wakeups.clone());
            async move {
                loop {
                    let ended =
                        queue::listen_for_pushes(&config.redis_url, &config, wakeups.clone());
                    if let Err(error) = ended.await {
                        tracing::warn!(%error, "worker cannot hear of pushes; polling every second");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        let worker = WorkerBuilder::new(name.as_str())
            .backend(
                queue::storage(conn.clone(), &config)
                    .poll_with_strategy(Wake::new(wakeups, FALLBACK_POLL)),
            )
            .data(context.clone())
            .concurrency(config.worker_concurrency)
            .build(handle);
        let stop = shutdown.clone();
        let ended = worker
            .run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            })
            .await;
        listening.abort();
        ended_workers.push(name);
        leave(&mut conn, &config, &mut ended_workers).await;
        match ended {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "worker lost Redis; reconnecting");
                pause(&shutdown, Duration::from_secs(1)).await;
            }
        }
    }
    // Attempts that outlived an apalis worker finish before the process
    // stops (sending and recording them needs no Redis).
    context.attempts.close();
    if tokio::time::timeout(config.job_lease, context.attempts.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "attempts still running at shutdown are cut off; other workers take them over"
        );
    }
    // Stopped while Redis was away: one last try.
    if !ended_workers.is_empty()
        && let Ok(mut conn) = queue::connect(&config.redis_url).await
    {
        leave(&mut conn, &config, &mut ended_workers).await;
    }
}

/// Removes what apalis keeps of each ended worker; those Redis cannot be
/// told of now stay listed for the next try.
async fn leave(
    conn: &mut apalis_redis::ConnectionManager,
    config: &Config,
    ended_workers: &mut Vec<String>,
) {
    let mut failed = Vec::new();
    for name in ended_workers.drain(..) {
        if let Err(error) = queue::leave(conn, config, &name).await {
            tracing::warn!(%error, worker = %name, "cannot remove a stopped worker from Redis");
            failed.push(name);
        }
    }
    *ended_workers = failed;
}

async fn pause(shutdown: &CancellationToken, duration: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(duration) => {}
    }
}

fn build_context(
    pool: PgPool,
    config: Arc<Config>,
    keyring: Arc<Keyring>,
    mailer: Arc<Mailer>,
    worker: Worker,
    stop: CancellationToken,
) -> anyhow::Result<Context> {
    let concurrency = config.worker_concurrency;
    let from: Mailbox = config
        .mail_from
        .parse()
        .map_err(|e| anyhow::anyhow!("CANOPY_MAIL_FROM is not an address: {e}"))?;
    Ok(Context {
        pool,
        config,
        keyring,
        mailer,
        worker,
        reachability: Reachability::default(),
        stop,
        attempts: TaskTracker::new(),
        slots: Arc::new(Semaphore::new(concurrency)),
        templates: Templates::new()?,
        from,
    })
}

/// The apalis handler. It always succeeds towards Redis: retries are the
/// ledger's business, so Redis never retries on its own.
///
/// The attempt runs as a task of its own: an apalis worker that loses Redis
/// drops its handlers, but sending and recording the attempt need only the
/// SMTP server and Postgres, so a send in hand is finished rather than cut
/// off and sent again later.
async fn handle(task: serde_json::Value, context: Data<Arc<Context>>) -> Result<(), BoxDynError> {
    match serde_json::from_value::<Delivery>(task) {
        Ok(delivery) => {
            let context = Arc::clone(&context);
            let Ok(slot) = Arc::clone(&context.slots).acquire_owned().await else {
                return Ok(());
            };
            let attempts = context.attempts.clone();
            let attempt = attempts.spawn(async move {
                let _slot = slot;
                deliver(&context, delivery).await;
            });
            if let Err(error) = attempt.await {
                tracing::error!(%error, job_id = delivery.job_id.0, "an attempt ended abnormally");
            }
        }
        Err(error) => tracing::error!(%error, "dropped a task that is not a delivery"),
    }
    Ok(())
}

/// Runs one attempt of one job, once the mail server answers.
pub async fn deliver(ctx: &Context, delivery: Delivery) {
    // Nothing is claimed while the mail server is away, nor while this
    // worker cannot record its heartbeat (it may be taken for dead).
    let ready = ctx.reachability.wait(&ctx.mailer, &ctx.stop).await
        && ctx.worker.liveness.wait(&ctx.stop).await;
    if !ready {
        // Stopping meanwhile: the job goes back to the relay now rather
        // than when its lease runs out.
        if let Err(error) = jobs_store::undispatched(&ctx.pool, &[HandOut::from(&delivery)]).await {
            tracing::warn!(%error, job_id = delivery.job_id.0, "cannot give a job back");
        }
        return;
    }
    let claimed = ledger::claim(&ctx.pool, &delivery, &ctx.worker.id, ctx.config.job_lease);
    let job = match claimed.await {
        Ok(Some(job)) => job,
        Ok(None) => {
            // Stale, or its kind is paused: a paused job's hand-out goes
            // back to the relay (which holds it) without counting an
            // attempt; for a stale one this changes nothing.
            tracing::debug!(job_id = delivery.job_id.0, "delivery not claimed");
            if let Err(error) =
                jobs_store::undispatched(&ctx.pool, &[HandOut::from(&delivery)]).await
            {
                tracing::warn!(%error, job_id = delivery.job_id.0, "cannot give a job back");
            }
            return;
        }
        Err(error) => {
            // The relay hands it out again when its lease runs out.
            tracing::warn!(%error, job_id = delivery.job_id.0, "cannot claim a job");
            return;
        }
    };
    if !ctx.worker.liveness.may_send() {
        // This worker may soon be taken for dead and the job handed to
        // another: sending now could send it twice.
        let cause = "the worker could not record its heartbeat; given back";
        if let Err(error) = jobs_store::give_back(&ctx.pool, &job, cause).await {
            tracing::warn!(%error, job_id = job.id.0, "cannot give a job back");
        }
        return;
    }
    let span =
        tracing::info_span!("job", job_id = job.id.0, kind = %job.kind, attempt = job.attempts);
    async {
        let work = async {
            match jobs::compose(ctx, &job).await {
                Ok(Composed::Send(email)) => match ctx.mailer.send(&ctx.from, &email).await {
                    Ok(()) => Outcome::Sent {
                        recipient: email.to.clone(),
                    },
                    Err(SendError::Unreachable(cause)) => {
                        ctx.reachability.unreachable();
                        Outcome::Unreachable(cause)
                    }
                    Err(SendError::Transient(cause)) => Outcome::Transient(cause),
                    Err(SendError::Permanent(cause)) => Outcome::Permanent(cause),
                },
                Ok(Composed::Moot(reason)) => Outcome::Moot(reason),
                Err(outcome) => outcome,
            }
        };
        // While the attempt runs, its lease is renewed: only a dead worker's
        // job runs out of lease.
        let lease = ctx.config.job_lease;
        let renew = async {
            loop {
                tokio::time::sleep(lease / 3).await;
                if let Err(error) = canopy_core::store::jobs::renew(&ctx.pool, &job, lease).await {
                    tracing::warn!(%error, "cannot renew the job's lease");
                }
            }
        };
        let outcome = tokio::select! {
            outcome = work => outcome,
            () = renew => unreachable!("renewing never ends"),
        };
        // Logged once the ledger has decided: a transient failure of the
        // last allowed attempt kills the job, and says so.
        match (ledger::finish(&ctx.pool, &job, &outcome).await, &outcome) {
            (Ok(None), _) => tracing::warn!(
                "this worker was silent too long and the job went to another; \
                 its outcome here is not recorded"
            ),
            (Ok(_), Outcome::Sent { recipient }) => {
                tracing::info!(to = %mask(recipient), "email sent");
            }
            (Ok(_), Outcome::Moot(reason)) => tracing::info!(%reason, "job is moot; nothing sent"),
            (Ok(_), Outcome::Unreachable(cause)) => {
                tracing::warn!(%cause, "mail server unreachable; the attempt is given back");
            }
            (Ok(Some(JobState::Failed)), Outcome::Transient(cause)) => {
                tracing::warn!(%cause, "attempt failed; will retry");
            }
            (Ok(_), Outcome::Transient(cause)) => {
                tracing::error!(%cause, attempts = job.attempts, "last attempt failed; job killed");
            }
            (Ok(_), Outcome::Permanent(cause)) => tracing::error!(%cause, "job failed for good"),
            (Err(error), _) => {
                tracing::error!(%error, "cannot record the outcome; the lease will retry the job");
            }
        }
    }
    .instrument(span)
    .await
}
