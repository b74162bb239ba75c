//! Account data past its use, deleted in small batches (each its own short
//! statement, like the job retention), so the tables stay bounded without
//! long locks. Any number of workers may purge at once.
//!
//! - sessions once they have expired;
//! - email links a week after they expired, used or not (until then a
//!   used or replaced link still says so), except each user's latest
//!   invitation, so that `User.invitation` keeps showing EXPIRED;
//! - self sign-ups still unvalidated (and never signed in) a day after
//!   their last link expired, freeing the address, with the customer their
//!   sign-up created when nothing else has come to it (no other user, inner
//!   customer, entitlement or administrator). Only users and customers a
//!   sign-up made are marked so; invited users are never purged.

use sqlx::PgPool;

const BATCH: i64 = 1000;

/// What one purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub links: u64,
    pub sign_ups: u64,
}

/// Runs every purge until nothing is left to delete. Each runs whatever
/// became of the others (a sign-up's customer gaining a user at that very
/// moment fails only its own statement); the first error is returned.
pub async fn run(pool: &PgPool) -> sqlx::Result<Purged> {
    // Sign-ups first: they are judged by their links' expiry.
    let sign_ups = batched(pool, SIGN_UPS).await;
    let sessions = batched(pool, SESSIONS).await;
    let links = batched(pool, LINKS).await;
    Ok(Purged {
        sign_ups: sign_ups?,
        sessions: sessions?,
        links: links?,
    })
}

/// Runs `statement` (which deletes at most `$1` rows and answers how
/// many) until a batch comes back short.
async fn batched(pool: &PgPool, statement: &str) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let deleted: i64 = sqlx::query_scalar(statement)
            .bind(BATCH)
            .fetch_one(pool)
            .await?;
        total += deleted as u64;
        if deleted < BATCH {
            return Ok(total);
        }
    }
}

const SESSIONS: &str = "WITH gone AS (DELETE FROM sessions WHERE (tenant_id, id) IN (
     SELECT tenant_id, id FROM sessions WHERE expires_at < now()
     LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING 1)
 SELECT count(*) FROM gone";

const LINKS: &str = "WITH gone AS (DELETE FROM user_tokens WHERE (tenant_id, id) IN (
     SELECT t.tenant_id, t.id FROM user_tokens t
     WHERE t.expires_at < now() - interval '7 days'
       AND NOT (t.purpose = 'ACTIVATION' AND t.id = (
           SELECT max(l.id) FROM user_tokens l
           WHERE l.tenant_id = t.tenant_id AND l.user_id = t.user_id AND l.purpose = 'ACTIVATION'))
     LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING 1)
 SELECT count(*) FROM gone";

/// A self sign-up is marked when made (`users.signed_up`); it is purged
/// while still PENDING_EMAIL_VALIDATION, never signed in, a day after its
/// last link expired. Counts the users deleted; the customer the sign-up
/// created (`customers.signed_up`) goes in the same statement when nothing
/// else is attached to it. The outer statement still sees the deleted
/// users, so `gone` is excluded by hand.
const SIGN_UPS: &str = "WITH gone AS (
     DELETE FROM users WHERE (tenant_id, id) IN (
         SELECT u.tenant_id, u.id FROM users u
         WHERE u.signed_up AND u.status = 'PENDING_EMAIL_VALIDATION'
           AND u.last_login_at IS NULL AND u.created_at < now() - interval '1 day'
           AND NOT EXISTS (SELECT 1 FROM user_tokens t
                           WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id
                             AND t.expires_at > now() - interval '1 day')
         LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING tenant_id, id, customer_id),
 emptied AS (
     DELETE FROM customers c USING gone g
     WHERE c.tenant_id = g.tenant_id AND c.id = g.customer_id AND c.signed_up
       AND NOT EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id
                         AND NOT EXISTS (SELECT 1 FROM gone x
                                         WHERE x.tenant_id = o.tenant_id AND x.id = o.id))
       AND NOT EXISTS (SELECT 1 FROM customers ch WHERE ch.tenant_id = c.tenant_id AND ch.parent_id = c.id)
       AND NOT EXISTS (SELECT 1 FROM entitlements e WHERE e.tenant_id = c.tenant_id AND e.customer_id = c.id)
       AND NOT EXISTS (SELECT 1 FROM customer_administrators a
                       WHERE a.tenant_id = c.tenant_id AND a.customer_id = c.id)
     RETURNING c.id)
 SELECT count(*) FROM gone";
