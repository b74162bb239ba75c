//! At the edge: request ids, security headers, CORS, and the switches for
//! GraphiQL and introspection.

use canopy_tests::{TestApp, TestDb};
use serde_json::{Value, json};

const VIEWER: &str = "{ viewer { scopes } }";

async fn post(app: &TestApp, request_id: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .json(&json!({ "query": VIEWER }));
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_answer_names_its_request_and_jobs_carry_it() {
    let db = TestDb::new().await;
    let pool = db.pool();
    // The tests' app trusts 127.0.0.1 as its proxy: the id it sends stands.
    let app = TestApp::spawn(pool).await;
    let response = post(&app, Some("req-abc.123")).await;
    assert_eq!(response.headers()["x-request-id"], "req-abc.123");
    let made = post(&app, None).await;
    let made = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 16, "{made}");
    // An id that is not short and plain is replaced.
    let response = post(&app, Some("bad id with spaces")).await;
    assert_ne!(response.headers()["x-request-id"], "bad id with spaces");
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(health.headers().contains_key("x-request-id"));

    let customer = app.customer("Globex", None).await;
    app.post_with(
        Some(&app.tenant.api_key),
        "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"ann@globex.test\",
           activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({ "c": customer }),
        Some("req-invite-1"),
    )
    .await;
    let data = app
        .data(
            "{ jobQueue { jobs(first: 10) { nodes { kind requestId } } } }",
            json!({}),
        )
        .await;
    let jobs = data["jobQueue"]["jobs"]["nodes"].as_array().unwrap();
    assert!(!jobs.is_empty());
    for job in jobs {
        assert_eq!(job["requestId"], "req-invite-1", "{job}");
    }
}

#[tokio::test]
async fn a_client_that_is_no_trusted_proxy_cannot_name_its_request() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_env(pool, &[("CANOPY_TRUSTED_PROXIES", "10.9.9.9")]).await;
    let response = post(&app, Some("chosen-by-client")).await;
    assert_ne!(response.headers()["x-request-id"], "chosen-by-client");
}

#[tokio::test]
async fn answers_carry_security_headers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let response = post(&app, None).await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unpkg") && !csp.contains("https:"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
}

/// Every `src="…"` and `href="…"` in a page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    found
}

#[tokio::test]
async fn graphiql_loads_only_what_this_server_serves() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("http"), "no URL elsewhere: {html}");
    let assets: Vec<String> = references(&html)
        .into_iter()
        .filter(|url| url != "data:,")
        .collect();
    for name in [
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
        "mount.js",
    ] {
        assert!(
            assets.iter().any(|a| a.ends_with(&format!("/{name}"))),
            "{name}: {html}"
        );
    }
    for url in &assets {
        assert!(url.starts_with("/graphiql/"), "{url}");
        let response = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let expected = if url.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(response.headers()["content-type"], expected, "{url}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(!response.bytes().await.unwrap().is_empty(), "{url}");
    }
    let missing = app
        .client
        .get(app.url("/graphiql/3.9.0/nothing.js"))
        .send()
        .await;
    assert_eq!(missing.unwrap().status(), 404);
    drop(app);

    let closed = TestApp::spawn_with_env(pool, &[("CANOPY_GRAPHIQL", "false")]).await;
    for url in &assets {
        let response = closed.client.get(closed.url(url)).send().await.unwrap();
        assert!(
            [404, 405].contains(&response.status().as_u16()),
            "{url}: {}",
            response.status()
        );
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn browsers_may_call_only_from_the_origins_allowed() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let closed = TestApp::spawn(pool.clone()).await;
    let response = preflight(&closed, "https://app.example").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    drop(closed);

    let app =
        TestApp::spawn_with_env(pool, &[("CANOPY_CORS_ORIGINS", "https://app.example")]).await;
    let allowed = preflight(&app, "https://app.example").await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(&app, "https://evil.example").await;
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn graphiql_and_introspection_can_be_switched_off() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let open = TestApp::spawn(pool.clone()).await;
    let body = open
        .post(
            Some(&open.tenant.api_key),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert!(
        body["data"]["__schema"]["types"].is_array(),
        "on by default: {body}"
    );
    drop(open);
    let app = TestApp::spawn_with_env(
        pool,
        &[
            ("CANOPY_GRAPHIQL", "false"),
            ("CANOPY_INTROSPECTION", "false"),
        ],
    )
    .await;
    // GET /graphql is then GraphQL alone, and a GET without a query is a
    // request error, not a page.
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert_eq!(
        page.headers()["content-type"],
        canopy_tests::GRAPHQL_RESPONSE_JSON_UTF8
    );
    let body: Value = page.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["message"], "the request has no query",
        "{body}"
    );
    assert!(body.get("data").is_none(), "{body}");
    let body: Value = app
        .post(
            Some(&app.tenant.api_key),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["__schema"], Value::Null, "{body}");
    // The API itself still answers.
    canopy_tests::data_of(app.post(Some(&app.tenant.api_key), VIEWER, json!({})).await);
}
