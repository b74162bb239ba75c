//! Invitations under sustained load, through a schedule of real faults at
//! default settings: a worker killed, Redis killed and restarted empty,
//! the SMTP server down for 8 s, a worker stopped. Nothing is lost, a
//! duplicate is the same message (same Message-ID), and every invitation
//! arrives within seconds of its commit, not leases later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canopy_tests::redis_server::RedisServer;
use canopy_tests::worker_process::WorkerProcess;
use canopy_tests::{TestApp, TestDb};
use serde_json::{Value, json};

const INVITE: &str = "mutation($c: ID!, $e: String!) {
  createUser(input: { customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } }
}";

const CLIENTS: usize = 6;
/// The slowest commit-to-delivery allowed through every fault.
const SLOWEST: Duration = Duration::from_secs(15);
/// The shipped lease: recovery must not wait for it.
const DEFAULT_LEASE: (&str, &str) = ("CANOPY_JOB_LEASE_SECONDS", "60");

/// When each invitation was asked for, by address: its commit came later.
type Asked = Arc<Mutex<HashMap<String, Instant>>>;

/// One client creating invited users back to back until `until`.
async fn client(
    app_url: String,
    key: String,
    customer: String,
    n: usize,
    until: Instant,
    asked: Asked,
) {
    let http = reqwest::Client::new();
    let mut sent = 0;
    while Instant::now() < until {
        let email = format!("soak-{n}-{sent}@globex.test");
        let started = Instant::now();
        let body: Value = http
            .post(&app_url)
            .bearer_auth(&key)
            .json(&json!({ "query": INVITE, "variables": { "c": customer, "e": email } }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON body");
        assert!(
            body["data"]["createUser"]["user"]["id"].is_string(),
            "createUser failed during the faults: {body}"
        );
        asked.lock().unwrap().insert(email, started);
        sent += 1;
    }
}

/// Waits for the moment of the schedule: the faults come at set times
/// under the load, as in production, whatever the test has seen so far.
async fn at(start: Instant, seconds: u64) {
    tokio::time::sleep_until((start + Duration::from_secs(seconds)).into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_under_load_arrive_within_seconds_through_every_fault() {
    let db = TestDb::new().await;
    let mut redis = RedisServer::start();
    let mut app =
        TestApp::spawn_with_redis_and_env_stopped(db.pool(), &redis.url(), &[DEFAULT_LEASE]).await;
    let customer = app.customer("Globex", None).await;
    let mut first = WorkerProcess::start_with_env(&app, &[DEFAULT_LEASE]).await;
    let mut second = WorkerProcess::start_with_env(&app, &[DEFAULT_LEASE]).await;

    let start = Instant::now();
    let asked: Asked = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                app.url("/graphql"),
                app.tenant.api_key.clone(),
                customer.clone(),
                n,
                start + Duration::from_secs(28),
                asked.clone(),
            ))
        })
        .collect();

    at(start, 3).await;
    first.kill();
    let _first_again = WorkerProcess::start_with_env(&app, &[DEFAULT_LEASE]).await;
    at(start, 8).await;
    redis.stop();
    at(start, 9).await;
    redis.restart();
    at(start, 13).await;
    app.smtp.as_mut().unwrap().stop().await;
    at(start, 21).await;
    app.smtp.as_mut().unwrap().restart().await;
    at(start, 24).await;
    let stopped = second.terminate(Duration::from_secs(60)).await;
    assert!(
        stopped.success(),
        "SIGTERM stops the worker cleanly: {stopped}"
    );
    let _second_again = WorkerProcess::start_with_env(&app, &[DEFAULT_LEASE]).await;
    for client in clients {
        client.await.unwrap();
    }

    // Every invitation arrives.
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked.len() > 100,
        "the load was sustained: {} users",
        asked.len()
    );
    let mail = app.mail();
    canopy_tests::eventually("every invitation to arrive", async || {
        let received = mail.messages();
        let missing = asked
            .keys()
            .filter(|to| !received.iter().any(|m| &m.to == *to))
            .count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} of {} missing", asked.len()))
        }
    })
    .await;

    // Each within seconds of its commit; a duplicate is the same message.
    let mut latencies = Vec::new();
    let mut duplicates = 0;
    let mut messages: HashMap<String, Vec<_>> = HashMap::new();
    for message in mail.messages() {
        messages
            .entry(message.to.clone())
            .or_default()
            .push(message);
    }
    for (to, asked_at) in &asked {
        let copies = &messages[to];
        assert!(
            copies.iter().all(|m| m.message_id == copies[0].message_id),
            "copies of one invitation with different Message-IDs: {to}"
        );
        duplicates += copies.len() - 1;
        latencies.push(copies[0].accepted_at.duration_since(*asked_at));
    }
    latencies.sort();
    let slowest = *latencies.last().unwrap();
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "{} invitations through the faults: median {median:?}, slowest {slowest:?}, {duplicates} duplicates",
        latencies.len()
    );
    assert!(slowest < SLOWEST, "slowest invitation took {slowest:?}");

    // The ledger agrees: one job per invitation, each DONE once recorded.
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs as usize, asked.len());
    app.jobs_settled().await;
    let not_done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state <> 'DONE'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(not_done, 0, "every invitation's job is DONE");
}
