//! The HTTP application: `app(state)` builds the router (tests use it
//! without a socket), `run` serves it until SIGTERM.

use std::sync::Arc;

use anyhow::{Context, Result};
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderValue;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Extension, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::auth::{self, AuthError};
use crate::error::retry_after_seconds;
use crate::graphql::throttle::RequestBudget;
use crate::graphql::{self, CanopySchema, loaders::Loaders};
use crate::limits::{self, Limiter, Verdict};
use canopy_core::config::Config;
use canopy_core::readiness::Readiness;
use canopy_core::secrets::Keyring;
use canopy_core::{db, shutdown};

/// The largest request body accepted, in bytes.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: redis::Client,
    pub config: Arc<Config>,
    /// The server secrets that make and rebuild email links.
    pub keyring: Arc<Keyring>,
    /// Rate limits, shared through Redis.
    pub limiter: Arc<Limiter>,
    pub schema: CanopySchema,
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// The state of one process: its keyring comes from the configuration
    /// or, without `CANOPY_SECRET`, from the database.
    pub async fn new(pool: PgPool, config: Arc<Config>) -> Result<Self> {
        let redis =
            redis::Client::open(config.redis_url.as_str()).context("REDIS_URL is invalid")?;
        let keyring = Arc::new(Keyring::load(&pool, &config).await?);
        let limiter = Arc::new(Limiter::new(&config, redis.clone()));
        Ok(Self {
            pool,
            redis,
            config,
            keyring,
            limiter,
            schema: graphql::schema(),
            metrics: canopy_core::metrics::install(),
        })
    }
}

pub fn app(state: AppState) -> Router {
    // GraphQL requests are bounded in time and in number at once; what is
    // over either is answered 503 at once, never queued without end.
    let bounded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(unavailable))
        .load_shed()
        .concurrency_limit(state.config.max_in_flight)
        .timeout(state.config.request_timeout);
    Router::new()
        .route(
            "/graphql",
            get(graphiql).post(graphql_handler).layer(bounded),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// A request id from `x-request-id` (if sane) or a fresh one, for the logs.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand_id()))
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn graphql_handler(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let span = tracing::info_span!("graphql_request", request_id = %request_id(&headers));
    async move {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = match auth::authenticate(&state.pool, authorization).await {
            Ok(caller) => caller,
            Err(AuthError::Invalid) => {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "the bearer secret is not a valid API key or session",
                );
            }
            Err(AuthError::Database(error)) => {
                tracing::error!(%error, "cannot authenticate");
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "INTERNAL",
                    "internal error",
                );
            }
        };
        let client = limits::client_address(
            connection.map(|Extension(ConnectInfo(addr))| addr.ip()),
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            &state.config.trusted_proxies,
        );
        let budget = RequestBudget::new(client);
        let mut request = request
            .into_inner()
            .data(state.clone())
            .data(Loaders::new(&state.pool))
            .data(budget.clone());
        if let Some(caller) = caller {
            request = request.data(caller);
        }
        let response = state.schema.execute(request).await;
        let refused = response.data == async_graphql::Value::Null
            && response.errors.iter().any(|e| {
                e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .is_some_and(|code| *code == async_graphql::Value::from("RATE_LIMITED"))
            });
        let report = *budget.report.lock().expect("report");
        let mut http = GraphQLResponse::from(response).into_response();
        if let Some(verdict) = report {
            rate_limit_headers(http.headers_mut(), &verdict);
            if refused && !verdict.allowed {
                *http.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                http.headers_mut().insert(
                    header::RETRY_AFTER,
                    retry_after_seconds(verdict.retry_after).into(),
                );
            }
        }
        http
    }
    .instrument(span)
    .await
}

/// A request shed or out of time: 503 with `Retry-After` and a GraphQL
/// error body.
async fn unavailable(error: BoxError) -> Response {
    let message = if error.is::<tower::timeout::error::Elapsed>() {
        "the request took too long"
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        "the server is busy"
    } else {
        tracing::error!(%error, "request failed in a layer");
        "the server cannot answer now"
    };
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The IETF RateLimit and RateLimit-Policy headers for the caller's
/// budget: what remains and when it is whole again.
fn rate_limit_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    let policy = format!(
        "\"caller\";q={};w={}",
        verdict.quota.burst,
        verdict.quota.period.as_secs()
    );
    let state = format!(
        "\"caller\";r={};t={}",
        verdict.remaining,
        retry_after_seconds(verdict.reset_after)
    );
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let readiness = Readiness::check(&state.pool, &state.redis).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness.report()))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Serves HTTP until SIGTERM, with the relay and worker in-process unless
/// `CANOPY_EMBEDDED_WORKER=false`; in-flight requests finish first.
pub async fn run(config: Config) -> Result<()> {
    let config = Arc::new(config);
    let pool = db::connect_and_migrate(&config.database_url).await?;
    let state = AppState::new(pool.clone(), config.clone()).await?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    tracing::info!(addr = %config.addr, "serving /graphql");

    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        on_signal.cancel();
    });
    // The embedded worker has connections of its own: sending email never
    // takes those the API's callers need.
    let worker_pool = db::separate_pool(&pool, config.worker_concurrency as u32 + 4);
    let worker = config.embedded_worker.then(|| {
        tokio::spawn(canopy_worker::run(
            worker_pool,
            config.clone(),
            stop.clone(),
        ))
    });

    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.clone().cancelled_owned())
    .await?;
    stop.cancel();
    if let Some(worker) = worker {
        worker.await??;
    }
    tracing::info!("stopped");
    Ok(())
}
