//! The `canopy-api` binary as an operator runs it: `create-tenant` on a fresh
//! database, then the server with no arguments, queried over HTTP with the
//! printed key, and stopped with SIGTERM.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use canopy_tests::TestDb;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_canopy-api");

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("canopy-bin-{}", random_hex()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running server; killed on drop if still running, and its log shown
/// when the test is failing.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- canopy-api log ---\n{}", self.log());
        }
    }
}

/// Runs `create-tenant` as on a fresh installation: no CANOPY_SECRET, so
/// the installation generates its own.
async fn create_tenant(db: &TestDb, admin_email: &str) -> Output {
    create_tenant_with(db, admin_email, None).await
}

async fn create_tenant_with(db: &TestDb, admin_email: &str, secret: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    match secret {
        Some(secret) => command.env("CANOPY_SECRET", secret),
        None => command.env_remove("CANOPY_SECRET"),
    };
    command
        .args(["create-tenant", "--name", "Bin Test", "--admin-email"])
        .arg(admin_email)
        .args(["--portal-url", "https://portal.bin.test"])
        .env("DATABASE_URL", db.url())
        .env_remove("CANOPY_LOG_FORMAT")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run canopy-api create-tenant")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

fn string_field<'a>(object: &'a Value, name: &str) -> &'a str {
    object[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not a string in {object}"))
}

async fn graphql(
    client: &reqwest::Client,
    base: &str,
    bearer: Option<&str>,
    query: &str,
) -> (reqwest::StatusCode, Value) {
    let mut request = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query }));
    if let Some(secret) = bearer {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

const VIEWER: &str = "{ viewer { tenant { id name } scopes } }";

#[tokio::test]
async fn create_tenant_then_serve_and_query_with_the_printed_key() {
    let db = TestDb::named();
    let scratch = TempDir::new();

    // create-tenant: one JSON object on stdout.
    let output = create_tenant(&db, "admin@bin.test").await;
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "create-tenant failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let mut values = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let created = values
        .next()
        .expect("a JSON value on stdout")
        .expect("valid JSON on stdout");
    assert!(
        values.next().is_none(),
        "more than one JSON value on stdout: {stdout}"
    );
    assert!(created.is_object(), "not a JSON object: {stdout}");
    let tenant_id = string_field(&created, "tenantId");
    string_field(&created, "adminUserId");
    let api_key = string_field(&created, "apiKey");
    let activation_link = string_field(&created, "activationLink");
    assert!(
        activation_link.starts_with("https://portal.bin.test/activate?token="),
        "{activation_link}"
    );

    // The server, on a free port.
    let namespace = RedisNamespace::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = scratch.0.join("canopy-api.log");
    let mail_dir = scratch.0.join("mail");
    let log_file = File::create(&log).expect("log file");
    let child = Command::new(BIN)
        .env("DATABASE_URL", db.url())
        .env("CANOPY_ADDR", format!("127.0.0.1:{port}"))
        .env("CANOPY_QUEUE", &namespace.0)
        .env("CANOPY_MAIL_DIR", &mail_dir)
        .env_remove("CANOPY_SECRET")
        .env_remove("CANOPY_LOG_FORMAT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start canopy-api");
    let mut server = Server { child, log };

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = server.exited() {
            panic!("canopy-api exited before serving: {status}");
        }
        let healthy = client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
        if healthy {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/healthz did not answer 200 within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The printed key works and holds every scope.
    let (status, body) = graphql(&client, &base, Some(api_key), VIEWER).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["tenant"]["id"], tenant_id, "{body}");
    assert_eq!(viewer["tenant"]["name"], "Bin Test", "{body}");
    let mut scopes: Vec<&str> = viewer["scopes"]
        .as_array()
        .unwrap_or_else(|| panic!("scopes is not a list: {body}"))
        .iter()
        .map(|s| s.as_str().expect("a scope name"))
        .collect();
    scopes.sort_unstable();
    assert_eq!(
        scopes,
        [
            "API_KEYS_WRITE",
            "CUSTOMERS_READ",
            "CUSTOMERS_WRITE",
            "JOBS_READ",
            "JOBS_WRITE",
            "USERS_READ",
            "USERS_WRITE",
        ]
    );

    // No header: an anonymous call, refused by the field.
    let (_, body) = graphql(&client, &base, None, VIEWER).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    // A bogus bearer: refused outright, well-formed or not.
    let tenant_number = api_key.split('_').nth(1).expect("cnpk_<tenant>_<secret>");
    let forged = format!("cnpk_{tenant_number}_{}{}", random_hex(), random_hex());
    for bogus in ["not-a-key", forged.as_str()] {
        let (status, body) = graphql(&client, &base, Some(bogus), VIEWER).await;
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "{bogus}: {body}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{bogus}: {body}");
    }

    // The relay and worker run in-process; without SMTP_URL the invitation
    // is written as a .eml file carrying the activation link.
    let create = r#"mutation {
      c: createCustomer(input: { title: "Bin Customer" }) { customer { id } }
    }"#;
    let (_, body) = graphql(&client, &base, Some(api_key), create).await;
    let customer = body["data"]["c"]["customer"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let invite = format!(
        r#"mutation {{ createUser(input: {{ customerId: "{customer}", email: "bin.user@bin.test",
            firstName: "Bin", activation: SEND_ACTIVATION_EMAIL }}) {{ user {{ id }} }} }}"#
    );
    let (_, body) = graphql(&client, &base, Some(api_key), &invite).await;
    assert!(body.get("errors").is_none(), "{body}");
    let started = std::time::Instant::now();
    let written = loop {
        let found = std::fs::read_dir(&mail_dir)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
            .find(|text| text.contains("bin.user@bin.test"));
        if let Some(text) = found {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no .eml file in {}",
            mail_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        written.contains("Subject: Bin Test: set up your account"),
        "{written}"
    );
    assert!(
        written.contains("https://portal.bin.test/activate?token="),
        "{written}"
    );
    assert!(written.contains("Message-ID: <canopy-job-"), "{written}");

    // The secret create-tenant generated is the one this process uses: the
    // link it printed, and the link the worker wrote, both work here.
    let unfolded = written
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let invited = unfolded
        .split("activate?token=")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| c.is_whitespace() || c == '"' || c == '<')
                .next()
        })
        .unwrap_or_else(|| panic!("no token in {written}"))
        .to_owned();
    let printed = activation_link.split("token=").nth(1).unwrap().to_owned();
    for token in [printed, invited] {
        let activate = format!(
            r#"mutation {{ activateAccount(token: "{token}", password: "a long enough password") {{ user {{ status }} }} }}"#
        );
        let (_, body) = graphql(&client, &base, None, &activate).await;
        assert_eq!(
            body["data"]["activateAccount"]["user"]["status"], "ACTIVE",
            "{token}: {body}"
        );
    }
    assert!(
        server
            .log()
            .contains("using the server secret kept in the database"),
        "{}",
        server.log()
    );

    // SIGTERM: a clean exit, promptly.
    let terminated = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(terminated.success(), "kill -TERM failed: {terminated}");
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = server.exited() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "canopy-api still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.success(),
        "canopy-api exited with {status} after SIGTERM"
    );

    drop(server);
    drop(db);
}

