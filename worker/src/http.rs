//! What `canopy-worker` serves for operators: /healthz, /readyz (Postgres
//! and Redis reachable, else 503) and /metrics, on `CANOPY_WORKER_ADDR`
//! (unset: 127.0.0.1:9091, or a free port when another worker has it).

use std::io;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use canopy_core::config::WorkerAddr;
use canopy_core::readiness::Readiness;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct Probe {
    pub pool: PgPool,
    pub redis: redis::Client,
    pub metrics: PrometheusHandle,
}

/// Listens where `addr` says: an explicit address that is taken is an
/// error; the default one, taken, gives way to a free port on its host.
pub async fn listen(addr: WorkerAddr) -> anyhow::Result<TcpListener> {
    match addr {
        WorkerAddr::Explicit(addr) => canopy_core::listen::bind("CANOPY_WORKER_ADDR", addr).await,
        WorkerAddr::Default => listen_preferring(WorkerAddr::DEFAULT)
            .await
            .map_err(|error| {
                canopy_core::listen::refused("CANOPY_WORKER_ADDR", WorkerAddr::DEFAULT, &error)
            }),
    }
}

/// Listens on `preferred`, or on a free port of its host when it is taken.
pub async fn listen_preferring(preferred: SocketAddr) -> io::Result<TcpListener> {
    match TcpListener::bind(preferred).await {
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            let listener = TcpListener::bind(SocketAddr::new(preferred.ip(), 0)).await?;
            tracing::warn!(
                taken = %preferred,
                addr = %listener.local_addr()?,
                "the default CANOPY_WORKER_ADDR is taken (another worker?); using a free port"
            );
            Ok(listener)
        }
        bound => bound,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_preferred_address_is_used_while_free_and_a_free_port_once_taken() {
        let first = listen_preferring("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let preferred = first.local_addr().unwrap();
        let second = listen_preferring(preferred).await.unwrap();
        let fallback = second.local_addr().unwrap();
        assert_eq!(fallback.ip(), preferred.ip());
        assert_ne!(fallback.port(), preferred.port());
        drop(first);
        let again = listen_preferring(preferred).await.unwrap();
        assert_eq!(again.local_addr().unwrap(), preferred);
    }

    #[tokio::test]
    async fn an_explicit_address_taken_is_an_error_naming_it() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = listen(WorkerAddr::Explicit(addr)).await.unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!("CANOPY_WORKER_ADDR {addr} is already in use")
        );
    }
}
