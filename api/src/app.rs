//! The HTTP application: `app(state)` builds the router (tests use it
//! without a socket), `run` serves it until SIGTERM.

use std::sync::Arc;

use crate::actions::change::Source;
use crate::idempotency::{self, Claim, Kept};
use anyhow::{Context, Result};
use async_graphql_axum::GraphQLRequest;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::HeaderValue;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{BoxError, Extension, Json, Router};
use canopy_core::jobs::REQUEST_ID;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use crate::account;
use crate::auth::{self, AuthError, Credentials};
use crate::console;
use crate::error::retry_after_seconds;
use crate::graphiql;
use crate::graphql::extensions::Execution;
use crate::graphql::throttle::RequestBudget;
use crate::graphql::{self, CanopySchema, loaders::Loaders};
use crate::graphql_http::{self, GetParameters, Media};
use crate::limits::{self, Limiter, Verdict};
use crate::redis_link::RedisLink;
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
    /// API keys this process remembers, while Redis says they stand.
    pub credentials: Arc<Credentials>,
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
        let link = Arc::new(RedisLink::new(redis.clone()));
        let limiter = Arc::new(Limiter::new(&config, link.clone()));
        let credentials = Arc::new(Credentials::new(&config, link));
        let introspection = config.introspection;
        Ok(Self {
            pool,
            redis,
            config,
            keyring,
            limiter,
            credentials,
            schema: graphql::schema(introspection),
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
    let graphql = get(graphql_get).post(graphql_post);
    let no_store = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let graphql: MethodRouter<AppState> = graphql.layer(bounded.clone());
    // The account pages call the API and hash passwords: bounded alike.
    let mut router = Router::new()
        .route("/graphql", graphql.layer(no_store))
        .merge(console::routes())
        .merge(account::routes().layer(bounded));
    if state.config.graphiql {
        router = router.merge(graphiql::routes());
    }
    if state.config.ops_addr.is_none() {
        router = router.merge(ops_routes());
    }
    if !state.config.cors_origins.is_empty() {
        router = router.layer(cors(&state.config.cors_origins));
    }
    router
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_oversized))
        .with_state(state)
}

/// A body its Content-Length says is over the limit is refused before it
/// is read, in GraphQL's error shape (the limit layer's own answer is
/// plain text); a longer body without one is cut off by the layer and
/// refused the same way when read.
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Media::for_errors(request.headers()).refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_USER_INPUT",
            "the request body is over 256 KiB",
        );
    }
    next.run(request).await
}

/// /healthz, /readyz and /metrics: with the API, or on `CANOPY_OPS_ADDR`.
fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The operators' endpoints alone, for `CANOPY_OPS_ADDR`.
pub fn ops_app(state: AppState) -> Router {
    ops_routes().with_state(state)
}

/// Browsers may call the API from the origins listed, and no others.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static(idempotency::HEADER),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
            header::RETRY_AFTER,
        ])
}

/// What every request carries from the edge: its id and its client.
#[derive(Clone, Debug)]
pub struct Edge {
    pub request_id: String,
    pub client: Option<std::net::IpAddr>,
}

/// Names the request and its client, and says the id back: an
/// `X-Request-Id` is taken from a trusted proxy only, and only when it is
/// short and plain; otherwise one is made.
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let socket = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let trusted =
        socket.is_some_and(|ip| state.config.trusted_proxies.contains(&ip.to_canonical()));
    let headers = request.headers();
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|_| trusted)
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let forwarded_for: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client = limits::client_address(socket, &forwarded_for, &state.config.trusted_proxies);
    request.extensions_mut().insert(Edge {
        request_id: request_id.clone(),
        client,
    });
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// POST /graphql: a GraphQL request in a JSON body.
async fn graphql_post(
    State(state): State<AppState>,
    Extension(edge): Extension<Edge>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let Some(media) = Media::negotiate(&headers) else {
        return graphql_http::not_acceptable();
    };
    // GraphQL comes as JSON only: a page elsewhere cannot post a form or
    // plain text that a browser sends without asking (no CORS preflight).
    // The body is not read otherwise.
    if !graphql_http::is_json(&headers) {
        return media.refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send GraphQL requests as application/json",
        );
    }
    match GraphQLRequest::<GraphQLRejection>::from_request(request, &state).await {
        Ok(request) => execute(state, edge, &headers, media, request.into_inner()).await,
        Err(GraphQLRejection(error)) => media.unreadable(&error),
    }
}

