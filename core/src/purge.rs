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

use crate::store::{sessions, tokens, users};

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
    let sign_ups = batched(pool, users::purge_unvalidated_sign_ups).await;
    let sessions = batched(pool, sessions::purge_expired).await;
    let links = batched(pool, tokens::purge_stale).await;
    Ok(Purged {
        sign_ups: sign_ups?,
        sessions: sessions?,
        links: links?,
    })
}

/// Runs `purge` (which deletes at most the given number of rows and
/// answers how many) until a batch comes back short.
async fn batched(
    pool: &PgPool,
    purge: impl AsyncFn(&PgPool, i64) -> sqlx::Result<u64>,
) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let deleted = purge(pool, BATCH).await?;
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}
