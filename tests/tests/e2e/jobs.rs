//! The job queue for operators: states, retries, retryJob, jobQueue, and
//! delivery through real faults (an SMTP server that refuses, a Redis that
//! goes away).

use std::time::Duration;

use canopy_tests::redis_server::RedisServer;
use canopy_tests::{TestApp, TestDb, data_of, eventually};
use serde_json::{Value, json};
use sqlx::PgPool;

const INVITE: &str = "mutation($c: ID!, $e: String!) {
  createUser(input: { customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } }
}";

const DELIVERIES: &str = "query($id: ID!) {
  user(id: $id) { emailDeliveries { nodes { id kind state attempts maxAttempts lastError recipient } } }
}";

const QUEUE: &str = "query($kind: JobKind, $state: JobState) {
  jobQueue {
    activeWorkers
    kinds { kind awaitingDispatch pending running done failed killed }
    jobs(kind: $kind, state: $state, first: 10) { totalCount nodes { id kind state recipient } }
  }
}";

/// jobQueue's counters agree with the ledger itself.
async fn counts_match_ledger(app: &TestApp) {
    let counted: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, state, sum(count)::bigint FROM job_counts GROUP BY kind, state
         HAVING sum(count) <> 0 ORDER BY kind, state",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let actual: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(counted, actual);
}

