//! Delivery across worker processes: one killed during a job, one stopped
//! and replaced, two running at once. Each email arrives; a duplicate made
//! by a fault carries the same Message-ID.

use std::time::{Duration, Instant};

use canopy_tests::worker_process::WorkerProcess;
use canopy_tests::{POLL, TestApp, TestDb};
use serde_json::json;

async fn invite(app: &TestApp, customer: &str, email: &str) {
    app.data(
        "mutation($c: ID!, $e: String!) {
           createUser(input: { customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({ "c": customer, "e": email }),
    )
    .await;
}

async fn wait_for_state(app: &TestApp, state: &str) {
    let started = Instant::now();
    loop {
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = $1")
            .bind(state)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if found > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no job became {state}"
        );
        tokio::time::sleep(POLL).await;
    }
}

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
    wait_for_state(&app, "RUNNING").await;
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
    assert!(first.terminate().success(), "a clean stop on SIGTERM");

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
