//! The benchmark at scale: a seeded tenant (kept and reused), the real app
//! on a free port, and concurrent clients per scenario against the floors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use canopy_api::ids::{self, NodeKind};
use canopy_core::config::Config;
use canopy_core::id::{CustomerId, TenantId};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::floors;
use crate::load::{self, Measured};
use crate::seed::{self, Shape};

/// The 3-letter term searched for ("Initech" is one title in 20).
const SEARCH: &str = "ini";

struct Options {
    customers: i64,
    seconds: f64,
    clients: usize,
    reseed: bool,
}

fn options() -> Result<Options> {
    let mut options = Options {
        customers: 1_000_000,
        seconds: 10.0,
        clients: 32,
        reseed: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--customers" => options.customers = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            "--clients" => options.clients = value()?.parse()?,
            "--reseed" => options.reseed = true,
            other => bail!(
                "unknown argument {other}: expected --customers N, --seconds S, --clients C, --reseed"
            ),
        }
    }
    Ok(options)
}

/// The database a scale is kept in: canopy_bench_1m, canopy_bench_10k, …
fn database_name(customers: i64) -> String {
    match customers {
        n if n % 1_000_000 == 0 => format!("canopy_bench_{}m", n / 1_000_000),
        n if n % 1_000 == 0 => format!("canopy_bench_{}k", n / 1_000),
        n => format!("canopy_bench_{n}"),
    }
}

/// A table row: what was measured, and against which floor.
struct Row {
    name: String,
    clients: usize,
    per_second: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    floor: Option<(&'static str, f64)>,
}

impl Row {
    fn of(name: &str, clients: usize, m: &Measured) -> Self {
        Row {
            name: name.to_owned(),
            clients,
            per_second: m.per_second(),
            p50: Some(m.ms(0.5)),
            p99: Some(m.ms(0.99)),
            floor: None,
        }
    }

    fn against(mut self, floor: &'static str, rate: f64) -> Self {
        self.floor = Some((floor, rate));
        self
    }

    fn print(&self) {
        let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
        let ratio = self.floor.map_or(String::new(), |(name, rate)| {
            format!("{:.0} % of {name}", 100.0 * self.per_second / rate)
        });
        println!(
            "| {} | {} | {:.0} | {} | {} | {ratio} |",
            self.name,
            self.clients,
            self.per_second,
            ms(self.p50),
            ms(self.p99)
        );
    }
}

pub async fn run() -> Result<()> {
    let options = options()?;
    let lasting = Duration::from_secs_f64(options.seconds);
    let shape = Shape::for_customers(options.customers);
    let name = database_name(options.customers);
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let (pool, tenant, key) = open_or_seed(&url, &shape, options.reseed).await?;

    let queue = format!("canopy-bench-{:08x}", rand::random::<u32>());
    let config = super::served_config(&queue, None)?;
    let bench = super::serve(&pool, config.clone(), key.clone()).await?;
    compare_with_api(&bench, &pool, tenant, &shape).await?;

    // What the scenarios ask about.
    let sample: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM customers TABLESAMPLE SYSTEM (1) WHERE tenant_id = $1 LIMIT 1000",
    )
    .bind(tenant.0)
    .fetch_all(&pool)
    .await?;
    ensure!(!sample.is_empty(), "no customers sampled");
    let sample: Arc<Vec<String>> = Arc::new(
        sample
            .into_iter()
            .map(|id| ids::encode(NodeKind::Customer, id))
            .collect(),
    );
    let big: i64 =
        sqlx::query_scalar("SELECT id FROM customers WHERE tenant_id = $1 AND title = 'Big Root'")
            .bind(tenant.0)
            .fetch_one(&pool)
            .await?;
    let big = ids::encode(NodeKind::Customer, big);
    let last_cursor = last_page_cursor(&bench, &big).await?;

    let clients = options.clients;
    let drive = |body: load::Body, clients: usize| {
        let url = bench.url.clone();
        let key = key.clone();
        async move { load::drive(&url, Some(&key), clients, lasting, body).await }
    };
    let mut rows = Vec::new();

    println!("floors ({clients} clients, {:.0} s each):", options.seconds);
    let hello = floors::hello_world(clients, lasting).await?;
    let pgbench = floors::pgbench(options.seconds.ceil() as u64).await?;
    let customer: CustomerId = CustomerId(
        sqlx::query_scalar(
            "SELECT id FROM customers WHERE tenant_id = $1 AND parent_id IS NULL LIMIT 1",
        )
        .bind(tenant.0)
        .fetch_one(&pool)
        .await?,
    );
    let insert_floor = floors::user_and_job(&pool, tenant, customer, 8, lasting).await?;
    let smtp = floors::smtp(8, lasting.min(Duration::from_secs(5))).await?;