pub(crate) async fn invite(app: &TestApp, customer: &str, email: &str) -> String {
    app.data(INVITE, json!({ "c": customer, "e": email })).await["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The user's one invitation job, once it is in `state`.
pub(crate) async fn delivery_in(app: &TestApp, user: &str, state: &str) -> Value {
    eventually(&format!("the job to be {state}"), async || {
        let data = app.data(DELIVERIES, json!({ "id": user })).await;
        let job = data["user"]["emailDeliveries"]["nodes"][0].clone();
        if job["state"] == state {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await
}

/// The user's one invitation job once a worker found the mail server
/// away, gave the attempt back and holds the job again (PENDING), waiting
/// for the server before it claims.
pub(crate) async fn waiting_for_the_server(app: &TestApp, user: &str) -> Value {
    eventually("the job to wait for the server", async || {
        let data = app.data(DELIVERIES, json!({ "id": user })).await;
        let job = data["user"]["emailDeliveries"]["nodes"][0].clone();
        let given_back = job["lastError"]
            .as_str()
            .is_some_and(|cause| cause.contains("connect"));
        if given_back && job["state"] == "PENDING" {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await
}

/// An app whose SMTP server refuses every message with `reply`, and
/// `email` invited; returns the app and the user's id.
async fn refused_invitation(pool: PgPool, reply: &str, email: &str) -> (TestApp, String) {
    let app = TestApp::spawn_with_mail(pool).await;
    let customer = app.customer("Globex", None).await;
    app.mail().refuse_with(Some(reply));
    let user = invite(&app, &customer, email).await;
    (app, user)
}

#[tokio::test]
async fn a_refusing_smtp_server_is_retried_until_it_accepts() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (app, user) =
        refused_invitation(pool, "451 4.3.0 mailbox busy, try later", "ann@globex.test").await;

    let failed = delivery_in(&app, &user, "FAILED").await;
    assert_eq!(failed["attempts"], 1);
    assert!(
        failed["lastError"].as_str().unwrap().contains("451"),
        "{failed}"
    );
    assert!(app.mail().messages_to("ann@globex.test").is_empty());

    app.mail().refuse_with(None);
    let email = app
        .mail()
        .wait_for("ann@globex.test", "set up your account")
        .await;
    let done = delivery_in(&app, &user, "DONE").await;
    assert!(done["attempts"].as_i64().unwrap() >= 2, "{done}");
    assert_eq!(app.mail().messages_to("ann@globex.test").len(), 1);
    assert!(email.message_id.starts_with("canopy-job-"));
}

#[tokio::test]
async fn a_permanent_refusal_kills_the_job_until_an_operator_retries_it() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let refusal = "550 5.1.1 <bob@globex.test>: no such mailbox";
    let (app, user) = refused_invitation(pool, refusal, "bob@globex.test").await;

    let killed = delivery_in(&app, &user, "KILLED").await;
    assert_eq!(killed["attempts"], 1, "no retries after a 5xx");
    let cause = killed["lastError"].as_str().unwrap();
    assert!(
        cause.contains("SMTP 550") && cause.contains("no such mailbox"),
        "{cause}"
    );
    assert!(!cause.contains("token"), "never a secret: {cause}");
    assert!(
        cause.contains("b***@globex.test") && !cause.contains("bob@"),
        "addresses masked: {cause}"
    );

    let data = app.data(QUEUE, json!({ "state": "KILLED" })).await;
    let queue = &data["jobQueue"];
    assert!(queue["activeWorkers"].as_i64().unwrap() >= 1);
    let invitations = queue["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "INVITATION")
        .unwrap();
    assert_eq!(invitations["killed"], 1);
    assert_eq!(queue["jobs"]["totalCount"], 1);
    assert_eq!(queue["jobs"]["nodes"][0]["recipient"], "bob@globex.test");

    // Only FAILED or KILLED jobs are retried.
    let retry = "mutation($id: ID!) { retryJob(id: $id) { state maxAttempts } }";
    let job_id = killed["id"].as_str().unwrap().to_owned();
    app.mail().refuse_with(None);
    let data = app.data(retry, json!({ "id": job_id })).await;
    assert_eq!(data["retryJob"]["state"], "AWAITING_DISPATCH");
    app.mail()
        .wait_for("bob@globex.test", "set up your account")
        .await;
    let done = delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 2);
    let error = app.error(retry, json!({ "id": job_id })).await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
    counts_match_ledger(&app).await;
    let error = app.error(retry, json!({ "id": user })).await;
    assert_eq!(error.code, "NOT_FOUND");
}

#[tokio::test]
async fn the_queue_is_read_with_jobs_read_and_per_tenant() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Globex", None).await;
    invite(&app, &customer, "cy@globex.test").await;
    let data = app.data(QUEUE, json!({ "kind": "INVITATION" })).await;
    let invitations = data["jobQueue"]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "INVITATION")
        .unwrap()
        .clone();
    assert_eq!(
        invitations["awaitingDispatch"], 1,
        "no relay runs in this test"
    );
    assert_eq!(data["jobQueue"]["jobs"]["totalCount"], 1);
    assert_eq!(
        data["jobQueue"]["kinds"].as_array().unwrap().len(),
        canopy_core::jobs::JobKind::ALL.len()
    );

    let reader = app.key_with(&["JOBS_READ"]).await;
    let data = app
        .data_as(&reader, "{ jobQueue { jobs { totalCount } } }", json!({}))
        .await;
    assert_eq!(data["jobQueue"]["jobs"]["totalCount"], 1);
    let other = app.create_tenant("Other").await;
    let data = app
        .data_as(
            &other.api_key,
            "{ jobQueue { jobs { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["jobQueue"]["jobs"]["totalCount"], 0,
        "another tenant's jobs are not its own"
    );
    let stranger = app.key_with(&["CUSTOMERS_READ"]).await;
    let error = app
        .error_as(Some(&stranger), "{ jobQueue { activeWorkers } }", json!({}))
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let job = data_of(app.post(Some(&app.tenant.api_key), QUEUE, json!({})).await)["jobQueue"]["jobs"]["nodes"][0]["id"].clone();
    let error = app
        .error_as(
            Some(&reader),
            "mutation($id: ID!) { retryJob(id: $id) { id } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN", "retrying needs JOBS_WRITE");
}

#[tokio::test]
async fn a_mutation_committed_while_redis_is_down_still_sends_its_email() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with_mail_and_redis(pool, &redis.url()).await;
    let customer = app.customer("Globex", None).await;
    // The pipeline works...
    invite(&app, &customer, "before@globex.test").await;
    app.mail()
        .wait_for("before@globex.test", "set up your account")
        .await;

    // ...Redis goes away, and the mutation still commits.
    redis.stop();
    let user = invite(&app, &customer, "during@globex.test").await;
    let waiting = delivery_in(&app, &user, "AWAITING_DISPATCH").await;
    assert_eq!(waiting["attempts"], 0);

    // Once Redis is back (empty), the email arrives.
    redis.restart();
    app.mail()
        .wait_for("during@globex.test", "set up your account")
        .await;
    delivery_in(&app, &user, "DONE").await;
    assert_eq!(app.mail().messages_to("during@globex.test").len(), 1);
}

#[tokio::test]
async fn retention_prunes_old_done_jobs_only() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Globex", None).await;
    for i in 0..5 {
        invite(&app, &customer, &format!("u{i}@globex.test")).await;
    }
    // Two old DONE jobs, one recent DONE, one old KILLED, one waiting.
    sqlx::query(
        "UPDATE jobs SET state = CASE WHEN id <= 3 THEN 'DONE' WHEN id = 4 THEN 'KILLED' ELSE state END,
                         updated_at = CASE WHEN id IN (1, 2, 4) THEN now() - interval '40 days' ELSE updated_at END",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let pruned = canopy_worker::retention::prune(
        &app.pool,
        Duration::from_secs(30 * 86_400),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<(i64, String)> = sqlx::query_as("SELECT id, state FROM jobs ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        [
            (3, "DONE".into()),
            (4, "KILLED".into()),
            (5, "AWAITING_DISPATCH".into())
        ]
    );
    counts_match_ledger(&app).await;
    // Folding the counters changes no sum.
    canopy_core::store::jobs::fold_counts(&app.pool)
        .await
        .unwrap();
    counts_match_ledger(&app).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM job_counts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 3, "one row per kind and state left");
}

/// Retention forgets the heartbeats of workers silent for a day, and only
/// those: jobQueue counts live workers, and the relay judges by them.
#[tokio::test]
async fn retention_forgets_heartbeats_silent_for_a_day() {
    let db = TestDb::new().await;
    let pool = db.pool();
    sqlx::query(
        "INSERT INTO worker_heartbeats (worker_id, last_seen)
         VALUES ('gone', now() - interval '25 hours'), ('here', now() - interval '23 hours')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let forgotten = canopy_core::store::jobs::forget_departed_workers(&pool)
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT worker_id FROM worker_heartbeats")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, ["here"]);
}

/// An SMTP server that cannot be reached costs no attempt: the job waits,
/// a worker probes the server about once a second, and the email goes out
/// as soon as it answers, however long it was away.
#[tokio::test]
async fn an_smtp_server_that_is_down_is_waited_for_without_spending_attempts() {
    let db = TestDb::new().await;
    let pool = db.pool();
    // Two attempts, 2 s apart: counted, they would be spent within the
    // outage below and the job killed.
    let mut app = TestApp::spawn_with_mail_and_env(pool, &[("CANOPY_JOB_MAX_ATTEMPTS", "2")]).await;
    let customer = app.customer("Globex", None).await;
    app.smtp.as_mut().unwrap().stop().await;
    let user = invite(&app, &customer, "dee@globex.test").await;
    // The attempt is given back and the job handed out again, where it
    // waits for the server without being claimed: still no attempt spent,
    // where counting them would have killed it after two.
    let waiting = waiting_for_the_server(&app, &user).await;
    assert_eq!(waiting["attempts"], 0, "{waiting}");

    app.smtp.as_mut().unwrap().restart().await;
    app.mail()
        .wait_for("dee@globex.test", "set up your account")
        .await;
    let done = delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 1, "{done}");
    // Why it took longer stays visible.
    let kept = done["lastError"].as_str().unwrap();
    assert!(kept.starts_with("sent on attempt 1; before it: "), "{kept}");
    assert!(kept.contains("connect"), "{kept}");
    assert_eq!(app.mail().messages_to("dee@globex.test").len(), 1);

    // The worker counted it: the process-wide metrics show the kind.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "canopy_jobs_enqueued_total{kind=\"INVITATION\"}",
        "canopy_jobs_given_back_total{kind=\"INVITATION\"}",
        "canopy_jobs_succeeded_total{kind=\"INVITATION\"}",
        "canopy_job_delivery_seconds_bucket{kind=\"INVITATION\"",
    ] {
        assert!(metrics.contains(expected), "{expected} in {metrics}");
    }
}

