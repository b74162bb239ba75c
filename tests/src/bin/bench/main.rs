//! Canopy's benchmark: seeds one tenant with a million customers (kept in
//! a database of its own and reused by later runs), serves the real app,
//! and drives it over HTTP with concurrent clients; measures, in the same
//! run, what the parts under it can do on this machine.
//!
//! cargo run --release -p canopy-tests --bin bench -- [--customers N] [--seconds S]
//!     [--clients C] [--reseed]
//! cargo run --release -p canopy-tests --bin bench -- pipeline [emails]
//! cargo run --release -p canopy-tests --bin bench -- jobs [rows]
//! cargo run --release -p canopy-tests --bin bench -- flood [seconds]
//! cargo run --release -p canopy-tests --bin bench -- batch [users]
//!
//! The seeded database is `canopy_bench_1m` for a million customers
//! (`canopy_bench_10k` for 10,000, …). The pipeline mode times invitations
//! from commit to the SMTP server's acceptance through the relay, Redis and
//! one worker. The jobs mode times jobQueue over a large ledger. The flood
//! mode times a reader at rest and under a flood of wrong-password logins.
//! The batch mode compares createUsers with as many single createUser
//! calls, beside the insert floor.

mod batch;
mod flood;
mod floors;
mod ledger;
mod load;
mod pipeline;
mod scale;
mod seed;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use canopy_api::AppState;
use canopy_api::actions::tenants::{self, NewTenant};
use canopy_core::config::Config;
use canopy_core::secrets::Keyring;
use serde_json::{Value, json};
use sqlx::PgPool;

/// The allocator the binaries use, so the app measures as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ITERATIONS: usize = 50;

#[tokio::main]
async fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("pipeline") => pipeline::run().await,
        Some("jobs") => ledger::run().await,
        Some("flood") => flood::run().await,
        Some("batch") => batch::run().await,
        _ => scale::run().await,
    }
}

/// The tenant every benchmark works in.
async fn bench_tenant(pool: &PgPool, config: &Config) -> Result<tenants::CreatedTenant> {
    let keyring = Keyring::load(pool, config).await?;
    tenants::create(
        pool,
        &keyring,
        &config.public_url,
        NewTenant {
            name: "Bench".into(),
            admin_email: "admin@bench.test".into(),
            portal_url: None,
            require_approval: false,
            self_sign_up: true,
            logo_url: None,
            accent_color: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", tenants::describe(&e)))
}

/// A fresh database `name` with the bench tenant and one root customer,
/// served with the embedded worker off (mail to `smtp_url`, when given)
/// on a Redis queue of its own.
struct Fresh {
    pool: PgPool,
    config: Arc<Config>,
    queue: String,
    bench: Arc<Bench>,
    customer: Value,
}

async fn fresh_served(name: &str, smtp_url: Option<&str>) -> Result<Fresh> {
    let pool = fresh_database(&format!("postgres://postgres@127.0.0.1:5432/{name}")).await?;
    let queue = format!("canopy-bench-{:08x}", rand::random::<u32>());
    let config = served_config(&queue, smtp_url)?;
    let tenant = bench_tenant(&pool, &config).await?;
    let bench = Arc::new(serve(&pool, config.clone(), tenant.api_key).await?);
    let customer = bench
        .data(
            "mutation { createCustomer(input: { title: \"Bench\" }) { customer { id } } }",
            json!({}),
        )
        .await?["createCustomer"]["customer"]["id"]
        .clone();
    Ok(Fresh {
        pool,
        config,
        queue,
        bench,
        customer,
    })
}

/// Serves the real app on a free port and returns a client for it.
async fn serve(pool: &PgPool, config: Arc<Config>, key: String) -> Result<Bench> {
    let state = AppState::new(pool.clone(), config).await?;
    let addr = canopy_tests::serve(state).await;
    Ok(Bench {
        client: reqwest::Client::new(),
        url: format!("http://{addr}/graphql"),
        key,
    })
}

struct Bench {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Bench {
    async fn data(&self, query: &str, variables: Value) -> Result<Value> {
        let body: Value = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await?;
        if let Some(errors) = body.get("errors") {
            anyhow::bail!("{query}: {errors}");
        }
        Ok(body["data"].clone())
    }

    async fn time(&self, name: &str, query: &str, variables: &Value) -> Result<()> {
        for _ in 0..3 {
            self.data(query, variables.clone()).await?;
        }
        let mut samples = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let began = Instant::now();
            self.data(query, variables.clone()).await?;
            samples.push(began.elapsed());
        }
        report(name, samples);
        Ok(())
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| quantile(&samples, q);
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "| {name} | {mean:.1} | {:.1} | {:.1} | {:.1} |",
        at(0.5),
        at(0.95),
        at(0.99)
    );
}

/// The `q` quantile of sorted samples, in ms.
fn quantile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
}

/// Deletes a benchmark's keys under its Redis prefix, and its entry in the
/// list of queues, so runs leave nothing behind.
async fn forget_queue(redis_url: &str, queue: &str) -> Result<()> {
    let mut redis = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{queue}:*"))
        .query_async(&mut redis)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut redis)
            .await?;
    }
    redis::cmd("ZREM")
        .arg("core:apalis:queues:list")
        .arg(format!("{queue}:jobs:workers"))
        .query_async::<()>(&mut redis)
        .await?;
    Ok(())
}

/// The mode's argument (after the mode's name), or `default` without one.
fn mode_argument<T: std::str::FromStr>(default: T) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(default))
}

/// The database at `url`, made anew and migrated.
async fn fresh_database(url: &str) -> Result<PgPool> {
    reset_database(url).await?;
    canopy_core::db::connect_and_migrate(url).await
}

/// The configuration the app is served with: the embedded worker off, the
/// benchmark's secret, a queue of the run's own, and every rate limit out
/// of the way of clients at full speed.
fn served_config(queue: &str, smtp_url: Option<&str>) -> Result<Arc<Config>> {
    Ok(Arc::new(Config::from_lookup(|name| match name {
        "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
        "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
        "CANOPY_QUEUE" => Some(queue.to_owned()),
        "SMTP_URL" => smtp_url.map(str::to_owned),
        limit if limit.starts_with("CANOPY_LIMIT_") => Some("4000000000/1".into()),
        _ => None,
    })?))
}

async fn reset_database(url: &str) -> Result<()> {
    let (server, name) = url.rsplit_once('/').context("database URL")?;
    let admin = PgPool::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Deletes the users whose address matches `pattern` (LIKE) and the jobs
/// written after job `since`: what a measured run of writes left behind.
async fn forget_users(pool: &PgPool, pattern: &str, since: i64) -> Result<()> {
    sqlx::query("DELETE FROM jobs WHERE id > $1")
        .bind(since)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM users WHERE email LIKE $1")
        .bind(pattern)
        .execute(pool)
        .await?;
    Ok(())
}

/// The newest job's id, or 0.
async fn last_job(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM jobs")
        .fetch_one(pool)
        .await?)
}
