//! The harness for Canopy's end-to-end tests: the real app on a database of
//! the test's own (`TestDb`), under a Redis prefix of its own,
//! spoken to as a client would: GraphQL over HTTP.

pub mod accounts;
pub mod background;
pub mod database;
pub mod ledger;
pub mod mail;
pub mod process;
pub mod redis_namespace;
pub mod redis_server;
pub mod statements;
pub mod tls;
pub mod worker_process;

pub use accounts::PASSWORD;
pub use database::TestDb;
pub use ledger::Job;
pub use redis_namespace::RedisNamespace;

/// How often tests look again for what they wait for.
pub const POLL: Duration = Duration::from_millis(50);

/// How long tests wait for something before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` until it gives `Ok`, and returns what it gave; fails the
/// test after `WAIT`, saying it waited for `what` and what `check` last saw
/// instead (its `Err`).
pub async fn eventually<T, E: std::fmt::Display>(
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    loop {
        match check().await {
            Ok(found) => return found,
            Err(seen) => assert!(
                started.elapsed() < WAIT,
                "waited {WAIT:?} for {what}; last saw: {seen}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A port nothing listens on, for now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// 64 random bits in hex, to name what is the test's own.
pub fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A scratch directory, removed with what it holds when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("canopy-test-")
        .tempdir()
        .expect("create a scratch directory")
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use canopy_api::actions::tenants::{self, CreatedTenant, NewTenant};
use canopy_api::{AppState, app};
use canopy_core::config::Config;
use canopy_core::secrets::Keyring;

/// The rate limits of test apps that do not test them: out of the way.
pub const GENEROUS_LIMIT: &str = "1000000/60";

/// Serves `state` on a free port, as `canopy-api` does (with the client's
/// address known); returns the address.
pub async fn serve(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, state)
}

/// `serve` on a listener the caller bound (to know its address first).
pub fn serve_on(listener: tokio::net::TcpListener, state: AppState) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// The media type of GraphQL responses over HTTP, and the Content-Type
/// Canopy answers with in it.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
pub const GRAPHQL_RESPONSE_JSON_UTF8: &str = "application/graphql-response+json; charset=utf-8";
/// The legacy media type, and Canopy's Content-Type in it.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The server secret of every test app: 256 bits, as the server demands.
pub const TEST_SECRET: &str = "canopy-test-secret-0123456789abcdef";
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub config: Arc<Config>,
    /// The server secrets the app makes links with.
    pub keyring: Arc<Keyring>,
    pub client: reqwest::Client,
    /// The tenant every test starts with, and its all-scopes key.
    pub tenant: CreatedTenant,
    /// The SMTP server the worker sends to, when the test has one. With
    /// one, the app checks when dropped that no job was left unfinished.
    pub smtp: Option<mail::SmtpSink>,
    worker: Option<Worker>,
    /// Set by `expect_unfinished_jobs`.
    unfinished_expected: AtomicBool,
    /// The app's Redis keys, deleted after the worker stopped.
    namespace: Option<RedisNamespace>,
}

/// The relay and worker running in the test process, on a runtime of their
/// own so they go on while the test's is blocked (by `TestApp`'s drop).
struct Worker {
    stop: CancellationToken,
    stopped: std::sync::mpsc::Receiver<()>,
    runtime: background::Background,
}

/// A GraphQL error as a caller sees it.
#[derive(Debug, Clone)]
pub struct GqlError {
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

impl TestApp {
    /// Serves the app on a free port, with one tenant ("Acme") created.
    pub async fn spawn(pool: PgPool) -> Self {
        Self::start(pool, None, None).await
    }

    /// Like `spawn`, with the relay and a worker running and sending to an
    /// SMTP server of the test's own.
    pub async fn spawn_with_mail(pool: PgPool) -> Self {
        let mut app = Self::spawn_with_mail_stopped(pool).await;
        app.start_worker();
        app
    }

    /// Like `spawn_with_mail`, but the relay and worker start only when the
    /// test calls `start_worker`: jobs wait in the ledger until then.
    pub async fn spawn_with_mail_stopped(pool: PgPool) -> Self {
        let sink = mail::SmtpSink::start().await;
        Self::start(pool, Some(sink), None).await
    }

    /// Like `spawn_with_mail`, with these environment settings over the
    /// tests' own.
    pub async fn spawn_with_mail_and_env(pool: PgPool, env: &[(&str, &str)]) -> Self {
        let sink = mail::SmtpSink::start().await;
        let mut app = Self::start_with(pool, Some(sink), None, env).await;
        app.start_worker();
        app
    }

    /// Like `spawn_with_mail_and_env`, sending to `sink` as the test set it
    /// up (the env may name a `SMTP_URL` of its own for it).
    pub async fn spawn_with_sink_and_env(
        pool: PgPool,
        sink: mail::SmtpSink,
        env: &[(&str, &str)],
    ) -> Self {
        let mut app = Self::start_with(pool, Some(sink), None, env).await;
        app.start_worker();
        app
    }

    /// Like `spawn_with_mail`, with Redis at `redis_url` (one the test runs).
    pub async fn spawn_with_mail_and_redis(pool: PgPool, redis_url: &str) -> Self {
        let sink = mail::SmtpSink::start().await;
        let mut app = Self::start(pool, Some(sink), Some(redis_url.to_owned())).await;
        app.start_worker();
        app
    }

    /// Like `spawn_with_mail_stopped`, with Redis at `redis_url` (one the
    /// test runs) and these environment settings over the tests' own.
    pub async fn spawn_with_redis_and_env_stopped(
        pool: PgPool,
        redis_url: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let sink = mail::SmtpSink::start().await;
        Self::start_with(pool, Some(sink), Some(redis_url.to_owned()), env).await
    }

    /// Starts the relay and worker (for an app spawned with them stopped).
    pub fn start_worker(&mut self) {
        self.start_worker_with(self.config.as_ref().clone());
    }

    /// Starts the relay and worker with a configuration of the test's own
    /// (e.g. another secret).
    pub fn start_worker_with(&mut self, config: Config) {
        assert!(self.worker.is_none(), "the worker runs already");
        let runtime = background::Background::new("canopy-worker");
        let stop = CancellationToken::new();
        let (done, stopped) = std::sync::mpsc::channel();
        // A pool of its own: connections serve only the runtime that made them.
        let database = self.pool.connect_options().as_ref().clone();
        let stopping = stop.clone();
        runtime.handle().spawn(async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(10)
                .connect_with(database)
                .await
                .expect("the worker connects to the test database");
            if let Err(error) = canopy_worker::run(pool, Arc::new(config), stopping).await {
                eprintln!("the worker stopped: {error:#}");
            }
            let _ = done.send(());
        });
        self.worker = Some(Worker {
            stop,
            stopped,
            runtime,
        });
    }

    /// Like `spawn`, with these environment settings over the tests' own
    /// (which raise the rate limits out of the way of other tests).
    pub async fn spawn_with_env(pool: PgPool, env: &[(&str, &str)]) -> Self {
        Self::start_with(pool, None, None, env).await
    }

    async fn start(pool: PgPool, smtp: Option<mail::SmtpSink>, redis_url: Option<String>) -> Self {
        Self::start_with(pool, smtp, redis_url, &[]).await
    }

    async fn start_with(
        pool: PgPool,
        smtp: Option<mail::SmtpSink>,
        redis_url: Option<String>,
        env: &[(&str, &str)],
    ) -> Self {
        statements::install();
        let namespace = match redis_url {
            Some(url) => RedisNamespace::on(&url, "canopy-test"),
            None => RedisNamespace::new("canopy-test"),
        };
        let smtp_url = smtp.as_ref().map(mail::SmtpSink::url);
        // Bound first, so that the links in emails name this app.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public_url = format!("http://{}", listener.local_addr().unwrap());
        let config = Arc::new(
            Config::from_lookup(|name| {
                if let Some((_, value)) = env.iter().find(|(key, _)| *key == name) {
                    return Some((*value).to_owned());
                }
                match name {
                    "CANOPY_QUEUE" => Some(namespace.name().to_owned()),
                    "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
                    "CANOPY_SECRET" => Some(TEST_SECRET.into()),
                    "SMTP_URL" => smtp_url.clone(),
                    "CANOPY_PUBLIC_URL" => Some(public_url.clone()),
                    "CANOPY_JOB_LEASE_SECONDS" => Some("5".into()),
                    "REDIS_URL" => Some(namespace.redis_url().to_owned()),
                    // The tests' client names its requests (X-Request-Id).
                    "CANOPY_TRUSTED_PROXIES" => Some("127.0.0.1".into()),
                    limit if limit.starts_with("CANOPY_LIMIT_") => Some(GENEROUS_LIMIT.into()),
                    _ => None,
                }
            })
            .expect("test configuration"),
        );
        let state = AppState::new(pool.clone(), config.clone())
            .await
            .expect("app state");
        let keyring = state.keyring.clone();
        let addr = serve_on(listener, state);
        let mut app = Self {
            addr,
            pool,
            config,
            keyring,
            client: reqwest::Client::new(),
            tenant: placeholder(),
            smtp,
            worker: None,
            unfinished_expected: AtomicBool::new(false),
            namespace: Some(namespace),
        };
        app.tenant = app.create_tenant("Acme").await;
        app
    }

    pub async fn create_tenant(&self, name: &str) -> CreatedTenant {
        self.create_tenant_with_portal(name, Some("https://portal.example.com"))
            .await
    }

    /// A tenant whose portal is `portal`, or without one Canopy's account
    /// pages on this app.
    pub async fn create_tenant_with_portal(
        &self,
        name: &str,
        portal: Option<&str>,
    ) -> CreatedTenant {
        tenants::create(
            &self.pool,
            &self.keyring,
            &self.config.public_url,
            NewTenant {
                name: name.into(),
                admin_email: format!("admin@{}.test", name.to_lowercase()),
                portal_url: portal.map(str::to_owned),
                require_approval: false,
                self_sign_up: true,
                logo_url: None,
                accent_color: None,
            },
        )
        .await
        .expect("create tenant")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts a GraphQL request with `key` (if any); returns the whole body.
    pub async fn post(&self, key: Option<&str>, query: &str, variables: Value) -> Value {
        self.post_with(key, query, variables, None).await
    }

    /// Posts a GraphQL request as a client of GraphQL over HTTP does,
    /// asking for `application/graphql-response+json`, and returns the
    /// whole body once it is sure the answer is one: in that media type,
    /// 2xx when it has `data` (execution began) and 4xx or 5xx when not.
    pub async fn post_with(
        &self,
        key: Option<&str>,
        query: &str,
        variables: Value,
        request_id: Option<&str>,
    ) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .header("accept", GRAPHQL_RESPONSE_JSON)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some(GRAPHQL_RESPONSE_JSON_UTF8),
            "{status} {body}"
        );
        assert_eq!(
            body.get("data").is_some(),
            status.is_success(),
            "data only with 2xx: {status} {body}"
        );
        body
    }

    /// Runs `query` with the tenant's key and returns `data`, failing the
    /// test on any error.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let key = self.tenant.api_key.clone();
        data_of(self.post(Some(&key), query, variables).await)
    }

    /// Runs `query` with `key` and returns `data`, failing on any error.
    pub async fn data_as(&self, key: &str, query: &str, variables: Value) -> Value {
        data_of(self.post(Some(key), query, variables).await)
    }

    /// Runs `query` with the tenant's key and returns its one error.
    pub async fn error(&self, query: &str, variables: Value) -> GqlError {
        let key = self.tenant.api_key.clone();
        error_of(self.post(Some(&key), query, variables).await)
    }

    /// Runs `query` with `key` (or none) and returns its one error.
    pub async fn error_as(&self, key: Option<&str>, query: &str, variables: Value) -> GqlError {
        error_of(self.post(key, query, variables).await)
    }

    /// Creates a customer and returns its id.
    pub async fn customer(&self, title: &str, parent: Option<&str>) -> String {
        let data = self
            .data(
                "mutation($input: CreateCustomerInput!) {
                   createCustomer(input: $input) { customer { id } } }",
                json!({ "input": { "title": title, "parentId": parent } }),
            )
            .await;
        data["createCustomer"]["customer"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an API key with `scopes` and returns its secret.
    pub async fn key_with(&self, scopes: &[&str]) -> String {
        let data = self
            .data(
                "mutation($scopes: [Scope!]!) { createApiKey(name: \"test\", scopes: $scopes) { secret } }",
                json!({ "scopes": scopes }),
            )
            .await;
        data["createApiKey"]["secret"].as_str().unwrap().to_owned()
    }

    /// Counts the rows of `table`, to prove a refused mutation changed nothing.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A digest of every row of the tenant-owned tables: equal before and
    /// after a refused mutation means nothing changed.
    pub async fn snapshot(&self) -> String {
        let mut out = String::new();
        // Every column but api_keys.last_used_at, which records reads too.
        for table in [
            "customers",
            "entitlements",
            "users",
            "customer_administrators",
            "user_tokens",
            "sessions",
            "email_claims",
            "(SELECT tenant_id, id, name, scopes, prefix, secret_hash, created_at, revoked_at
              FROM api_keys) AS keys",
            "tenant_counters",
            // What operators did to jobs (the worker changes the rest).
            "(SELECT tenant_id, id, action FROM jobs WHERE action IS NOT NULL) AS job_actions",
            "job_kind_pauses",
            "audit_entries",
        ] {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT t::text FROM (SELECT * FROM {table}) t ORDER BY t::text"
            ))
            .fetch_all(&self.pool)
            .await
            .unwrap();
            out.push_str(&format!("{table}: {rows:?}\n"));
        }
        out
    }
}

