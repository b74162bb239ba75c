use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use canopy_core::config::Config;
use canopy_tests::mail::SmtpSink;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub async fn run() -> Result<()> {
    let emails: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2000);
    let url = "postgres://postgres@127.0.0.1:5432/canopy_bench_pipeline";
    super::reset_database(url).await?;
    let pool = canopy_core::db::connect_and_migrate(url).await?;
    let sink = SmtpSink::start().await;
    let smtp_url = sink.url();
    let queue = format!("canopy-bench-{:08x}", rand::random::<u32>());
    let config = Arc::new(Config::from_lookup(|name| match name {
        "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
        "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
        "CANOPY_LIMIT_CALLER" => Some(canopy_tests::GENEROUS_LIMIT.into()),
        "CANOPY_QUEUE" => Some(queue.clone()),
        "SMTP_URL" => Some(smtp_url.clone()),
        _ => None,
    })?);
    let tenant = super::bench_tenant(&pool, &config).await?;
    let bench = super::serve(&pool, config.clone(), tenant.api_key).await?;
    let customer = bench
        .data(
            "mutation { createCustomer(input: { title: \"Bench\" }) { customer { id } } }",
            json!({}),
        )
        .await?["createCustomer"]["customer"]["id"]
        .clone();

    // Commit every invitation first, then let one worker drain them.
    let started = Instant::now();
    for i in 0..emails {
        bench
            .data(
                "mutation($c: ID!, $e: String!) { createUser(input: { customerId: $c, email: $e,
                   activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
                json!({ "c": customer, "e": format!("user{i}@bench.test") }),
            )
            .await?;
    }
    println!(
        "committed {emails} invitations in {:.1} s ({:.0}/s through GraphQL)",
        started.elapsed().as_secs_f64(),
        emails as f64 / started.elapsed().as_secs_f64()
    );
    let stop = CancellationToken::new();
    let drained = Instant::now();
    tokio::spawn(canopy_worker::run(
        pool.clone(),
        config.clone(),
        stop.clone(),
    ));
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'DONE'")
            .fetch_one(&pool)
            .await?;
        if done as usize >= emails {
            break;
        }
        tokio::time::sleep(canopy_tests::POLL).await;
    }
    let seconds = drained.elapsed().as_secs_f64();
    stop.cancel();
    println!(
        "one worker (concurrency {}) delivered {emails} emails in {seconds:.1} s: {:.0} emails/s",
        config.worker_concurrency,
        emails as f64 / seconds
    );
    println!(
        "the SMTP server received {} messages",
        sink.messages().len()
    );
    // Leave nothing behind in Redis.
    super::forget_queue(&config.redis_url, &queue).await
}