#[tokio::test]
async fn redis_forgets_tasks_finished_long_ago() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let customer = app.customer("Globex", None).await;
    invite(&app, &customer, "old@globex.test").await;
    app.mail()
        .wait_for("old@globex.test", "set up your account")
        .await;
    app.jobs_settled().await;

    let namespace = format!("{}:jobs", app.config.queue);
    let mut redis = redis::Client::open(app.config.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let carried: i64 = redis::cmd("HLEN")
        .arg(format!("{namespace}:data"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(carried, 1);
    // Nothing is old enough yet.
    let vacuum = async || {
        canopy_worker::retention::vacuum_redis(
            &app.config,
            canopy_worker::retention::REDIS_KEEPS_FINISHED,
        )
        .await
        .unwrap()
    };
    assert_eq!(vacuum().await, 0);
    // Once Redis has recorded the task as done, an hour and more ago...
    let metas: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:meta:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    for meta in &metas {
        eventually("Redis to acknowledge the task", async || {
            let status: Option<String> = redis::cmd("HGET")
                .arg(meta)
                .arg("status")
                .query_async(&mut redis)
                .await
                .unwrap();
            match status.as_deref() {
                Some("Done") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    for meta in metas {
        redis::cmd("HSET")
            .arg(&meta)
            .arg("done_at")
            .arg(1)
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
    }
    assert_eq!(vacuum().await, 1);
    let carried: i64 = redis::cmd("HLEN")
        .arg(format!("{namespace}:data"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(carried, 0);
    // The ledger keeps the job.
    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'DONE'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(done, 1);
}

#[tokio::test]
async fn a_committed_job_wakes_the_relays_and_a_refused_change_does_not() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    let customer = app.customer("Acme Retail", None).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen("canopy_jobs").await.unwrap();

    // A refused change writes no job: nothing is heard.
    let error = app
        .error(INVITE, json!({ "c": customer, "e": "not an address" }))
        .await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    let heard = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(
        heard.is_err(),
        "a refused change woke the relays: {heard:?}"
    );

    // A committed one does, on commit.
    invite(&app, &customer, "wake@globex.test").await;
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("the relays are woken")
        .unwrap();
    assert_eq!(heard.channel(), "canopy_jobs");
}

/// A Redis that restarts empty loses the tasks handed to it; the relay
/// notices (its mark in Redis is gone) and hands the pending jobs out
/// again at once, not when their leases run out.
#[tokio::test]
async fn pending_jobs_that_redis_lost_are_handed_out_again_at_once() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut redis = RedisServer::start();
    // Leases of a minute: a lost pending job would wait five of them, far
    // longer than this test waits for its email.
    let mut app = TestApp::spawn_with_redis_and_env_stopped(
        pool.clone(),
        &redis.url(),
        &[("CANOPY_JOB_LEASE_SECONDS", "60")],
    )
    .await;
    let customer = app.customer("Globex", None).await;
    let user = invite(&app, &customer, "lost@globex.test").await;

    // A relay hands the job to Redis, and Redis restarts empty before any
    // worker draws it.
    let conn = canopy_worker::queue::connect(&redis.url()).await.unwrap();
    let mut storage = canopy_worker::queue::storage(conn.clone(), &app.config);
    let mut marking = conn;
    canopy_worker::queue::mark_holding(&mut marking, &app.config)
        .await
        .unwrap();
    assert!(
        canopy_worker::queue::holds_mark(&mut marking, &app.config)
            .await
            .unwrap()
    );
    let handed = canopy_worker::relay::dispatch_due(&pool, &mut storage, &app.config)
        .await
        .unwrap();
    assert_eq!(handed, 1);
    delivery_in(&app, &user, "PENDING").await;
    redis.restart();

    app.start_worker();
    app.mail()
        .wait_for("lost@globex.test", "set up your account")
        .await;
    let done = delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 1, "a lost hand-out is not an attempt");
    assert_eq!(app.mail().messages_to("lost@globex.test").len(), 1);
}

/// A worker that loses Redis in the middle of a send finishes it: sending
/// and recording it need only the SMTP server and Postgres, and a send cut
/// off would go out again later as a duplicate.
#[tokio::test]
async fn a_send_in_hand_is_finished_when_redis_goes_away() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with_mail_and_redis(pool, &redis.url()).await;
    let customer = app.customer("Globex", None).await;
    // The SMTP server takes its time over the message.
    app.mail().delay(Some(3.0));
    let user = invite(&app, &customer, "inflight@globex.test").await;
    delivery_in(&app, &user, "RUNNING").await;
    redis.stop();

    app.mail()
        .wait_for("inflight@globex.test", "set up your account")
        .await;
    let done = delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 1, "{done}");
    redis.restart();
    app.jobs_settled().await;
    assert_eq!(app.mail().messages_to("inflight@globex.test").len(), 1);
}