impl TestApp {
    /// The test's SMTP sink.
    pub fn mail(&self) -> &mail::SmtpSink {
        self.smtp.as_ref().expect("started with spawn_with_mail")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // While the worker still runs, so it can finish what is under way.
        let unfinished = if self.checks_jobs_at_end() {
            ledger::unfinished_after(&self.pool, ledger::END_WAIT)
        } else {
            Vec::new()
        };
        if let Some(worker) = self.worker.take() {
            worker.stop.cancel();
            let _ = worker.stopped.recv_timeout(Duration::from_secs(10));
            drop(worker.runtime);
        }
        drop(self.namespace.take());
        assert!(
            unfinished.is_empty(),
            "jobs left unfinished when the test ended (a test that means to \
             leave them says so with expect_unfinished_jobs):\n{}",
            ledger::describe(&unfinished)
        );
    }
}

fn placeholder() -> CreatedTenant {
    CreatedTenant {
        tenant_id: String::new(),
        admin_user_id: String::new(),
        api_key: String::new(),
        activation_link: String::new(),
    }
}

pub fn data_of(body: Value) -> Value {
    assert!(
        body.get("errors").is_none(),
        "unexpected errors: {}",
        serde_json::to_string_pretty(&body).unwrap()
    );
    body["data"].clone()
}

