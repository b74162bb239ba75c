//! The email pipeline, from commit to the SMTP server's acceptance through
//! the relay, Redis and one worker: how fast invitations commit from 8
//! clients (the top rate), how long an invitation takes to arrive at half
//! that rate, and how fast one worker drains a backlog, beside lettre's own
//! rate to the same kind of server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use canopy_tests::mail::SmtpSink;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{Bench, floors};

/// Clients committing invitations at once.
const CLIENTS: usize = 8;
/// How long the paced phase lasts.
const PACED: Duration = Duration::from_secs(10);

const INVITE: &str = "mutation($c: ID!, $e: String!) { createUser(input: { customerId: $c,
    email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } } }";

pub async fn run() -> Result<()> {
    let emails: usize = super::mode_argument(2000)?;
    let sink = SmtpSink::start().await;
    let super::Fresh {
        pool,
        config,
        queue,
        bench,
        customer,
    } = super::fresh_served("canopy_bench_pipeline", Some(&sink.url())).await?;
    let lettre = floors::smtp(CLIENTS, Duration::from_secs(5)).await?;

    // 1. A backlog committed from 8 clients at full speed (the top rate),
    //    then drained by one worker.
    let started = Instant::now();
    let committed = invite(&bench, &customer, "backlog", emails, None).await?;
    let top_rate = emails as f64 / started.elapsed().as_secs_f64();
    println!("committed {emails} invitations from {CLIENTS} clients: {top_rate:.0}/s");
    drop(committed);
    let stop = CancellationToken::new();
    let drained = Instant::now();
    tokio::spawn(canopy_worker::run(
        pool.clone(),
        config.clone(),
        stop.clone(),
    ));
    sink.wait_for_count(emails).await;
    let rate = emails as f64 / drained.elapsed().as_secs_f64();
    println!(
        "one worker (concurrency {}) delivered them at {rate:.0} emails/s: {:.0} % of lettre's {:.0}/s to the same kind of server",
        config.worker_concurrency,
        100.0 * rate / lettre.per_second(),
        lettre.per_second()
    );

    // 2. Invitations at half the top rate, the worker running: commit to
    //    acceptance, counted from each request's start (the commit is
    //    inside it), so the figures lean long.
    let paced_rate = top_rate / 2.0;
    let count = (paced_rate * PACED.as_secs_f64()) as usize;
    let before = sink.received();
    let sent = invite(&bench, &customer, "paced", count, Some(paced_rate)).await?;
    sink.wait_for_count(before + count).await;
    let mut latencies = Histogram::<u64>::new(3)?;
    for message in sink.messages() {
        if let Some(began) = sent.get(&message.to) {
            latencies.record(message.accepted_at.duration_since(*began).as_micros() as u64)?;
        }
    }
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "at {paced_rate:.0} invitations/s for {} s: commit to acceptance p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} emails)",
        PACED.as_secs(),
        ms(0.5),
        ms(0.99),
        latencies.max() as f64 / 1000.0,
        latencies.len()
    );
    stop.cancel();
    let received = sink.received();
    println!(
        "the SMTP server received {received} messages for {} invitations",
        emails + count
    );
    // Leave nothing behind in Redis.
    super::forget_queue(&config.redis_url, &queue).await
}

/// Commits `count` invitations from `CLIENTS` clients, at `rate` per second
/// in all when given (else as fast as they go); answers when each request
/// began, by address.
pub async fn invite(
    bench: &Arc<Bench>,
    customer: &Value,
    label: &str,
    count: usize,
    rate: Option<f64>,
) -> Result<HashMap<String, Instant>> {
    let began = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (bench, customer) = (bench.clone(), customer.clone());
            let label = label.to_owned();
            tokio::spawn(async move {
                let mut sent = HashMap::new();
                for n in (client..count).step_by(CLIENTS) {
                    if let Some(rate) = rate {
                        let due = began + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let email = format!("{label}{n}@bench.test");
                    sent.insert(email.clone(), Instant::now());
                    bench
                        .data(INVITE, json!({ "c": customer, "e": email }))
                        .await?;
                }
                anyhow::Ok(sent)
            })
        })
        .collect();
    let mut sent = HashMap::new();
    for task in tasks {
        sent.extend(task.await??);
    }
    Ok(sent)
}
