//! What `canopy-worker` serves for operators: /healthz, /readyz (Postgres
//! and Redis reachable, else 503) and /metrics, on `CANOPY_WORKER_ADDR`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use canopy_core::readiness::Readiness;
use metrics_exporter_prometheus::PrometheusHandle;
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
    let readiness = Readiness::check(&probe.pool, &probe.redis).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness.report()))
}

async fn metrics(State(probe): State<Probe>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probe.metrics.render(),
    )
}