/// GET /graphql: GraphiQL for a browser that asks for a page and no
/// query; otherwise a query (never a mutation) in the query string.
async fn graphql_get(
    State(state): State<AppState>,
    Extension(edge): Extension<Edge>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parameters = GetParameters::of(&uri);
    if state.config.graphiql
        && graphql_http::accepts_html(&headers)
        && parameters.as_ref().is_ok_and(|p| p.query.is_none())
    {
        return graphiql::page().await;
    }
    let Some(media) = Media::negotiate(&headers) else {
        return graphql_http::not_acceptable();
    };
    let mut request = match parameters.and_then(GetParameters::into_request) {
        Ok(request) => request,
        Err(message) => return media.refuse(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message),
    };
    if graphql_http::is_mutation(&mut request) {
        return graphql_http::mutation_over_get(media);
    }
    execute(state, edge, &headers, media, request).await
}

/// Runs a request for its caller and answers in `media`.
async fn execute(
    state: AppState,
    edge: Edge,
    headers: &HeaderMap,
    media: Media,
    request: async_graphql::Request,
) -> Response {
    if request.query.trim().is_empty() {
        return media.refuse(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "the request has no query",
        );
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let idempotency_key = match idempotency::key_of(headers) {
        Ok(key) => key,
        Err(message) => {
            return media.refuse_input(StatusCode::BAD_REQUEST, "Idempotency-Key", message);
        }
    };
    let operated = operate(&state, &edge, authorization, request, idempotency_key).await;
    let (response, report, execution, claim) = match operated {
        Operated::Ran {
            response,
            report,
            execution,
            claim,
        } => (*response, report, execution, claim),
        Operated::Refused(status, code, message) => return media.refuse(status, code, message),
        Operated::Kept(kept) => return answer_kept(media, kept),
    };
    // The answer a repeat of the same key will get, written before this
    // one leaves (or, for a run that failed having changed nothing, the
    // key let go).
    if let Some(claim) = &claim {
        let body = serde_json::to_string(&response).expect("a response serializes");
        let secret_of = execution.secret_of();
        let answer = idempotency::Answer {
            status: 200,
            body: &body,
            secret_of: secret_of.as_deref(),
            clean: response.errors.is_empty(),
        };
        if let Err(error) =
            canopy_core::store::idempotency::finish(&state.pool, claim, &answer).await
        {
            tracing::error!(%error, "cannot keep the answer of an idempotent request");
        }
    }
    let refused = response.data == async_graphql::Value::Null
        && response.errors.iter().any(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|code| *code == async_graphql::Value::from("RATE_LIMITED"))
        });
    let mut http = media.respond(response, execution.began());
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

/// How one operation went: run (with the caller's budget as it stands, and
/// the claim on its Idempotency-Key), refused before it ran, or answered
/// from what an earlier request with its Idempotency-Key left.
pub(crate) enum Operated {
    Ran {
        response: Box<async_graphql::Response>,
        report: Option<Verdict>,
        execution: Arc<Execution>,
        claim: Option<Claim>,
    },
    Refused(StatusCode, &'static str, &'static str),
    Kept(Kept),
}

/// A repeat's answer, from what the first request with its key left.
fn answer_kept(media: Media, kept: Kept) -> Response {
    let conflict = |message: &str, extensions: serde_json::Value| {
        media.refuse_with(StatusCode::CONFLICT, "CONFLICT", message, extensions)
    };
    match kept {
        Kept::Answer { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut http = media.replay(status, body);
            http.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            http
        }
        Kept::Secret { id } => conflict(
            "the first request with this Idempotency-Key answered a secret, which is shown once; \
             extensions.id names what it made",
            json!({ "id": id }),
        ),
        Kept::Running => {
            let mut http = conflict(
                "a request with this Idempotency-Key is still running; try again shortly",
                json!({ "retryAfter": 1 }),
            );
            http.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            http
        }
        Kept::Lost => conflict(
            "the first request with this Idempotency-Key made its change, but its answer was lost",
            json!({}),
        ),
        Kept::Mismatch => media.refuse_input(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key",
            "this Idempotency-Key was used with another request; use a new key for a new request",
        ),
    }
}

