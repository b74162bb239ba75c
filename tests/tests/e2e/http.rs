use canopy_tests::{TestApp, TestDb};
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "postgres": "ok", "redis": "ok" }));

    app.data("query MetricsProbe { viewer { scopes } }", json!({}))
        .await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"canopy_graphql_requests_total{operation="MetricsProbe",outcome="ok"}"#),
        "{text}"
    );
    assert!(
        text.contains("canopy_graphql_request_duration_seconds_bucket{operation=\"MetricsProbe\"")
    );

    let graphiql = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(graphiql.status(), 200);
    assert!(graphiql.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn readiness_fails_when_redis_is_unreachable() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    // The same app, pointed at a port where no Redis listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = (*app.config).clone();
    config.redis_url = format!("redis://127.0.0.1:{port}");
    let state = canopy_api::AppState::new(pool, std::sync::Arc::new(config))
        .await
        .unwrap();
    let addr = canopy_tests::serve(state).await;

    let ready = app
        .client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "postgres": "ok", "redis": "unavailable" }));
}

#[tokio::test]
async fn deep_and_costly_queries_are_refused_before_running() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    app.customer("Acme", None).await;

    // Depth: innerCustomers nested past the limit.
    let mut deep = String::from("id");
    for _ in 0..9 {
        deep = format!("innerCustomers(first: 1) {{ nodes {{ {deep} }} }}");
    }
    let error = app
        .error(
            &format!("{{ customers(first: 1) {{ nodes {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error.code, "BAD_USER_INPUT", "{error:?}");
    assert!(error.message.contains("too deep"), "{}", error.message);

    // Cost: connections multiply by their page size.
    let costly = "{ customers(first: 100) { nodes { innerCustomers(first: 100) { nodes {
        innerCustomers(first: 100) { nodes { id } } } } } } }";
    let error = app.error(costly, json!({})).await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    assert!(error.message.contains("complex"), "{}", error.message);

    // The same shape with small pages is fine.
    let modest = "{ customers(first: 10) { nodes { innerCustomers(first: 10) { nodes {
        innerCustomers(first: 10) { nodes { id } } } } } } }";
    app.data(modest, json!({})).await;

    // Oversized bodies are refused outright.
    let huge = format!(
        "{{ customers(search: \"{}\") {{ totalCount }} }}",
        "x".repeat(300_000)
    );
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .json(&json!({ "query": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}
