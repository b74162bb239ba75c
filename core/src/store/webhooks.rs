//! Events, webhook endpoints and their deliveries.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::Page;
use crate::events::{EventType, NewEvent};
use crate::id::TenantId;

/// Writes events with the change that caused them; a trigger gives each a
/// delivery for every enabled endpoint of the tenant that asked for the
/// event's type, in the same statement.
pub async fn record(conn: &mut PgConnection, events: &[NewEvent]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let tenants: Vec<TenantId> = events.iter().map(|e| e.tenant_id).collect();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    let data: Vec<Json<&serde_json::Value>> = events.iter().map(|e| Json(&e.data)).collect();
    sqlx::query(
        "INSERT INTO events (tenant_id, type, data)
         SELECT t, y, d FROM unnest($1::bigint[], $2::text[], $3::jsonb[])
              WITH ORDINALITY AS i(t, y, d, n)
         ORDER BY n",
    )
    .bind(tenants)
    .bind(types)
    .bind(data)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub tenant_id: TenantId,
    pub id: i64,
    #[sqlx(rename = "type")]
    pub event_type: EventType,
    pub data: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// The tenant's events of `types` after the event `page.after`, oldest
/// first.
pub async fn page(
    pool: &PgPool,
    tenant_id: TenantId,
    types: &[EventType],
    page: &Page,
) -> sqlx::Result<Vec<EventRow>> {
    let after: i64 = page
        .after
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    sqlx::query_as(
        "SELECT tenant_id, id, type, data, created_at FROM events
         WHERE tenant_id = $1 AND id > $2 AND type = ANY($3)
         ORDER BY id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(after)
    .bind(types)
    .bind(page.limit())
    .fetch_all(pool)
    .await
}

pub async fn events_by_ids(
    pool: &PgPool,
    tenant_id: TenantId,
    ids: &[i64],
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT tenant_id, id, type, data, created_at FROM events
         WHERE tenant_id = $1 AND id = ANY($2)",
    )
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(pool)
    .await
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EndpointRow {
    pub tenant_id: TenantId,
    pub id: i64,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub secret_id: String,
    pub generation: i32,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT: &str = "tenant_id, id, url, events, description, secret_id, generation, enabled, \
     disabled_reason, failures, created_at, updated_at";

/// An endpoint to register.
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub events: &'a [EventType],
    pub description: Option<&'a str>,
}

/// Draws an endpoint's id, so its secret can be derived before the row is
/// written with the id of the server secret used.
pub async fn next_endpoint_id(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('webhook_endpoints', 'id'))")
        .fetch_one(conn)
        .await
}

pub async fn insert_endpoint(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
    secret_id: &str,
    endpoint: &NewEndpoint<'_>,
) -> sqlx::Result<EndpointRow> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, events, description, secret_id)
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(endpoint.url)
    .bind(endpoint.events)
    .bind(endpoint.description)
    .bind(secret_id)
    .fetch_one(conn)
    .await
}

/// Changes an endpoint; enabling one also forgets its failures.
pub async fn update_endpoint(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
    endpoint: &NewEndpoint<'_>,
    enabled: bool,
) -> sqlx::Result<Option<EndpointRow>> {
    sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET url = $3, events = $4, description = $5, enabled = $6,
             disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
             failures = CASE WHEN $6 AND NOT enabled THEN 0 ELSE failures END,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2 RETURNING {ENDPOINT}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(endpoint.url)
    .bind(endpoint.events)
    .bind(endpoint.description)
    .bind(enabled)
    .fetch_optional(conn)
    .await
}

