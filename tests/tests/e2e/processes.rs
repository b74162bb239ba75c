//! Delivery across worker processes: one killed during a job, one stopped
//! and replaced, two running at once. Each email arrives; a duplicate made
//! by a fault carries the same Message-ID. Also what running many workers
//! asks of a host and of Redis: addresses of their own, and nothing left
//! behind in Redis by workers that stopped or tasks long finished.

use std::net::SocketAddr;
use std::time::Duration;

use canopy_core::config::WorkerAddr;
use canopy_tests::worker_process::WorkerProcess;
use canopy_tests::{TestApp, TestDb, eventually};
use canopy_worker::queue::APALIS_QUEUES;
use canopy_worker::retention::{REDIS_KEEPS_FINISHED, vacuum_redis};
use redis::aio::MultiplexedConnection;
use serde_json::json;

async fn invite(app: &TestApp, customer: &str, email: &str) {
    app.data(
        "mutation($c: ID!, $e: String!) {
           createUser(input: { customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({ "c": customer, "e": email }),
    )
    .await;
}

/// How long a worker may take to stop on SIGTERM or by itself.
const STOPS_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_worker_killed_during_a_job_leaves_it_to_another() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let customer = app.customer("Globex", None).await;
    // The SMTP server is slow, so the worker is killed mid-job.
    app.mail().delay(Some(2.0));
    let mut first = WorkerProcess::start(&app).await;
    invite(&app, &customer, "ann@globex.test").await;
    app.job_in_state("RUNNING").await;
    first.kill();
    app.mail().delay(None);

    let _second = WorkerProcess::start(&app).await;
    let email = app
        .mail()
        .wait_for("ann@globex.test", "set up your account")
        .await;
    app.jobs_settled().await;
    let (state, attempts): (String, i32) = sqlx::query_as("SELECT state, attempts FROM jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "DONE");
    assert!(attempts >= 2, "picked up again after the kill: {attempts}");
    // If the killed attempt got its message through too, it is the same message.
    for copy in app.mail().messages_to("ann@globex.test") {
        assert_eq!(copy.message_id, email.message_id);
        assert_eq!(copy.token(), email.token(), "the same link");
    }
}

#[tokio::test]
async fn two_workers_send_each_email_once() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let customer = app.customer("Globex", None).await;
    let _one = WorkerProcess::start(&app).await;
    let _two = WorkerProcess::start(&app).await;
    let recipients: Vec<String> = (0..20).map(|i| format!("user{i:02}@globex.test")).collect();
    for email in &recipients {
        invite(&app, &customer, email).await;
    }
    for email in &recipients {
        app.mail().wait_for(email, "set up your account").await;
    }
    app.jobs_settled().await;
    for email in &recipients {
        assert_eq!(app.mail().messages_to(email).len(), 1, "{email}");
    }
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM jobs")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
}

#[tokio::test]
async fn a_stopped_worker_loses_nothing_to_its_successor() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let customer = app.customer("Globex", None).await;
    let mut first = WorkerProcess::start(&app).await;
    invite(&app, &customer, "early@globex.test").await;
    app.mail()
        .wait_for("early@globex.test", "set up your account")
        .await;
    assert!(
        first.terminate(STOPS_WITHIN).await.success(),
        "a clean stop on SIGTERM"
    );

    // Committed while no worker runs.
    let waiting: Vec<String> = (0..5).map(|i| format!("later{i}@globex.test")).collect();
    for email in &waiting {
        invite(&app, &customer, email).await;
    }
    let _second = WorkerProcess::start(&app).await;
    for email in &waiting {
        app.mail().wait_for(email, "set up your account").await;
    }
    app.jobs_settled().await;
    for email in waiting
        .iter()
        .chain(["early@globex.test".to_owned()].iter())
    {
        assert_eq!(app.mail().messages_to(email).len(), 1, "{email}");
    }
}

