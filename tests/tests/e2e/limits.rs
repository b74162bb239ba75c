//! Rate limits: guessing a password, by aliases in one request or over
//! many, gets nowhere; an address gets few emails; every process shares
//! the limits through Redis, and each still limits without it; limits come
//! from the environment; an API key's operations weigh by their cost.

use canopy_core::config::RateLimits;
use canopy_tests::{PASSWORD, TestApp, TestDb, data_of};
use serde_json::{Value, json};

const LOGIN: &str = "mutation($tenant: ID!, $email: String!, $password: String!) {
  login(tenantId: $tenant, email: $email, password: $password) { token } }";

/// The limits as shipped (the tests' apps otherwise raise them).
fn shipped() -> Vec<(&'static str, &'static str)> {
    RateLimits::SETTINGS.to_vec()
}

fn login_as(app: &TestApp, password: &str) -> Value {
    json!({ "tenant": app.tenant.tenant_id, "email": "admin@acme.test", "password": password })
}

async fn sessions(app: &TestApp) -> i64 {
    app.count("sessions").await
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

#[tokio::test]
async fn aliased_guesses_in_one_request_get_nowhere() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &shipped()).await;
    app.activate_admin().await;
    let before = sessions(&app).await;
    let mut query = String::from("mutation($tenant: ID!) {");
    for (i, password) in ["wrong 1", "wrong 2", "wrong 3", "wrong 4", PASSWORD]
        .iter()
        .enumerate()
    {
        query.push_str(&format!(
            " a{i}: login(tenantId: $tenant, email: \"admin@acme.test\", password: \"{password}\") {{ token }}"
        ));
    }
    query.push('}');
    let body = app
        .post(None, &query, json!({ "tenant": app.tenant.tenant_id }))
        .await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5, "{body}");
    assert_eq!(
        errors[0]["extensions"]["code"], "UNAUTHENTICATED",
        "the first is tried"
    );
    for error in &errors[1..] {
        assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{body}");
        assert_eq!(error["extensions"]["retryAfter"], 0);
    }
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(sessions(&app).await, before, "no session came of it");
}

#[tokio::test]
async fn repeated_guesses_are_refused_before_the_password_is_tried() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &shipped()).await;
    app.activate_admin().await;
    let before = sessions(&app).await;
    for i in 0..5 {
        let body = app
            .post(None, LOGIN, login_as(&app, &format!("wrong {i}")))
            .await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    // Even the right password: the limit holds until time passes.
    let body = app.post(None, LOGIN, login_as(&app, PASSWORD)).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    let retry = body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!((1..=60).contains(&retry), "{body}");
    assert_eq!(sessions(&app).await, before);
}

#[tokio::test]
async fn an_address_gets_at_most_the_limits_number_of_reset_emails() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail_and_env(pool, &shipped()).await;
    app.activate_admin().await;
    let reset = "mutation($t: ID!, $e: String!) { requestPasswordReset(tenantId: $t, email: $e) }";
    let mut answers = Vec::new();
    for _ in 0..5 {
        let body = app
            .post(
                None,
                reset,
                json!({ "t": app.tenant.tenant_id, "e": "admin@acme.test" }),
            )
            .await;
        answers.push(code(&body).to_owned());
    }
    assert_eq!(
        answers,
        ["none", "none", "none", "RATE_LIMITED", "RATE_LIMITED"]
    );
    // Three emails were queued; each newer link replaces the older, so
    // those still queued when a newer one came are not sent at all.
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'PASSWORD_RESET'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queued, 3);
    app.jobs_settled().await;
    let resets = app
        .mail()
        .messages_to("admin@acme.test")
        .iter()
        .filter(|m| m.subject.contains("reset"))
        .count();
    assert!((1..=3).contains(&resets), "{resets}");
}

