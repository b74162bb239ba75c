//! The `canopy-api` binary as an operator runs it: `create-tenant` on a fresh
//! database, then the server with no arguments, queried over HTTP with the
//! printed key, and stopped with SIGTERM.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use canopy_tests::process::Process;
use canopy_tests::{RedisNamespace, TestDb, eventually, free_port, random_hex, scratch_dir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_canopy-api");

/// Starts the server on `db`, under a Redis prefix of the test's own, with
/// no CANOPY_SECRET (the installation keeps its own) and `env`.
fn serve(db: &TestDb, namespace: &RedisNamespace, env: &[(&str, &str)]) -> Process {
    let mut command = Command::new(BIN);
    command
        .env("DATABASE_URL", db.url())
        .env("CANOPY_QUEUE", namespace.name())
        .env_remove("CANOPY_SECRET")
        .env_remove("CANOPY_LOG_FORMAT")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    Process::spawn("canopy-api", command)
}

/// Waits until `url` answers 200, failing as soon as the server exits.
async fn wait_until_ok(server: &mut Process, client: &reqwest::Client, url: &str) {
    eventually(&format!("{url} to answer 200"), async || {
        if let Some(status) = server.exited() {
            panic!("canopy-api exited before serving: {status}");
        }
        let response = client.get(url).timeout(Duration::from_secs(1)).send().await;
        match response {
            Ok(response) if response.status() == reqwest::StatusCode::OK => Ok(()),
            Ok(response) => Err(response.status().to_string()),
            Err(error) => Err(error.to_string()),
        }
    })
    .await
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
    let scratch = scratch_dir();

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
    let namespace = RedisNamespace::new("canopy-bin");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mail_dir = scratch.path().join("mail");
    let addr = format!("127.0.0.1:{port}");
    let mail_dir_env = mail_dir.to_str().unwrap();
    let mut server = serve(
        &db,
        &namespace,
        &[("CANOPY_ADDR", &addr), ("CANOPY_MAIL_DIR", mail_dir_env)],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    wait_until_ok(&mut server, &client, &format!("{base}/healthz")).await;

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
    let written = eventually("the invitation as a .eml file", async || {
        std::fs::read_dir(&mail_dir)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
            .find(|text| text.contains("bin.user@bin.test"))
            .ok_or_else(|| format!("nothing for bin.user@bin.test in {}", mail_dir.display()))
    })
    .await;
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
            .log_text()
            .contains("using the server secret kept in the database"),
        "{}",
        server.log_text()
    );

    // SIGTERM: a clean exit, promptly.
    let status = server.terminate(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "canopy-api exited with {status} after SIGTERM"
    );
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
}

#[tokio::test]
async fn operators_endpoints_can_have_an_address_of_their_own() {
    let db = TestDb::named();
    let namespace = RedisNamespace::new("canopy-bin");
    let (api_port, ops_port) = (free_port(), free_port());
    let (api_addr, ops_addr) = (
        format!("127.0.0.1:{api_port}"),
        format!("127.0.0.1:{ops_port}"),
    );
    let mut server = serve(
        &db,
        &namespace,
        &[
            ("CANOPY_ADDR", &api_addr),
            ("CANOPY_OPS_ADDR", &ops_addr),
            ("CANOPY_EMBEDDED_WORKER", "false"),
        ],
    );
    let client = reqwest::Client::new();
    let ops = format!("http://{ops_addr}");
    wait_until_ok(&mut server, &client, &format!("{ops}/healthz")).await;
    let metrics = client.get(format!("{ops}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    let api = format!("http://{api_addr}");
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
}