/// Runs one GraphQL operation for the caller `authorization` names, as
/// /graphql does: authenticated, within the caller's and the client's
/// budgets, its jobs carrying the request's id. The account pages speak
/// the API through this too.
pub(crate) async fn operate(
    state: &AppState,
    edge: &Edge,
    authorization: Option<&str>,
    mut request: async_graphql::Request,
    idempotency_key: Option<String>,
) -> Operated {
    let span = tracing::info_span!("graphql_request", request_id = %edge.request_id);
    async move {
        let caller = match auth::authenticate(&state.pool, &state.credentials, authorization).await
        {
            Ok(caller) => caller,
            Err(AuthError::Invalid) => {
                return Operated::Refused(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "the bearer secret is not a valid API key or session",
                );
            }
            Err(AuthError::Database(error)) => {
                tracing::error!(%error, "cannot authenticate");
                return Operated::Refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "INTERNAL",
                    "internal error",
                );
            }
        };
        // A mutation with an Idempotency-Key runs only under a claim on it.
        let claim = match idempotency_key {
            Some(key) if graphql_http::is_mutation(&mut request) => {
                let Some(caller) = &caller else {
                    return Operated::Refused(
                        StatusCode::BAD_REQUEST,
                        "BAD_USER_INPUT",
                        "an Idempotency-Key needs an API key or a session",
                    );
                };
                let hash = idempotency::request_hash(&request);
                let of = idempotency::key_for(caller, key);
                // Held well past the request's own time limit: a claim
                // outliving it belongs to a run that died.
                let hold = state.config.request_timeout * 2;
                match canopy_core::store::idempotency::claim(&state.pool, &of, &hash, hold).await {
                    Ok(Ok(claim)) => Some(claim),
                    Ok(Err(held)) => return Operated::Kept(Kept::of(held, &hash)),
                    Err(error) => {
                        tracing::error!(%error, "cannot claim an Idempotency-Key");
                        return Operated::Refused(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "INTERNAL",
                            "internal error",
                        );
                    }
                }
            }
            _ => None,
        };
        let budget = RequestBudget::new(edge.client);
        let execution = Arc::new(Execution::default());
        let mut request = request
            .data(state.clone())
            .data(Loaders::new(&state.pool))
            .data(budget.clone())
            .data(execution.clone())
            .data(Source {
                client_addr: edge.client,
                request_id: edge.request_id.clone(),
            });
        if let Some(caller) = caller {
            request = request.data(caller);
        }
        if let Some(claim) = &claim {
            request = request.data(claim.clone());
        }
        // The jobs the request writes carry its id.
        let mut response = REQUEST_ID
            .scope(edge.request_id.clone(), state.schema.execute(request))
            .await;
        for error in &mut response.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code") == Some(&async_graphql::Value::from("INTERNAL")) {
                extensions.set("requestId", edge.request_id.clone());
            }
        }
        let report = *budget.report.lock().expect("report");
        Operated::Ran {
            response: Box::new(response),
            report,
            execution,
            claim,
        }
    }
    .instrument(span)
    .await
}

/// A request shed or out of time: 503 with `Retry-After` and a GraphQL
/// error body.
async fn unavailable(headers: HeaderMap, error: BoxError) -> Response {
    let message = if error.is::<tower::timeout::error::Elapsed>() {
        "the request took too long"
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        "the server is busy"
    } else {
        tracing::error!(%error, "request failed in a layer");
        "the server cannot answer now"
    };
    let mut response =
        Media::for_errors(&headers).refuse(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message);
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
    // Before anything else, so a taken address stops the start at once.
    let listener = canopy_core::listen::bind("CANOPY_ADDR", config.addr).await?;
    let ops = match config.ops_addr {
        Some(ops_addr) => Some(canopy_core::listen::bind("CANOPY_OPS_ADDR", ops_addr).await?),
        None => None,
    };
    let pool = db::connect_and_migrate(&config.database_url).await?;
    let api_pool = db::bounded_pool(&pool, 20, config.request_timeout);
    let state = AppState::new(api_pool, config.clone()).await?;
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

    if let Some(ops) = ops {
        tracing::info!(addr = %ops.local_addr()?, "serving /healthz, /readyz and /metrics");
        let ops_app = ops_app(state.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(ops, ops_app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
        });
    }
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
