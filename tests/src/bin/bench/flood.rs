use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use canopy_core::config::Config;
use canopy_core::passwords;
use serde_json::{Value, json};

/// Clients sending wrong-password logins at once, each as fast as it can.
const FLOODERS: usize = 40;
/// The flood runs this long before the reader starts timing, so the
/// Argon2 queue is already full.
const RAMP: Duration = Duration::from_millis(500);
const PASSWORD: &str = "bench password 0123";
const READ: &str = "{ customers(first: 1) { totalCount } }";
const LOGIN: &str = "mutation($t: ID!, $e: String!, $p: String!) {
    login(tenantId: $t, email: $e, password: $p) { token } }";

/// A reader at rest and under a flood of wrong-password logins, and the
/// logins' throughput against what Argon2 can do on this machine.
pub async fn run() -> Result<()> {
    let seconds: f64 = super::mode_argument(10.0)?;
    let phase = Duration::from_secs_f64(seconds / 2.0);
    let url = "postgres://postgres@127.0.0.1:5432/canopy_bench_flood";
    let pool = super::fresh_database(url).await?;
    let queue = format!("canopy-bench-flood-{:08x}", rand::random::<u32>());
    // Every limit out of the way, so every login reaches Argon2.
    let config = Arc::new(Config::from_lookup(|name| match name {
        "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
        "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
        "CANOPY_QUEUE" => Some(queue.clone()),
        limit if limit.starts_with("CANOPY_LIMIT_") => Some(canopy_tests::GENEROUS_LIMIT.into()),
        _ => None,
    })?);
    let tenant = super::bench_tenant(&pool, &config).await?;
    let bench = super::serve(&pool, config.clone(), tenant.api_key.clone()).await?;
    for i in 0..200 {
        bench
            .data(
                "mutation($t: String!) { createCustomer(input: { title: $t }) { customer { id } } }",
                json!({ "t": format!("Flood Customer {i}") }),
            )
            .await?;
    }
    // The admin gets a real password, so wrong ones cost a real verify.
    bench
        .data(
            "mutation($k: String!, $p: String!) { activateAccount(token: $k, password: $p) { token } }",
            json!({ "k": canopy_tests::link_token(&tenant.activation_link), "p": PASSWORD }),
        )
        .await?;

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let argon2_rate = argon2_rate(cores, Duration::from_secs(2)).await?;
    println!("Argon2 on {cores} cores: {argon2_rate:.1} verifications/s");

    let at_rest = read_for(&bench, phase).await?;

    let stop = Instant::now() + RAMP + phase;
    let flood_began = Instant::now();
    let client = reqwest::Client::new();
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let client = client.clone();
            let url = bench.url.clone();
            let body = json!({ "query": LOGIN, "variables": {
                "t": tenant.tenant_id, "e": "admin@bench.test", "p": "wrong password 0123" } });
            tokio::spawn(async move { flood_until(&client, &url, &body, stop).await })
        })
        .collect();
    tokio::time::sleep(RAMP).await;
    let under_flood = read_for(&bench, phase).await?;
    let mut answers = BTreeMap::<String, u64>::new();
    for flooder in flooders {
        for (code, n) in flooder.await? {
            *answers.entry(code).or_default() += n;
        }
    }
    let flood_seconds = flood_began.elapsed().as_secs_f64();
    let logins: u64 = answers.values().sum();
    let login_rate = logins as f64 / flood_seconds;

    println!(
        "\n| reader, `customers(first: 1) {{ totalCount }}` | requests | p50 ms | p99 ms | max ms |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let p99_rest = summary("at rest", &at_rest);
    let p99_flood = summary(&format!("under {FLOODERS} login flooders"), &under_flood);
    println!(
        "\nlogins answered: {logins} in {flood_seconds:.1} s, {login_rate:.1}/s, {:.0} % of the Argon2 rate",
        100.0 * login_rate / argon2_rate
    );
    for (code, n) in &answers {
        println!("    {code}: {n}");
    }
    let bound = 2.0 * p99_rest + 5.0;
    println!(
        "goal: p99 under flood {p99_flood:.1} ms <= 2 x p99 at rest + 5 ms = {bound:.1} ms: {}",
        if p99_flood <= bound { "PASS" } else { "FAIL" }
    );
    super::forget_queue(&config.redis_url, &queue).await
}

/// Argon2 verifications per second with every core verifying, as the
/// ceiling for logins (whose Argon2 runs one per core).
async fn argon2_rate(cores: usize, lasting: Duration) -> Result<f64> {
    let stored = Arc::new(tokio::task::spawn_blocking(|| passwords::hash(PASSWORD)).await?);
    let began = Instant::now();
    let stop = began + lasting;
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let stored = stored.clone();
            tokio::task::spawn_blocking(move || {
                let mut done = 0u64;
                while Instant::now() < stop {
                    passwords::verify("wrong password 0123", Some(&stored));
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for worker in workers {
        done += worker.await?;
    }
    Ok(done as f64 / began.elapsed().as_secs_f64())
}

/// One caller reading sequentially for `lasting`; its latencies, sorted.
async fn read_for(bench: &super::Bench, lasting: Duration) -> Result<Vec<Duration>> {
    let stop = Instant::now() + lasting;
    let mut samples = Vec::new();
    while Instant::now() < stop {
        let began = Instant::now();
        bench.data(READ, json!({})).await?;
        samples.push(began.elapsed());
    }
    samples.sort();
    Ok(samples)
}

/// Sends `body` until `stop`, counting the answers by HTTP status and
/// error code; a failed request counts too rather than ending the flood.
async fn flood_until(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    stop: Instant,
) -> BTreeMap<String, u64> {
    let mut answers = BTreeMap::new();
    while Instant::now() < stop {
        let answer = match client.post(url).json(body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                let code = body["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or(if body["data"]["login"].is_object() {
                        "OK"
                    } else {
                        "?"
                    })
                    .to_owned();
                format!("HTTP {status} {code}")
            }
            Err(e) => format!("request failed: {e}"),
        };
        *answers.entry(answer).or_default() += 1;
    }
    answers
}

/// Prints a row of the reader's table; returns its p99 in ms.
fn summary(name: &str, sorted: &[Duration]) -> f64 {
    let p99 = super::quantile(sorted, 0.99);
    println!(
        "| {name} | {} | {:.1} | {p99:.1} | {:.1} |",
        sorted.len(),
        super::quantile(sorted, 0.5),
        super::quantile(sorted, 1.0)
    );
    p99
}