#[tokio::test]
async fn two_processes_share_one_limit_and_each_limits_without_redis() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool.clone(), &shipped()).await;
    app.activate_admin().await;
    // A second api process of the same installation.
    let second = canopy_api::AppState::new(pool.clone(), app.config.clone())
        .await
        .unwrap();
    let second = canopy_tests::serve(second).await;
    let post_to = |addr: std::net::SocketAddr, password: String| {
        let client = app.client.clone();
        let body = json!({ "query": LOGIN, "variables": login_as(&app, &password) });
        async move {
            client
                .post(format!("http://{addr}/graphql"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    for i in 0..5 {
        let addr = if i % 2 == 0 { app.addr } else { second };
        let body = post_to(addr, format!("wrong {i}")).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    for addr in [app.addr, second] {
        let body = post_to(addr, PASSWORD.into()).await;
        assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    }

    // Without Redis, a process falls back to its own limiter: the same
    // limits, per process.
    let port = canopy_tests::free_port();
    let mut config = (*app.config).clone();
    config.redis_url = format!("redis://127.0.0.1:{port}");
    config.queue = format!("{}-alone", config.queue);
    let alone = canopy_api::AppState::new(pool, std::sync::Arc::new(config))
        .await
        .unwrap();
    let alone = canopy_tests::serve(alone).await;
    for i in 0..5 {
        let body = post_to(alone, format!("wrong {i}")).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = post_to(alone, PASSWORD.into()).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn a_limit_set_in_the_environment_takes_effect() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_LIMIT_LOGIN_CLIENT_ADDRESS", "2/60")]).await;
    app.activate_admin().await;
    let codes: Vec<String> = {
        let mut codes = Vec::new();
        for i in 0..3 {
            let body = app
                .post(None, LOGIN, login_as(&app, &format!("wrong {i}")))
                .await;
            codes.push(code(&body).to_owned());
        }
        codes
    };
    assert_eq!(
        codes,
        ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]
    );
}

#[tokio::test]
async fn a_callers_operations_weigh_by_their_cost() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_LIMIT_CALLER", "100/60")]).await;
    let query = "{ customers(first: 20) { nodes { id title } } }";
    let send = || {
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&app.tenant.api_key)
            .json(&json!({ "query": query }))
            .send()
    };
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    let cost = body["extensions"]["cost"].as_u64().unwrap();
    assert!(cost >= 20, "a page of 20 weighs at least 20: {body}");
    assert_eq!(headers["ratelimit-policy"], "\"caller\";q=100;w=60");
    let state = headers["ratelimit"].to_str().unwrap();
    assert!(
        state.starts_with(&format!("\"caller\";r={};t=", 100 - cost)),
        "{state}"
    );
    // Spend the rest: the whole request is refused with 429.
    let refused = loop {
        let response = send().await.unwrap();
        if response.status() != 200 {
            break response;
        }
    };
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry);
    // Another key has a budget of its own.
    let other = app.key_with(&["CUSTOMERS_READ"]).await;
    data_of(app.post(Some(&other), query, json!({})).await);
}

async fn login_status(app: &TestApp) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": LOGIN, "variables": login_as(app, "a wrong password") }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, response.json().await.unwrap())
}

#[tokio::test]
async fn a_request_out_of_time_is_answered_503() {
    let db = TestDb::new().await;
    let pool = db.pool();
    // A sign-in's Argon2 work alone takes longer than a millisecond.
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_REQUEST_TIMEOUT_MS", "1")]).await;
    let (status, retry, body) = login_status(&app).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert_eq!(code(&body), "UNAVAILABLE");
    assert_eq!(body["errors"][0]["message"], "the request took too long");
}

#[tokio::test]
async fn requests_beyond_those_in_flight_are_shed() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_MAX_IN_FLIGHT", "1")]).await;
    let answers = futures_join(&app, 16).await;
    let shed = answers.iter().filter(|(status, ..)| *status == 503).count();
    let served = answers.iter().filter(|(status, ..)| *status == 200).count();
    assert!(shed >= 1 && served >= 1, "{answers:?}");
    for (status, retry, body) in answers.iter().filter(|(status, ..)| *status == 503) {
        assert_eq!(retry.as_deref(), Some("1"), "{status} {body}");
        assert_eq!(body["errors"][0]["message"], "the server is busy");
    }
}

/// `n` sign-ins at once.
async fn futures_join(app: &TestApp, n: usize) -> Vec<(u16, Option<String>, Value)> {
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = app.client.clone();
        let url = app.url("/graphql");
        let body = json!({ "query": LOGIN, "variables": login_as(app, "a wrong password") });
        running.spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, retry, response.json::<Value>().await.unwrap())
        });
    }
    running.join_all().await
}