    println!("scenarios:");
    let ids = sample.clone();
    let descendants = "query($id: ID!, $after: String) { customer(id: $id) {
        descendants(first: 100, after: $after) { nodes { id title depth } pageInfo { endCursor } } } }";
    let page_of = |after: Value| -> load::Body {
        let big = big.clone();
        Arc::new(
            move |_, _| json!({ "query": descendants, "variables": { "id": big, "after": after } }),
        )
    };
    let reads: Vec<(String, load::Body)> = vec![
        (
            "customer(id), API key".into(),
            Arc::new(move |client, n| {
                json!({ "query": "query($id: ID!) { customer(id: $id) { id number title depth } }",
                        "variables": { "id": ids[(client * 7919 + n as usize) % ids.len()] } })
            }),
        ),
        (
            "tree page: 50 roots, counts, administrators, 5 children".into(),
            Arc::new(|_, _| {
                json!({ "query": "{ customers(rootsOnly: true, first: 50) { nodes { id title
                    innerCustomerCount descendantCount administrators { email }
                    innerCustomers(first: 5) { nodes { id title } } } } }" })
            }),
        ),
        (
            "descendants(first: 100) of the 20,000, first page".into(),
            page_of(Value::Null),
        ),
        (
            "descendants(first: 100) of the 20,000, last page".into(),
            page_of(Value::String(last_cursor.clone())),
        ),
        (
            format!("search `{SEARCH}` with totalCount, 20"),
            Arc::new(|_, _| {
                json!({ "query": "query($s: String!) { customers(search: $s, first: 20) {
                            totalCount nodes { id number title } } }",
                        "variables": { "s": SEARCH } })
            }),
        ),
    ];
    // Each read from `clients` clients (what the machine serves), then
    // from one (what one person waits, with nothing queued before them).
    for concurrency in [clients, 1] {
        for (name, body) in &reads {
            let m = drive(body.clone(), concurrency).await?;
            let row = Row::of(name, concurrency, &m);
            rows.push(if name.starts_with("customer(id)") {
                row.against("hello world", hello.per_second())
            } else {
                row
            });
        }
    }

    let moves = subtrees(&bench, &pool, tenant, &big, drive(reads[0].1.clone(), 8)).await?;

    // Last: the invitations' jobs pile up in the ledger (no worker runs);
    // they and the users are deleted afterwards.
    let run = format!("invited-{:08x}", rand::random::<u32>());
    let since = super::last_job(&pool).await?;
    let ids = sample.clone();
    let invited = run.clone();
    let create = drive(
        Arc::new(move |client, n| {
            json!({ "query": "mutation($c: ID!, $e: String!) { createUser(input: {
                        customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
                    "variables": { "c": ids[(client * 31 + n as usize) % ids.len()],
                                   "e": format!("{invited}-{client}-{n}@bench.test") } })
        }),
        8,
    )
    .await?;
    super::forget_users(&pool, &format!("{run}-%"), since).await?;
    super::forget_queue(&config.redis_url, &queue).await?;
    rows.push(
        Row::of("createUser with an invitation email", 8, &create)
            .against("user + job insert", insert_floor.per_second()),
    );

    let mut floor_rows = vec![
        Row::of("floor: hello-world async-graphql on axum", clients, &hello),
        Row::of(
            "floor: user + job insert through the store, one transaction",
            8,
            &insert_floor,
        ),
        Row::of("floor: lettre to the SMTP sink, TCP_NODELAY", 8, &smtp),
    ];
    match pgbench {
        Some((tps, latency)) => floor_rows.push(Row {
            name: format!("floor: `pgbench -S -c 8 -j 2` (average latency {latency:.3} ms)"),
            clients: 8,
            per_second: tps,
            p50: None,
            p99: None,
            floor: None,
        }),
        None => println!("pgbench is not installed: its floor is skipped"),
    }

    println!(
        "\n{} customers ({} in the forest, one root of {}), {} users; {:.0} s per scenario\n",
        shape.customers(),
        shape.forest,
        seed::big_subtree(),
        shape.users,
        options.seconds
    );
    println!("| scenario | clients | req/s | p50 ms | p99 ms | against its floor |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in rows.iter().chain(&floor_rows) {
        row.print();
    }
    println!("\n{moves}");
    println!(
        "peak resident memory of this process (the app, its clients and the floors): {:.0} MiB",
        peak_resident_mib()?
    );
    Ok(())
}

