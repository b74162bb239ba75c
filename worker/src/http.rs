//! What `canopy-worker` serves for operators: /healthz, /readyz (Postgres
//! and Redis reachable, else 503) and /metrics, on `CANOPY_WORKER_ADDR`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;

#[derive(Clone)]
pub struct Probe {
    pub pool: PgPool,
    pub redis: redis::Client,
    pub metrics: PrometheusHandle,
}

pub fn router(probe: Probe) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probe)
}

async fn readyz(State(probe): State<Probe>) -> (StatusCode, Json<serde_json::Value>) {
    let timeout = Duration::from_secs(2);
    let postgres = tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&probe.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = tokio::time::timeout(timeout, async {
        let mut conn = probe.redis.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    })
    .await
    .is_ok_and(|r| r.is_ok());
    let status = if postgres && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({ "postgres": word(postgres), "redis": word(redis) })),
    )
}

async fn metrics(State(probe): State<Probe>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probe.metrics.render(),
    )
}
