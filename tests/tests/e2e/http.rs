use canopy_tests::TestApp;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "canopy_core::db::MIGRATOR")]
async fn health_readiness_and_metrics_are_served(pool: PgPool) {
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

#[sqlx::test(migrator = "canopy_core::db::MIGRATOR")]
async fn readiness_fails_when_redis_is_unreachable(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // The same app, pointed at a port where no Redis listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = (*app.config).clone();
    config.redis_url = format!("redis://127.0.0.1:{port}");
    let state = canopy_api::AppState::new(pool, std::sync::Arc::new(config)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, canopy_api::app(state)).await });

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