/// Moves the big root's 20,000-customer subtree under another root and
/// back, and cascade-deletes a 10,000-customer subtree made for it, each
/// timed, while `reads` (customer(id) on other subtrees) go on; what the
/// reads saw meanwhile.
async fn subtrees(
    bench: &super::Bench,
    pool: &PgPool,
    tenant: TenantId,
    big: &str,
    reads: impl std::future::Future<Output = Result<Measured>>,
) -> Result<String> {
    let other: i64 = sqlx::query_scalar(
        "SELECT id FROM customers WHERE tenant_id = $1 AND parent_id IS NULL
           AND title <> 'Big Root' ORDER BY id LIMIT 1",
    )
    .bind(tenant.0)
    .fetch_one(pool)
    .await?;
    let other = ids::encode(NodeKind::Customer, other);
    // 10,000 customers under one new root, written as an import would
    // (after any left by an interrupted run).
    sqlx::query("DELETE FROM customers WHERE tenant_id = $1 AND number LIKE 'D-%'")
        .bind(tenant.0)
        .execute(pool)
        .await?;
    let doomed: i64 = sqlx::query_scalar(
        "WITH made AS (SELECT nextval(pg_get_serial_sequence('customers', 'id')) AS id)
         INSERT INTO customers (tenant_id, id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE
         SELECT $1, id, id::text::ltree, 'doomed' || chr(31) || 'D-0', 'D-0', 'Doomed' FROM made
         RETURNING id",
    )
    .bind(tenant.0)
    .fetch_one(pool)
    .await?;
    sqlx::query(
        "WITH made AS (SELECT nextval(pg_get_serial_sequence('customers', 'id')) AS id, n
                       FROM generate_series(1, 9999) AS n)
         INSERT INTO customers (tenant_id, id, parent_id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE
         SELECT $1, m.id, $2, ($2::text || '.' || m.id)::ltree,
                'doomed' || chr(31) || 'D-0' || chr(30) || 'leaf ' || m.n || chr(31) || 'D-' || m.n,
                'D-' || m.n, 'Leaf ' || m.n
         FROM made m",
    )
    .bind(tenant.0)
    .bind(doomed)
    .execute(pool)
    .await?;
    let doomed = ids::encode(NodeKind::Customer, doomed);
    let timed = |query: &'static str, variables: Value| async move {
        let began = Instant::now();
        bench.data(query, variables).await?;
        anyhow::Ok(began.elapsed().as_secs_f64() * 1000.0)
    };
    let move_to = "mutation($id: ID!, $to: ID) { moveCustomer(id: $id, newParentId: $to) { customer { id } } }";
    // The reads run for the whole scenario; the changes start with them.
    let changes = async {
        let away = timed(move_to, json!({ "id": big, "to": other })).await?;
        let back = timed(move_to, json!({ "id": big, "to": Value::Null })).await?;
        let deleted = timed(
            "mutation($id: ID!) { deleteCustomer(id: $id, cascade: true) { deletedCustomerIds } }",
            json!({ "id": doomed }),
        )
        .await?;
        anyhow::Ok((away, back, deleted))
    };
    let (reads, changes) = tokio::join!(reads, changes);
    let (reads, (away, back, deleted)) = (reads?, changes?);
    Ok(format!(
        "moving the 20,000-customer subtree: {away:.0} ms, and back: {back:.0} ms; \
         cascade-deleting a 10,000-customer subtree: {deleted:.0} ms; \
         customer(id) elsewhere from 8 clients meanwhile: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        reads.ms(0.5),
        reads.ms(0.99),
        reads.latencies.max() as f64 / 1000.0
    ))
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_resident_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .context("VmHWM in /proc/self/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

/// The seeded database when it holds this shape and version, else a new
/// one seeded and checked; the pool, the tenant and its API key.
async fn open_or_seed(
    url: &str,
    shape: &Shape,
    reseed: bool,
) -> Result<(PgPool, TenantId, String)> {
    let migration = canopy_core::db::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    if !reseed && let Some(kept) = kept(url, shape, migration).await? {
        return Ok(kept);
    }
    super::reset_database(url).await?;
    let pool = canopy_core::db::connect_and_migrate(url).await?;
    let config = Config::from_lookup(|name| match name {
        "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
        _ => None,
    })?;
    let tenant = super::bench_tenant(&pool, &config).await?;
    let tenant_id = ids::tenant(&tenant.tenant_id).context("tenant id")?;
    let started = Instant::now();
    let count = seed::seed(&pool, tenant_id.0, shape).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "seeded {count} customers and {} users in {seconds:.1} s",
        shape.users
    );
    let checked = Instant::now();
    seed::check(&pool, tenant_id.0, shape).await?;
    println!("invariants hold ({:.1} s)", checked.elapsed().as_secs_f64());
    sqlx::query(
        "CREATE TABLE bench_seed (version int NOT NULL, forest bigint NOT NULL,
             migration bigint NOT NULL, tenant_id bigint NOT NULL, api_key text NOT NULL,
             seconds double precision NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await?;
    sqlx::query("INSERT INTO bench_seed (version, forest, migration, tenant_id, api_key, seconds) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(seed::VERSION)
        .bind(shape.forest)
        .bind(migration)
        .bind(tenant_id.0)
        .bind(&tenant.api_key)
        .bind(seconds)
        .execute(&pool)
        .await?;
    Ok((pool, tenant_id, tenant.api_key))
}

/// The kept database, when its marker says it holds this seed.
async fn kept(
    url: &str,
    shape: &Shape,
    migration: i64,
) -> Result<Option<(PgPool, TenantId, String)>> {
    let (server, name) = url.rsplit_once('/').context("database URL")?;
    let admin = PgPool::connect(&format!("{server}/postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&admin)
            .await?;
    admin.close().await;
    if !exists {
        return Ok(None);
    }
    let pool = PgPool::connect(url).await?;
    let marker: Option<(i32, i64, i64, i64, String, f64)> = sqlx::query_as(
        "SELECT version, forest, migration, tenant_id, api_key, seconds FROM bench_seed",
    )
    .fetch_optional(&pool)
    .await
    .unwrap_or(None);
    match marker {
        Some((version, forest, kept_migration, tenant, key, seconds))
            if version == seed::VERSION
                && forest == shape.forest
                && kept_migration == migration =>
        {
            println!(
                "reusing {name}: seed version {version}, seeded in {seconds:.1} s (--reseed seeds again)"
            );
            Ok(Some((pool, TenantId(tenant), key)))
        }
        _ => {
            println!("{name} holds another seed: seeding again");
            pool.close().await;
            Ok(None)
        }
    }
}

/// The last page's `after` cursor of the big root's descendants, by
/// following the cursors once.
async fn last_page_cursor(bench: &super::Bench, big: &str) -> Result<String> {
    let mut after: Option<String> = None;
    loop {
        let page = bench
            .data(
                "query($id: ID!, $after: String) { customer(id: $id) { descendants(first: 100, after: $after) {
                    pageInfo { hasNextPage endCursor } } } }",
                json!({ "id": big, "after": after }),
            )
            .await?;
        let info = &page["customer"]["descendants"]["pageInfo"];
        if !info["hasNextPage"].as_bool().context("hasNextPage")? {
            return after.context("the big root has one page of descendants");
        }
        after = Some(info["endCursor"].as_str().context("endCursor")?.to_owned());
    }
}

/// Customers created through the real API, below a seeded customer and as
/// a root, must meet the invariants the seed is checked against, with
/// numbers that continue the seed's; they are deleted afterwards.
async fn compare_with_api(
    bench: &super::Bench,
    pool: &PgPool,
    tenant: TenantId,
    shape: &Shape,
) -> Result<()> {
    let (parent, counter): (i64, i64) = sqlx::query_as(
        "SELECT c.id, t.customer_number FROM customers c JOIN tenant_counters t USING (tenant_id)
         WHERE c.tenant_id = $1 AND nlevel(c.path) = 3 LIMIT 1",
    )
    .bind(tenant.0)
    .fetch_one(pool)
    .await?;
    let create =
        "mutation($t: String!, $p: ID) { createCustomer(input: { title: $t, parentId: $p }) {
        customer { id number } } }";
    let mut made = Vec::new();
    for (title, parent) in [
        (
            "Initech Labs API",
            Some(ids::encode(NodeKind::Customer, parent)),
        ),
        ("Acme Root API", None),
    ] {
        let customer = bench
            .data(create, json!({ "t": title, "p": parent }))
            .await?["createCustomer"]["customer"]
            .clone();
        made.push(customer);
    }
    // The counter continues where the seed left it.
    ensure!(
        made[0]["number"] == json!(format!("C-{:06}", counter + 1)),
        "the API numbered {} after the seed's counter {counter}",
        made[0]["number"]
    );
    let started = Instant::now();
    seed::check(pool, tenant.0, shape).await?;
    println!(
        "invariants hold, with customers made through the API ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for customer in made {
        bench
            .data(
                "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
                json!({ "id": customer["id"] }),
            )
            .await?;
    }
    Ok(())
}