async fn redis(app: &TestApp) -> MultiplexedConnection {
    redis::Client::open(app.config.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn keys(redis: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(redis)
        .await
        .unwrap()
}

async fn healthz(addr: SocketAddr) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn workers_without_an_address_start_side_by_side() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let customer = app.customer("Globex", None).await;
    let first = WorkerProcess::start_with_addr(&app, None).await;
    let first_addr = first.serving_addr().await;
    let second = WorkerProcess::start_with_addr(&app, None).await;
    let second_addr = second.serving_addr().await;

    let gave_way = |worker: &WorkerProcess| {
        worker
            .log()
            .iter()
            .any(|line| line.contains("the default CANOPY_WORKER_ADDR is taken"))
    };
    // The first takes the default unless something else on the host has it;
    // the second finds it taken either way and says where it went.
    assert!(first_addr == WorkerAddr::DEFAULT || gave_way(&first));
    assert_ne!(second_addr, WorkerAddr::DEFAULT);
    assert!(gave_way(&second), "{:?}", second.log());
    assert_ne!(first_addr, second_addr);
    assert_eq!(second_addr.ip(), WorkerAddr::DEFAULT.ip());
    for addr in [first_addr, second_addr] {
        assert_eq!(healthz(addr).await, (200, "ok".to_owned()), "{addr}");
    }
    // And both work.
    let recipients: Vec<String> = (0..6).map(|i| format!("user{i}@globex.test")).collect();
    for email in &recipients {
        invite(&app, &customer, email).await;
    }
    for email in &recipients {
        app.mail().wait_for(email, "set up your account").await;
    }
    // Each worker records its job after the SMTP server accepted it.
    app.jobs_settled().await;
}

#[tokio::test]
async fn a_worker_address_set_but_taken_stops_the_start_in_one_line() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut worker = WorkerProcess::start_with_addr(&app, Some(addr)).await;
    let status = worker.wait_exit(STOPS_WITHIN).await;
    assert!(!status.success(), "{status}");
    assert_eq!(
        worker.log(),
        [format!(
            "canopy-worker: CANOPY_WORKER_ADDR {addr} is already in use"
        )]
    );
    // It stopped before touching Redis.
    let mut redis = redis(&app).await;
    assert!(
        keys(&mut redis, &format!("{}:*", app.config.queue))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn stopped_workers_leave_nothing_of_themselves_in_redis() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let customer = app.customer("Globex", None).await;
    let mut redis = redis(&app).await;
    let workers = format!("{}:jobs:workers", app.config.queue);
    let metadata = format!("{workers}:metadata:*");
    let listed = async |redis: &mut MultiplexedConnection| -> bool {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(APALIS_QUEUES)
            .arg(&workers)
            .query_async(redis)
            .await
            .unwrap();
        score.is_some()
    };
    let registered = async |redis: &mut MultiplexedConnection| -> usize {
        redis::cmd("ZCARD")
            .arg(&workers)
            .query_async(redis)
            .await
            .unwrap()
    };

    let mut one = WorkerProcess::start(&app).await;
    let mut two = WorkerProcess::start(&app).await;
    eventually("both workers to register", async || {
        match registered(&mut redis).await {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} registered")),
        }
    })
    .await;
    invite(&app, &customer, "ann@globex.test").await;
    app.mail()
        .wait_for("ann@globex.test", "set up your account")
        .await;
    assert!(listed(&mut redis).await);
    assert_eq!(keys(&mut redis, &metadata).await.len(), 2);

    assert!(one.terminate(STOPS_WITHIN).await.success());
    // The other still runs, so the queue stays listed.
    assert_eq!(registered(&mut redis).await, 1);
    assert_eq!(keys(&mut redis, &metadata).await.len(), 1);
    assert!(listed(&mut redis).await);

    assert!(two.terminate(STOPS_WITHIN).await.success());
    assert_eq!(registered(&mut redis).await, 0);
    assert!(keys(&mut redis, &metadata).await.is_empty());
    assert!(
        !listed(&mut redis).await,
        "the last worker took the queue off"
    );
}