#[tokio::test]
async fn a_key_may_have_a_budget_of_its_own() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_LIMIT_CALLER", "1000/60")]).await;
    let create = "mutation($n: Int) { createApiKey(name: \"partner\", scopes: [CUSTOMERS_READ, API_KEYS_WRITE],
        rateLimitPerMinute: $n) { secret apiKey { rateLimitPerMinute } } }";
    // Bad budgets are refused with nothing made.
    let before = app.snapshot().await;
    for bad in [0, -5, 100_000_001] {
        let error = app.error(create, json!({ "n": bad })).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("rateLimitPerMinute")),
            "{bad}"
        );
    }
    assert_eq!(app.snapshot().await, before);

    let data = app.data(create, json!({ "n": 30 })).await;
    assert_eq!(data["createApiKey"]["apiKey"]["rateLimitPerMinute"], 30);
    let partner = data["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&partner)
        .json(&json!({ "query": "{ viewer { scopes } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"caller\";q=30;w=60"
    );

    // It makes no key that may spend more than itself; one it makes
    // without a budget gets its own.
    let error = app
        .error_as(Some(&partner), create, json!({ "n": 31 }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("rateLimitPerMinute"))
    );
    let data = app.data_as(&partner, create, json!({ "n": null })).await;
    assert_eq!(data["createApiKey"]["apiKey"]["rateLimitPerMinute"], 30);
}

#[tokio::test]
async fn a_search_weighs_more_than_a_page() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let cost = |body: Value| body["extensions"]["cost"].as_u64().unwrap();
    let key = app.tenant.api_key.clone();
    let page = cost(
        app.post(
            Some(&key),
            "{ customers(first: 5) { totalCount } }",
            json!({}),
        )
        .await,
    );
    let search = cost(
        app.post(
            Some(&key),
            "{ customers(first: 5, search: \"acme\") { totalCount } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(
        search - page,
        canopy_api::pagination::SEARCH_COST as u64,
        "{page} {search}"
    );
}

#[tokio::test]
async fn every_spelling_of_a_tenant_counts_against_one_account() {
    let db = TestDb::new().await;
    let pool = db.pool();
    use base64::Engine as _;
    let app = TestApp::spawn_with_env(pool, &shipped()).await;
    app.activate_admin().await;
    let number = canopy_tests::global_id_number(&app.tenant.tenant_id);
    let spell = |text: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let spellings = [
        app.tenant.tenant_id.clone(),
        format!(" {}", app.tenant.tenant_id),
        format!("{}\t", app.tenant.tenant_id),
        spell(format!("Tenant:0{number}")),
        spell(format!("Tenant:+{number}")),
    ];
    for tenant in &spellings {
        let body = app
            .post(
                None,
                LOGIN,
                json!({ "tenant": tenant, "email": "ADMIN@acme.test ", "password": "wrong" }),
            )
            .await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{tenant}: {body}");
    }
    let body = app.post(None, LOGIN, login_as(&app, PASSWORD)).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn signing_in_again_brings_no_new_budget() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_LIMIT_CALLER", "10/60")]).await;
    app.activate_admin().await;
    let session = |body: Value| data_of(body)["login"]["token"].as_str().unwrap().to_owned();
    let first = session(app.post(None, LOGIN, login_as(&app, PASSWORD)).await);
    let second = session(app.post(None, LOGIN, login_as(&app, PASSWORD)).await);
    let query = "{ customers(first: 9) { totalCount } }";
    data_of(app.post(Some(&first), query, json!({})).await);
    let body = app.post(Some(&second), query, json!({})).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn graphql_comes_as_json_only() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(r#"{"query":"mutation { requestPasswordReset(tenantId: \"x\", email: \"a@b.test\") }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "BAD_USER_INPUT");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn anonymous_operations_spend_a_budget_per_client() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_LIMIT_CALLER", "5/60")]).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(code(&app.post(None, "{ __typename }", json!({})).await).to_owned());
    }
    assert_eq!(
        codes,
        ["none", "none", "none", "none", "none", "RATE_LIMITED"]
    );
    // A key's budget is its own.
    data_of(
        app.post(Some(&app.tenant.api_key), "{ __typename }", json!({}))
            .await,
    );
}
