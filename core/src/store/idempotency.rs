//! Idempotent requests: the claim a request with an Idempotency-Key takes,
//! the mark its change commits with, and the answer kept for repeats.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::id::TenantId;

/// How long a kept answer answers repeats.
pub const KEPT_FOR_HOURS: i64 = 24;

/// One caller's key in a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOf {
    pub tenant_id: TenantId,
    /// `key:12` or `user:5`.
    pub caller: String,
    pub key: String,
}

/// A claim held on a key: only its holder's change commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub of: KeyOf,
    pub claim: i64,
}

/// What a key already holds.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Held {
    pub request_hash: Vec<u8>,
    pub state: String,
    pub held_until: DateTime<Utc>,
    pub status: Option<i16>,
    pub body: Option<String>,
    pub secret_of: Option<String>,
}

/// Takes the key for a run: a new key, one whose kept answer is older
/// than `KEPT_FOR_HOURS`, or one whose run was abandoned (RUNNING past its
/// hold: nothing of it committed). Otherwise answers what the key holds.
pub async fn claim(
    pool: &PgPool,
    of: &KeyOf,
    request_hash: &[u8],
    hold: std::time::Duration,
) -> sqlx::Result<Result<Claim, Held>> {
    let claim: i64 = rand::random::<i64>();
    let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
    let taken: Option<i64> = sqlx::query_scalar(
        "INSERT INTO idempotent_requests AS r
             (tenant_id, caller, key, request_hash, state, claim, held_until)
         VALUES ($1, $2, $3, $4, 'RUNNING', $5, now() + $6 * interval '1 millisecond')
         ON CONFLICT (tenant_id, caller, key) DO UPDATE
             SET request_hash = excluded.request_hash, state = 'RUNNING',
                 claim = excluded.claim, held_until = excluded.held_until,
                 status = NULL, body = NULL, secret_of = NULL, created_at = now()
             WHERE r.created_at < now() - $7 * interval '1 hour'
                OR (r.state = 'RUNNING' AND r.held_until < now()
                    AND r.request_hash = excluded.request_hash)
         RETURNING claim",
    )
    .bind(of.tenant_id)
    .bind(&of.caller)
    .bind(&of.key)
    .bind(request_hash)
    .bind(claim)
    .bind(hold_ms)
    .bind(KEPT_FOR_HOURS)
    .fetch_optional(pool)
    .await?;
    if let Some(claim) = taken {
        return Ok(Ok(Claim {
            of: of.clone(),
            claim,
        }));
    }
    let held: Held = sqlx::query_as(
        "SELECT request_hash, state, held_until, status, body, secret_of
         FROM idempotent_requests WHERE tenant_id = $1 AND caller = $2 AND key = $3",
    )
    .bind(of.tenant_id)
    .bind(&of.caller)
    .bind(&of.key)
    .fetch_one(pool)
    .await?;
    Ok(Err(held))
}

/// Marks, in the transaction of a change, that the claim's request
/// committed something; false when the claim is no longer held (its hold
/// ran out and a repeat took the key over), and the change must not commit.
pub async fn mark_committed(conn: &mut PgConnection, claim: &Claim) -> sqlx::Result<bool> {
    let marked = sqlx::query(
        "UPDATE idempotent_requests SET state = 'COMMITTED'
         WHERE tenant_id = $1 AND caller = $2 AND key = $3 AND claim = $4",
    )
    .bind(claim.of.tenant_id)
    .bind(&claim.of.caller)
    .bind(&claim.of.key)
    .bind(claim.claim)
    .execute(conn)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// The answer to keep: the HTTP status and body, or only what the first
/// request made when its answer held a secret.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a str,
    pub secret_of: Option<&'a str>,
    /// Whether it answered without errors.
    pub clean: bool,
}

/// Keeps the answer of a run that committed something or answered
/// cleanly; releases the key of one that failed having changed nothing,
/// so a repeat runs again.
pub async fn finish(pool: &PgPool, claim: &Claim, answer: &Answer<'_>) -> sqlx::Result<()> {
    let kept = sqlx::query(
        "UPDATE idempotent_requests
         SET state = 'DONE', status = $5, body = CASE WHEN $7::text IS NULL THEN $6 END,
             secret_of = $7
         WHERE tenant_id = $1 AND caller = $2 AND key = $3 AND claim = $4
           AND (state = 'COMMITTED' OR $8)",
    )
    .bind(claim.of.tenant_id)
    .bind(&claim.of.caller)
    .bind(&claim.of.key)
    .bind(claim.claim)
    .bind(i16::try_from(answer.status).unwrap_or(500))
    .bind(answer.body)
    .bind(answer.secret_of)
    .bind(answer.clean)
    .execute(pool)
    .await?;
    if kept.rows_affected() == 0 {
        sqlx::query(
            "DELETE FROM idempotent_requests
             WHERE tenant_id = $1 AND caller = $2 AND key = $3 AND claim = $4
               AND state = 'RUNNING'",
        )
        .bind(claim.of.tenant_id)
        .bind(&claim.of.caller)
        .bind(&claim.of.key)
        .bind(claim.claim)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Deletes at most `batch` keys older than `KEPT_FOR_HOURS`; answers how
/// many.
pub async fn prune(pool: &PgPool, batch: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM idempotent_requests WHERE ctid IN (
             SELECT ctid FROM idempotent_requests
             WHERE created_at < now() - $1 * interval '1 hour' LIMIT $2)",
    )
    .bind(KEPT_FOR_HOURS)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