#[tokio::test]
async fn retention_forgets_finished_tasks_and_departed_workers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let customer = app.customer("Globex", None).await;
    let recipients: Vec<String> = (0..3).map(|i| format!("user{i}@globex.test")).collect();
    for email in &recipients {
        invite(&app, &customer, email).await;
    }
    for email in &recipients {
        app.mail().wait_for(email, "set up your account").await;
    }
    app.jobs_settled().await;

    let namespace = format!("{}:jobs", app.config.queue);
    let done = format!("{namespace}:done");
    let data = format!("{namespace}:data");
    let mut redis = redis(&app).await;
    let count = async |redis: &mut MultiplexedConnection, command: &str, key: &str| -> u64 {
        redis::cmd(command)
            .arg(key)
            .query_async(redis)
            .await
            .unwrap()
    };
    // Redis records each task as done just after its handler returns.
    eventually("the three tasks to be done in Redis", async || match count(
        &mut redis, "SCARD", &done,
    )
    .await
    {
        n if n >= 3 => Ok(()),
        n => Err(format!("{n} done")),
    })
    .await;
    assert_eq!(count(&mut redis, "HLEN", &data).await, 3);
    assert_eq!(
        keys(&mut redis, &format!("{namespace}:meta:*")).await.len(),
        3
    );
    // The metadata apalis keeps of a worker that was killed and dropped.
    let departed = format!("{namespace}:workers:metadata:canopy-killed-1");
    redis::cmd("HSET")
        .arg(&departed)
        .arg("backend_name")
        .arg("RedisStorage")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();

    // Tasks finished moments ago stay.
    assert_eq!(
        vacuum_redis(&app.config, REDIS_KEEPS_FINISHED)
            .await
            .unwrap(),
        0
    );
    assert_eq!(count(&mut redis, "SCARD", &done).await, 3);
    assert_eq!(count(&mut redis, "HLEN", &data).await, 3);
    // The departed worker's metadata went; the running worker's stays.
    assert_eq!(count(&mut redis, "EXISTS", &departed).await, 0);
    assert_eq!(
        keys(&mut redis, &format!("{namespace}:workers:metadata:*"))
            .await
            .len(),
        1
    );

    // Past their age, finished tasks go with everything kept of them.
    assert_eq!(vacuum_redis(&app.config, Duration::ZERO).await.unwrap(), 3);
    assert_eq!(count(&mut redis, "EXISTS", &done).await, 0);
    assert_eq!(count(&mut redis, "EXISTS", &data).await, 0);
    assert!(
        keys(&mut redis, &format!("{namespace}:meta:*"))
            .await
            .is_empty()
    );
    // The ledger keeps the jobs.
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'DONE'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(ledger, 3);
}

/// A worker that cannot record its heartbeat claims nothing: another
/// worker may soon take it for dead and send the same email. Once its
/// heartbeat is recorded again, it sends, once.
#[tokio::test]
async fn a_worker_that_cannot_record_its_heartbeat_claims_nothing_until_it_can() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    let customer = app.customer("Globex", None).await;
    let worker = WorkerProcess::start(&app).await;
    eventually("the worker's heartbeat", async || {
        let beats: i64 = sqlx::query_scalar("SELECT count(*) FROM worker_heartbeats")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if beats == 1 { Ok(()) } else { Err(beats) }
    })
    .await;
    for statement in [
        "CREATE FUNCTION refuse_beats() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'the heartbeat is refused'; END $$",
        "CREATE TRIGGER refuse_beats BEFORE UPDATE ON worker_heartbeats
         FOR EACH ROW EXECUTE FUNCTION refuse_beats()",
    ] {
        sqlx::query(statement).execute(&app.pool).await.unwrap();
    }
    let failed_beats = || {
        worker
            .log()
            .iter()
            .filter(|line| line.contains("cannot record the worker heartbeat"))
            .count()
    };
    // Past half the silence that gets a worker taken for dead.
    let silent_for = canopy_core::store::jobs::WORKER_SILENCE.as_secs() as usize / 2 + 1;
    eventually("the worker to fail its heartbeats", async || {
        let failed = failed_beats();
        if failed >= silent_for {
            Ok(())
        } else {
            Err(failed)
        }
    })
    .await;
    let user = crate::jobs::invite(&app, &customer, "wait@globex.test").await;
    crate::jobs::delivery_in(&app, &user, "PENDING").await;
    // Two more failed heartbeats later, the job is still not claimed.
    let seen = failed_beats();
    eventually("two more failed heartbeats", async || {
        let failed = failed_beats();
        if failed >= seen + 2 {
            Ok(())
        } else {
            Err(failed)
        }
    })
    .await;
    let waiting = crate::jobs::delivery_in(&app, &user, "PENDING").await;
    assert_eq!(waiting["attempts"], 0, "{waiting}");
    assert!(app.mail().messages_to("wait@globex.test").is_empty());

    sqlx::query("DROP TRIGGER refuse_beats ON worker_heartbeats")
        .execute(&app.pool)
        .await
        .unwrap();
    app.mail()
        .wait_for("wait@globex.test", "set up your account")
        .await;
    let done = crate::jobs::delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(app.mail().messages_to("wait@globex.test").len(), 1);
}
