//! What the parts under Canopy can do on this machine, measured in the same
//! run: the scenarios are read against them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use async_graphql_axum::GraphQL;
use canopy_core::authz::Role;
use canopy_core::id::{CustomerId, TenantId};
use canopy_core::jobs::{JobKind, Payload};
use canopy_core::lifecycle::UserStatus;
use canopy_core::store::{jobs, users};
use canopy_tests::mail::SmtpSink;
use canopy_worker::mail::smtp::SmtpPool;
use hdrhistogram::Histogram;
use lettre::Message;
use serde_json::json;
use sqlx::PgPool;

use crate::load::{self, Measured, gather};

struct Hello;

#[Object]
impl Hello {
    async fn hello(&self) -> &str {
        "world"
    }
}

/// A hello-world async-graphql server on axum, in this process, driven by
/// the same clients as the scenarios.
pub async fn hello_world(clients: usize, lasting: Duration) -> Result<Measured> {
    let schema = Schema::new(Hello, EmptyMutation, EmptySubscription);
    let app = axum::Router::new().route_service("/graphql", GraphQL::new(schema));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let measured = load::drive(
        &url,
        None,
        clients,
        lasting,
        Arc::new(|_, _| json!({ "query": "{ hello }" })),
    )
    .await;
    server.abort();
    measured
}

/// Transactions per second of `pgbench -S` (select-only, 8 clients) against
/// a pgbench database made once and kept; None when pgbench is missing.
pub async fn pgbench(seconds: u64) -> Result<Option<(f64, f64)>> {
    let Ok(found) = which("pgbench") else {
        return Ok(None);
    };
    let database = "canopy_bench_pgbench";
    let admin = PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&admin)
            .await?;
        run(&found, &["-i", "-q", database]).await?;
    }
    admin.close().await;
    let out = run(
        &found,
        &[
            "-S",
            "-c",
            "8",
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            database,
        ],
    )
    .await?;
    let field = |prefix: &str| -> Result<f64> {
        let line = out
            .lines()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("no `{prefix}` in pgbench's output:\n{out}"))?;
        let number = line[prefix.len()..]
            .split_whitespace()
            .next()
            .context("pgbench number")?;
        Ok(number.parse()?)
    };
    Ok(Some((field("tps = ")?, field("latency average = ")?)))
}

fn which(program: &str) -> Result<String> {
    let out = std::process::Command::new("which").arg(program).output()?;
    anyhow::ensure!(out.status.success(), "{program} not found");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

async fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(program)
        .args(["-h", "127.0.0.1", "-U", "postgres"])
        .args(args)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// What createUser writes at the least, through the store: a user with its
/// address claimed and a job, in one transaction, from `tasks` tasks at
/// once. The rows are deleted afterwards.
pub async fn user_and_job(
    pool: &PgPool,
    tenant: TenantId,
    customer: CustomerId,
    tasks: usize,
    lasting: Duration,
) -> Result<Measured> {
    let run = format!("floor-{:08x}", rand::random::<u32>());
    let since = super::last_job(pool).await?;
    let began = Instant::now();
    let stop = began + lasting;
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let pool = pool.clone();
            let run = run.clone();
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3)?;
                let mut n = 0u64;
                while Instant::now() < stop {
                    let email = format!("{run}-{task}-{n}@bench.test");
                    let took = Instant::now();
                    let mut tx = pool.begin().await?;
                    let user = users::insert(
                        &mut tx,
                        tenant,
                        &users::NewUser {
                            customer_id: Some(customer),
                            email: &email,
                            first_name: None,
                            last_name: None,
                            phone: None,
                            role: Role::CustomerUser,
                            status: UserStatus::PendingEmailValidation,
                            external_id: None,
                        },
                    )
                    .await?;
                    jobs::enqueue(
                        &mut tx,
                        jobs::NewJob {
                            tenant_id: tenant,
                            kind: JobKind::Invitation,
                            payload: Payload::Link {
                                user_id: user.id,
                                token_id: 0,
                            },
                            recipient: &email,
                            user_id: Some(user.id),
                            customer_id: None,
                            max_attempts: 1,
                        },
                    )
                    .await?;
                    tx.commit().await?;
                    latencies.record(took.elapsed().as_micros() as u64)?;
                    n += 1;
                }
                anyhow::Ok((n, latencies))
            })
        })
        .collect();
    let measured = gather(began, workers).await?;
    super::forget_users(pool, &format!("{run}-%"), since).await?;
    Ok(measured)
}

/// Messages per second that lettre delivers to the tests' SMTP server over
/// the worker's pool of TCP_NODELAY connections, from `tasks` tasks.
pub async fn smtp(tasks: usize, lasting: Duration) -> Result<Measured> {
    let sink = SmtpSink::start().await;
    let pool = Arc::new(SmtpPool::from_url(&sink.url(), None, tasks)?);
    let message = Arc::new(
        Message::builder()
            .from("Canopy <noreply@bench.test>".parse()?)
            .to("someone@bench.test".parse()?)
            .subject("Your invitation")
            .body("Open the link to activate your account.\n".to_owned())?,
    );
    let began = Instant::now();
    let stop = began + lasting;
    let senders: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            let message = message.clone();
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3)?;
                let mut n = 0u64;
                while Instant::now() < stop {
                    let took = Instant::now();
                    pool.send(&message)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    latencies.record(took.elapsed().as_micros() as u64)?;
                    n += 1;
                }
                anyhow::Ok((n, latencies))
            })
        })
        .collect();
    let measured = gather(began, senders).await?;
    anyhow::ensure!(
        sink.messages().len() as u64 == measured.requests,
        "the SMTP server received {} of {} messages",
        sink.messages().len(),
        measured.requests
    );
    Ok(measured)
}
