//! Canopy's benchmark: seeds a tenant with a realistic customer tree (a
//! million customers by default), serves the real app, and times what
//! frontends and partners do over HTTP.
//!
//! cargo run --release -p canopy-tests --bin bench -- [customers] [database-url]
//! cargo run --release -p canopy-tests --bin bench -- pipeline [emails]
//! cargo run --release -p canopy-tests --bin bench -- jobs [rows]
//! cargo run --release -p canopy-tests --bin bench -- flood [seconds]
//!
//! The database (default `canopy_bench`) is dropped and recreated. The
//! pipeline mode times invitations from commit to the SMTP server's
//! acceptance through the relay, Redis and one worker. The flood mode times
//! a reader at rest and under a flood of wrong-password logins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use canopy_api::AppState;
use canopy_api::actions::tenants::{self, NewTenant};
use canopy_core::config::Config;
use canopy_core::secrets::Keyring;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Customers below each root, and below each of those.
const CHILDREN: i64 = 10;
const GRANDCHILDREN: i64 = 9;
/// The one large subtree: children under "Big Root", and their children.
const BIG_CHILDREN: i64 = 200;
const BIG_GRANDCHILDREN: i64 = 100;
const ITERATIONS: usize = 50;

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("pipeline") {
        return pipeline::run().await;
    }
    if std::env::args().nth(1).as_deref() == Some("jobs") {
        return ledger::run().await;
    }
    if std::env::args().nth(1).as_deref() == Some("flood") {
        return flood::run().await;
    }
    let mut args = std::env::args().skip(1);
    let customers: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/canopy_bench".to_owned());

    reset_database(&url).await?;
    let pool = canopy_core::db::connect_and_migrate(&url).await?;
    let config = Arc::new(Config::from_lookup(|name| match name {
        "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
        "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
        "CANOPY_LIMIT_CALLER" => Some(canopy_tests::GENEROUS_LIMIT.into()),
        "CANOPY_QUEUE" => Some("canopy-bench".into()),
        _ => None,
    })?);
    let tenant = bench_tenant(&pool, &config).await?;
    let tenant_id = canopy_api::ids::decode(&tenant.tenant_id)
        .context("tenant id")?
        .1;

    let started = Instant::now();
    let seeded = seed(&pool, tenant_id, customers).await?;
    println!(
        "seeded {seeded} customers in {:.1} s (roots of {} descendants, one root of {})",
        started.elapsed().as_secs_f64(),
        CHILDREN + CHILDREN * GRANDCHILDREN,
        BIG_CHILDREN + BIG_CHILDREN * BIG_GRANDCHILDREN
    );

    let bench = serve(&pool, config.clone(), tenant.api_key).await?;

    let root = bench
        .data(
            "{ customerByNumber(number: \"C-0000001\") { id } }",
            json!({}),
        )
        .await?["customerByNumber"]["id"]
        .clone();
    let big = bench
        .data("{ customerByNumber(number: \"BIG\") { id } }", json!({}))
        .await?["customerByNumber"]["id"]
        .clone();
    let deep_cursor = bench
        .data(
            "query($id: ID!) { customer(id: $id) { descendants(first: 100) { pageInfo { endCursor } } } }",
            json!({ "id": big }),
        )
        .await?["customer"]["descendants"]["pageInfo"]["endCursor"]
        .clone();

    println!(
        "\n| operation | mean ms | p50 ms | p95 ms | p99 ms |\n| --- | --- | --- | --- | --- |"
    );
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "search, selective (`C-00012`), 20 + totalCount",
            "{ customers(search: \"C-00012\", first: 20) { totalCount nodes { id number title } } }",
            json!({}),
        ),
        (
            "search, broad (`globex`), 20 + totalCount",
            "{ customers(search: \"globex\", first: 20) { totalCount nodes { id number title } } }",
            json!({}),
        ),
        (
            "search, no match (`zzqx`), totalCount",
            "{ customers(search: \"zzqx\", first: 20) { totalCount nodes { id } } }",
            json!({}),
        ),
        (
            "first page of all customers, 100",
            "{ customers(first: 100) { totalCount nodes { id number title depth } } }",
            json!({}),
        ),
        (
            "frontend tree page: 50 roots with counts, admins, 5 children each",
            "{ customers(rootsOnly: true, first: 50) { nodes { id title depth innerCustomerCount
                descendantCount administrators { email } entitlements { reference }
                innerCustomers(first: 5) { totalCount nodes { id title innerCustomerCount } } } } }",
            json!({}),
        ),
        (
            "customerByNumber with ancestors",
            "{ customerByNumber(number: \"C-0500000\") { id ancestors { title } depth } }",
            json!({}),
        ),
        (
            "descendants of a root (100), pre-order",
            "query($id: ID!) { customer(id: $id) { descendantCount descendants(first: 100) { totalCount nodes { id title depth } } } }",
            json!({ "id": root }),
        ),
        (
            "descendants of the 20,200-customer root, first 100",
            "query($id: ID!) { customer(id: $id) { descendants(first: 100) { nodes { id title depth } } } }",
            json!({ "id": big }),
        ),
        (
            "descendants of the 20,200-customer root, next 100 by cursor",
            "query($id: ID!, $after: String) { customer(id: $id) { descendants(first: 100, after: $after) { nodes { id } } } }",
            json!({ "id": big, "after": deep_cursor }),
        ),
    ];
    for (name, query, variables) in cases {
        bench.time(name, query, &variables).await?;
    }

    // Writes: creating customers, and moving a 10-customer subtree between roots.
    let create = "mutation($p: ID) { createCustomer(input: { title: \"Bench New\", parentId: $p }) { customer { id } } }";
    bench
        .time("createCustomer below a root", create, &json!({ "p": root }))
        .await?;
    let mover = bench
        .data("{ customerByNumber(number: \"C-0000002\") { innerCustomers(first: 1) { nodes { id } } } }", json!({}))
        .await?["customerByNumber"]["innerCustomers"]["nodes"][0]["id"]
        .clone();
    let other_root = bench
        .data(
            "{ customerByNumber(number: \"C-0000003\") { id } }",
            json!({}),
        )
        .await?["customerByNumber"]["id"]
        .clone();
    let targets = [other_root, root];
    let mut samples = Vec::new();
    for i in 0..ITERATIONS {
        let began = Instant::now();
        bench
            .data(
                "mutation($id: ID!, $p: ID) { moveCustomer(id: $id, newParentId: $p) { customer { depth } } }",
                json!({ "id": mover, "p": targets[i % 2] }),
            )
            .await?;
        samples.push(began.elapsed());
    }
    report("moveCustomer of a 10-customer subtree", samples);

    println!("\nplan of the broad search:");
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN WITH matches AS MATERIALIZED (SELECT c.* FROM customers c WHERE c.tenant_id = $1
           AND (c.title ILIKE '%globex%' OR c.number ILIKE '%globex%'))
         SELECT c.id FROM matches c ORDER BY c.sort_key LIMIT 21",
    )
    .bind(tenant_id)
    .fetch_all(&pool)
    .await?;
    for line in plan {
        println!("    {line}");
    }
    Ok(())
}