/// The `field` of every node of a connection, in order.
pub fn node_strings(connection: &Value, field: &str) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {connection}"))
        .iter()
        .map(|node| node[field].as_str().unwrap().to_owned())
        .collect()
}

/// The string at `path` in `data` (e.g. an id a mutation returned),
/// failing the test if there is none.
pub fn string_at(data: &Value, path: &[&str]) -> String {
    let mut value = data;
    for key in path {
        value = &value[*key];
    }
    value
        .as_str()
        .unwrap_or_else(|| panic!("no string at {path:?}: {data}"))
        .to_owned()
}

pub fn error_of(body: Value) -> GqlError {
    let errors = body["errors"].as_array().unwrap_or_else(|| {
        panic!(
            "expected an error, got {}",
            serde_json::to_string_pretty(&body).unwrap()
        )
    });
    assert_eq!(errors.len(), 1, "expected one error: {body}");
    let error = &errors[0];
    GqlError {
        code: error["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without a code: {error}"))
            .to_owned(),
        field: error["extensions"]["field"].as_str().map(str::to_owned),
        message: error["message"].as_str().unwrap_or_default().to_owned(),
    }
}

impl TestApp {
    /// Registers a user of the tenant directly in the database (creating
    /// users through the API belongs to the user lifecycle); returns its id.
    pub async fn insert_user(&self, email: &str, customer_id: Option<&str>) -> String {
        let tenant = global_id_number(&self.tenant.tenant_id);
        let customer = customer_id.map(global_id_number);
        let role = if customer.is_some() {
            "CUSTOMER_USER"
        } else {
            "TENANT_ADMIN"
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (tenant_id, customer_id, email, role, status)
             VALUES ($1, $2, $3, $4, 'ACTIVE') RETURNING id",
        )
        .bind(tenant)
        .bind(customer)
        .bind(email)
        .bind(role)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO email_claims (tenant_id, address, user_id) VALUES ($1, lower($2), $3)",
        )
        .bind(tenant)
        .bind(email)
        .bind(id)
        .execute(&self.pool)
        .await
        .unwrap();
        canopy_api::ids::encode(canopy_api::ids::NodeKind::User, id)
    }
}

/// The row id inside one of our global ids.
pub fn global_id_number(id: &str) -> i64 {
    canopy_api::ids::decode(id).expect("a global id").1
}

/// The `token` query parameter of an email link.
pub fn link_token(link: &str) -> String {
    let (_, query) = link.split_once("token=").expect("a link with a token");
    query.split('&').next().unwrap().to_owned()
}

/// The checked-in `schema.graphql`, parsed: what the matrix and the fuzz
/// tests are generated from.
pub fn schema_document() -> async_graphql_parser::types::ServiceDocument {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let text = std::fs::read_to_string(path).expect("schema.graphql");
    async_graphql_parser::parse_schema(&text).expect("schema.graphql parses")
}

/// The named type under any list and non-null wrappers.
pub fn base_type(ty: &async_graphql_parser::types::Type) -> String {
    match &ty.base {
        async_graphql_parser::types::BaseType::Named(name) => name.to_string(),
        async_graphql_parser::types::BaseType::List(inner) => base_type(inner),
    }
}