#[tokio::test]
async fn create_tenant_refuses_bad_input() {
    let db = TestDb::named();

    let output = create_tenant(&db, "not-an-email").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "create-tenant accepted a bad email; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.stdout.is_empty(),
        "stdout is not empty: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("adminEmail"), "stderr: {stderr}");

    // Input is checked before anything is touched: not even the database
    // was created.
    assert!(
        !db.exists().await,
        "create-tenant created a database for bad input"
    );

    drop(db);
}

#[tokio::test]
async fn fresh_installations_without_a_secret_issue_different_links() {
    let first = TestDb::named();
    let second = TestDb::named();
    let mut links = Vec::new();
    for db in [&first, &second] {
        let output = create_tenant(db, "admin@bin.test").await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("generated a 256-bit server secret"),
            "{stderr}"
        );
        let created: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        // The same tenant and token rows in both: only the secret differs.
        assert_eq!(string_field(&created, "tenantId"), "VGVuYW50OjE");
        links.push(string_field(&created, "activationLink").to_owned());
    }
    assert_ne!(links[0], links[1]);

    // A second run keeps the installation's secret: no new one is made.
    let again = create_tenant(&first, "second@bin.test").await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(!stderr.contains("generated"), "{stderr}");

    // A configured secret shorter than 256 bits is refused at start.
    let short = create_tenant_with(&first, "third@bin.test", Some("too-short")).await;
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(!short.status.success(), "a short secret was accepted");
    assert!(
        stderr.contains("CANOPY_SECRET must be at least 32 bytes"),
        "{stderr}"
    );
    drop(first);
    drop(second);
}

#[tokio::test]
async fn operators_endpoints_can_have_an_address_of_their_own() {
    let db = TestDb::named();
    let scratch = TempDir::new();
    let namespace = RedisNamespace::new();
    let (api_port, ops_port) = (free_port(), free_port());
    let log = scratch.0.join("canopy-api.log");
    let log_file = File::create(&log).expect("log file");
    let child = Command::new(BIN)
        .env("DATABASE_URL", db.url())
        .env("CANOPY_ADDR", format!("127.0.0.1:{api_port}"))
        .env("CANOPY_OPS_ADDR", format!("127.0.0.1:{ops_port}"))
        .env("CANOPY_QUEUE", &namespace.0)
        .env("CANOPY_EMBEDDED_WORKER", "false")
        .env_remove("CANOPY_SECRET")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start canopy-api");
    let mut server = Server { child, log };
    let client = reqwest::Client::new();
    let ops = format!("http://127.0.0.1:{ops_port}");
    let started = Instant::now();
    while !client
        .get(format!("{ops}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    {
        assert!(server.exited().is_none(), "canopy-api exited");
        assert!(started.elapsed() < Duration::from_secs(20), "no /healthz");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = client.get(format!("{ops}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    let api = format!("http://127.0.0.1:{api_port}");
    for path in ["/metrics", "/readyz", "/healthz"] {
        let status = client
            .get(format!("{api}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{path}");
    }
    let (_, body) = graphql(&client, &api, None, VIEWER).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let _ = server.child.kill();
    let _ = server.child.wait();
    drop(server);
    drop(db);
}

/// The Redis keys of a queue prefix, deleted when the test ends.
struct RedisNamespace(String);

impl RedisNamespace {
    fn new() -> Self {
        Self(format!("canopy-bin-{}", random_hex()))
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        )
        .and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
        let _: redis::RedisResult<()> = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{}:jobs:workers", self.0))
            .query(&mut conn);
    }
}