/// The tenant every benchmark works in.
async fn bench_tenant(pool: &PgPool, config: &Config) -> Result<tenants::CreatedTenant> {
    let keyring = Keyring::load(pool, config).await?;
    tenants::create(
        pool,
        &keyring,
        NewTenant {
            name: "Bench".into(),
            admin_email: "admin@bench.test".into(),
            portal_url: "http://localhost:3000".into(),
            require_approval: false,
            self_sign_up: true,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", tenants::describe(&e)))
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

async fn reset_database(url: &str) -> Result<()> {
    let (server, name) = url.rsplit_once('/').context("database URL")?;
    let admin = PgPool::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Seeds roots of CHILDREN × GRANDCHILDREN customers until about `total`,
/// plus one large root, with set-based SQL; returns how many were made.
async fn seed(pool: &PgPool, tenant: i64, total: i64) -> Result<i64> {
    let per_root = 1 + CHILDREN + CHILDREN * GRANDCHILDREN;
    let roots = (total / per_root).max(3);
    // Titles from a small vocabulary, so searches match many or few.
    let title = "(ARRAY['Acme','Globex','Initech','Umbrella','Hooli','Stark','Wayne','Wonka',
                        'Tyrell','Cyberdyne','Soylent','Aperture','Vandelay','Oscorp','Gringotts',
                        'Monarch','Dunder','Pied Piper','Massive','Prestige'])[1 + (g % 20)]
                 || ' ' || (ARRAY['Holdings','GmbH','Ltd','Inc','Labs','Group','Partners',
                        'Systems','Trading','Services'])[1 + (g / 20 % 10)] || ' ' || g";
    let mut tx = pool.begin().await?;
    // Level 0: ids 1..=roots.
    sqlx::query(&format!(
        "INSERT INTO customers (tenant_id, id, parent_id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE
         SELECT $1, g, NULL, g::text::ltree, lower(t) || chr(31) || n, n, t
         FROM generate_series(1, $2::bigint) g,
              LATERAL (SELECT {title} AS t, 'C-' || lpad(g::text, 7, '0') AS n) x"
    ))
    .bind(tenant)
    .bind(roots)
    .execute(&mut *tx)
    .await?;
    // Each further level hangs `per` customers below every customer of the
    // previous id range.
    let level = |from: i64, to: i64, per: i64, first_id: i64| {
        let sql = format!(
            "INSERT INTO customers (tenant_id, id, parent_id, path, tree_sort, number, title)
             OVERRIDING SYSTEM VALUE
             SELECT $1, g, p.id, p.path || g::text::ltree,
                    p.tree_sort || chr(30) || lower(t) || chr(31) || n, n, t
             FROM customers p, generate_series(1, $4::bigint) k,
                  LATERAL (SELECT $5::bigint + (p.id - $2) * $4 + k - 1 AS g) i,
                  LATERAL (SELECT {title} AS t, 'C-' || lpad(g::text, 7, '0') AS n) x
             WHERE p.tenant_id = $1 AND p.id BETWEEN $2 AND $3"
        );
        (sql, from, to, per, first_id)
    };
    let level1 = roots + 1;
    let level2 = level1 + roots * CHILDREN;
    let after = level2 + roots * CHILDREN * GRANDCHILDREN;
    for (sql, from, to, per, first) in [
        level(1, roots, CHILDREN, level1),
        level(level1, level2 - 1, GRANDCHILDREN, level2),
    ] {
        sqlx::query(&sql)
            .bind(tenant)
            .bind(from)
            .bind(to)
            .bind(per)
            .bind(first)
            .execute(&mut *tx)
            .await?;
    }
    // The large root and its subtree.
    let big = after;
    sqlx::query(
        "INSERT INTO customers (tenant_id, id, parent_id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, NULL, $2::text::ltree,
                 'big root' || chr(31) || 'BIG', 'BIG', 'Big Root')",
    )
    .bind(tenant)
    .bind(big)
    .execute(&mut *tx)
    .await?;
    let big_children = big + 1;
    let big_grandchildren = big_children + BIG_CHILDREN;
    for (sql, from, to, per, first) in [
        level(big, big, BIG_CHILDREN, big_children),
        level(
            big_children,
            big_grandchildren - 1,
            BIG_GRANDCHILDREN,
            big_grandchildren,
        ),
    ] {
        sqlx::query(&sql)
            .bind(tenant)
            .bind(from)
            .bind(to)
            .bind(per)
            .bind(first)
            .execute(&mut *tx)
            .await?;
    }
    let last = big_grandchildren + BIG_CHILDREN * BIG_GRANDCHILDREN - 1;
    sqlx::query("SELECT setval(pg_get_serial_sequence('customers', 'id'), $1)")
        .bind(last)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE tenant_counters SET customer_number = $2 WHERE tenant_id = $1")
        .bind(tenant)
        .bind(last)
        .execute(&mut *tx)
        .await?;
    // Every root has the tenant admin as administrator and an activation key.
    sqlx::query(
        "INSERT INTO customer_administrators (tenant_id, customer_id, user_id)
         SELECT $1, c.id, u.id FROM customers c, users u
         WHERE c.tenant_id = $1 AND c.parent_id IS NULL AND u.tenant_id = $1",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO entitlements (tenant_id, kind, reference, customer_id, customer_number)
         SELECT $1, 'ACTIVATION_KEY', 'KEY-' || c.id, c.id, c.number
         FROM customers c WHERE c.tenant_id = $1 AND c.parent_id IS NULL",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // What autovacuum would do after a bulk load: statistics and the
    // visibility map (for index-only counts).
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    Ok(sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(pool)
        .await?)
}

mod pipeline {
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
}

mod ledger {
    use anyhow::Result;
    use serde_json::json;

    /// jobQueue over a ledger of a million rows (by default) in one tenant.
    pub async fn run() -> Result<()> {
        let rows: i64 = std::env::args()
            .nth(2)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(1_000_000);
        let url = "postgres://postgres@127.0.0.1:5432/canopy_bench_jobs";
        super::reset_database(url).await?;
        let pool = canopy_core::db::connect_and_migrate(url).await?;
        let config = std::sync::Arc::new(canopy_core::config::Config::from_lookup(
            |name| match name {
                "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
                "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
                "CANOPY_LIMIT_CALLER" => Some(canopy_tests::GENEROUS_LIMIT.into()),
                _ => None,
            },
        )?);
        let tenant = super::bench_tenant(&pool, &config).await?;
        let tenant_id = canopy_api::ids::decode(&tenant.tenant_id).unwrap().1;
        let started = std::time::Instant::now();
        // Mostly DONE, as a ledger is; some of every other state. Loaded in
        // bulk with the counting triggers off, then counted as the migration
        // does.
        sqlx::query("ALTER TABLE jobs DISABLE TRIGGER USER")
            .execute(&pool)
            .await?;
        sqlx::query(
            "INSERT INTO jobs (tenant_id, kind, state, payload, recipient, max_attempts, attempts)
             SELECT $1,
                    (ARRAY['EMAIL_VALIDATION','INVITATION','ADMIN_NOTIFICATION','PASSWORD_RESET'])[1 + g % 4],
                    CASE WHEN g % 100 = 0 THEN 'KILLED' WHEN g % 100 = 1 THEN 'FAILED'
                         WHEN g % 100 = 2 THEN 'PENDING' WHEN g % 100 = 3 THEN 'AWAITING_DISPATCH'
                         ELSE 'DONE' END,
                    '{}'::jsonb, 'user' || g || '@bench.test', 8, 1
             FROM generate_series(1, $2::bigint) g",
        )
        .bind(tenant_id)
        .bind(rows)
        .execute(&pool)
        .await?;
        sqlx::query("ALTER TABLE jobs ENABLE TRIGGER USER")
            .execute(&pool)
            .await?;
        sqlx::query(
            "INSERT INTO job_counts (tenant_id, kind, state, count)
             SELECT tenant_id, kind, state, count(*) FROM jobs GROUP BY tenant_id, kind, state",
        )
        .execute(&pool)
        .await?;
        sqlx::query("VACUUM ANALYZE jobs").execute(&pool).await?;
        println!(
            "seeded {rows} job rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let bench = super::serve(&pool, config.clone(), tenant.api_key).await?;
        println!(
            "\n| operation | mean ms | p50 ms | p95 ms | p99 ms |\n| --- | --- | --- | --- | --- |"
        );
        bench
            .time(
                "jobQueue: counts per kind and state, active workers",
                "{ jobQueue { activeWorkers kinds { kind awaitingDispatch pending running done failed killed } } }",
                &json!({}),
            )
            .await?;
        bench
            .time(
                "jobQueue.jobs(state: KILLED, first: 20) + totalCount",
                "{ jobQueue { jobs(state: KILLED, first: 20) { totalCount nodes { id kind lastError } } } }",
                &json!({}),
            )
            .await?;
        bench
            .time(
                "jobQueue.jobs(kind: INVITATION, first: 20), newest first",
                "{ jobQueue { jobs(kind: INVITATION, first: 20) { nodes { id state } } } }",
                &json!({}),
            )
            .await?;
        Ok(())
    }
}

mod flood {
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
        let seconds: f64 = std::env::args()
            .nth(2)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(10.0);
        let phase = Duration::from_secs_f64(seconds / 2.0);
        let url = "postgres://postgres@127.0.0.1:5432/canopy_bench_flood";
        super::reset_database(url).await?;
        let pool = canopy_core::db::connect_and_migrate(url).await?;
        let queue = format!("canopy-bench-flood-{:08x}", rand::random::<u32>());
        // Every limit out of the way, so every login reaches Argon2.
        let config = Arc::new(Config::from_lookup(|name| match name {
            "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
            "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
            "CANOPY_QUEUE" => Some(queue.clone()),
            limit if limit.starts_with("CANOPY_LIMIT_") => {
                Some(canopy_tests::GENEROUS_LIMIT.into())
            }
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
}