pub async fn delete_endpoint(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
) -> sqlx::Result<Option<EndpointRow>> {
    sqlx::query_as(&format!(
        "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2 RETURNING {ENDPOINT}"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn lock_endpoint(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
) -> sqlx::Result<Option<EndpointRow>> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn endpoints(pool: &PgPool, tenant_id: TenantId) -> sqlx::Result<Vec<EndpointRow>> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY id"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

crate::text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryState {
        Pending = "PENDING",
        Delivered = "DELIVERED",
        Failed = "FAILED",
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub tenant_id: TenantId,
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const DELIVERY: &str = "d.tenant_id, d.id, d.endpoint_id, d.event_id, d.state, d.attempts, \
     d.next_attempt_at, d.last_status, d.last_latency_ms, d.last_error, d.delivered_at, \
     d.created_at";

/// An endpoint's deliveries, newest first; the cursor is a delivery's id.
pub async fn deliveries(
    pool: &PgPool,
    tenant_id: TenantId,
    endpoint_id: i64,
    page: &Page,
) -> sqlx::Result<Vec<DeliveryRow>> {
    let before: i64 = page
        .after
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(i64::MAX);
    sqlx::query_as(&format!(
        "SELECT {DELIVERY} FROM webhook_deliveries d
         WHERE d.tenant_id = $1 AND d.endpoint_id = $2 AND d.id < $3
         ORDER BY d.id DESC LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(endpoint_id)
    .bind(before)
    .bind(page.limit())
    .fetch_all(pool)
    .await
}

/// Sends a delivery again: due now, with a fresh allowance of attempts.
pub async fn redeliver(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(&format!(
        "UPDATE webhook_deliveries d SET state = 'PENDING', attempts = 0, next_attempt_at = now()
         WHERE d.tenant_id = $1 AND d.id = $2 RETURNING {DELIVERY}"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A delivery a worker took, with what sending it needs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Due {
    pub id: i64,
    pub tenant_id: TenantId,
    pub endpoint_id: i64,
    pub attempts: i32,
    pub url: String,
    pub secret_id: String,
    pub generation: i32,
    pub event_id: i64,
    #[sqlx(rename = "type")]
    pub event_type: EventType,
    pub data: Json<serde_json::Value>,
    pub event_at: DateTime<Utc>,
}

/// Takes up to `limit` due deliveries of enabled endpoints, at most
/// `per_endpoint` of each and none of `busy` (whose receivers have as many
/// under way as they may), leasing each for `lease`: a worker that dies
/// sending one leaves it due again then.
pub async fn take_due(
    pool: &PgPool,
    limit: i64,
    per_endpoint: i64,
    lease: std::time::Duration,
    busy: &[i64],
) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "WITH candidates AS (
             SELECT d.tenant_id, d.id, d.endpoint_id, d.next_attempt_at FROM webhook_deliveries d
             JOIN webhook_endpoints w ON w.tenant_id = d.tenant_id AND w.id = d.endpoint_id
              AND w.enabled
             WHERE d.state = 'PENDING' AND d.next_attempt_at <= now()
               AND d.endpoint_id <> ALL ($3)
             ORDER BY d.next_attempt_at LIMIT $1 * 8),
         ranked AS (
             SELECT tenant_id, id, next_attempt_at,
                    row_number() OVER (PARTITION BY tenant_id, endpoint_id
                                       ORDER BY next_attempt_at) AS place
             FROM candidates),
         due AS (
             SELECT d.tenant_id, d.id FROM webhook_deliveries d
             JOIN ranked r ON r.tenant_id = d.tenant_id AND r.id = d.id
             WHERE r.place <= $4 AND d.state = 'PENDING'
             ORDER BY r.next_attempt_at LIMIT $1
             FOR UPDATE OF d SKIP LOCKED),
         taken AS (
             UPDATE webhook_deliveries d
             SET next_attempt_at = now() + $2 * interval '1 millisecond', attempts = d.attempts + 1
             FROM due WHERE d.tenant_id = due.tenant_id AND d.id = due.id
             RETURNING d.id, d.tenant_id, d.endpoint_id, d.attempts, d.event_id)
         SELECT t.id, t.tenant_id, t.endpoint_id, t.attempts, w.url, w.secret_id, w.generation,
                t.event_id, e.type, e.data, e.created_at AS event_at
         FROM taken t
         JOIN webhook_endpoints w ON w.tenant_id = t.tenant_id AND w.id = t.endpoint_id
         JOIN events e ON e.tenant_id = t.tenant_id AND e.id = t.event_id",
    )
    .bind(limit)
    .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .bind(busy)
    .bind(per_endpoint)
    .fetch_all(pool)
    .await
}

/// How an attempt went.
pub struct Attempt<'a> {
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
}

/// Records a delivered attempt; the endpoint's failures start over.
pub async fn delivered(pool: &PgPool, due: &Due, attempt: &Attempt<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "WITH d AS (
             UPDATE webhook_deliveries SET state = 'DELIVERED', delivered_at = now(),
                 last_status = $2, last_latency_ms = $3, last_error = NULL
             WHERE tenant_id = $5 AND id = $1)
         UPDATE webhook_endpoints SET failures = 0
         WHERE tenant_id = $5 AND id = $4 AND failures > 0",
    )
    .bind(due.id)
    .bind(attempt.status)
    .bind(attempt.latency_ms)
    .bind(due.endpoint_id)
    .bind(due.tenant_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: due again at `retry_at`, or FAILED when there
/// is none; counts a failure of the endpoint and disables it (with
/// `reason`) at `disable_after` failures in a row. Answers whether this
/// attempt disabled it.
pub async fn failed(
    conn: &mut PgConnection,
    due: &Due,
    attempt: &Attempt<'_>,
    retry_at: Option<DateTime<Utc>>,
    disable_after: i32,
    reason: &str,
) -> sqlx::Result<bool> {
    let disabled: Option<bool> = sqlx::query_scalar(
        "WITH d AS (
             UPDATE webhook_deliveries
             SET state = CASE WHEN $5::timestamptz IS NULL THEN 'FAILED' ELSE 'PENDING' END,
                 next_attempt_at = coalesce($5, next_attempt_at),
                 last_status = $2, last_latency_ms = $3, last_error = left($4, 500)
             WHERE tenant_id = $9 AND id = $1)
         UPDATE webhook_endpoints SET failures = failures + 1,
             enabled = enabled AND failures + 1 < $7,
             disabled_reason = CASE WHEN enabled AND failures + 1 >= $7 THEN $8
                                    ELSE disabled_reason END
         WHERE tenant_id = $9 AND id = $6
         RETURNING (NOT enabled AND failures = $7)",
    )
    .bind(due.id)
    .bind(attempt.status)
    .bind(attempt.latency_ms)
    .bind(attempt.error)
    .bind(retry_at)
    .bind(due.endpoint_id)
    .bind(disable_after)
    .bind(reason)
    .bind(due.tenant_id)
    .fetch_optional(conn)
    .await?;
    Ok(disabled.unwrap_or(false))
}

/// Deletes at most `batch` events older than `before` (with their
/// deliveries); answers how many.
pub async fn prune_events(pool: &PgPool, before: DateTime<Utc>, batch: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM events WHERE ctid IN (
             SELECT ctid FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Counting stops here: `totalCount` of a long list is a lower bound.
const COUNT_UP_TO: i64 = 10_000;

fn capped(value: i64) -> super::Count {
    super::Count {
        value: value.min(COUNT_UP_TO),
        exact: value <= COUNT_UP_TO,
    }
}

pub async fn count_events(
    pool: &PgPool,
    tenant_id: TenantId,
    types: &[EventType],
    after: i64,
) -> sqlx::Result<super::Count> {
    let value: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM events
             WHERE tenant_id = $1 AND id > $2 AND type = ANY($3) LIMIT $4) e",
    )
    .bind(tenant_id)
    .bind(after)
    .bind(types)
    .bind(COUNT_UP_TO + 1)
    .fetch_one(pool)
    .await?;
    Ok(capped(value))
}

pub async fn count_deliveries(
    pool: &PgPool,
    tenant_id: TenantId,
    endpoint_id: i64,
) -> sqlx::Result<super::Count> {
    let value: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries
             WHERE tenant_id = $1 AND endpoint_id = $2 LIMIT $3) d",
    )
    .bind(tenant_id)
    .bind(endpoint_id)
    .bind(COUNT_UP_TO + 1)
    .fetch_one(pool)
    .await?;
    Ok(capped(value))
}
