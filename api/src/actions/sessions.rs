//! Signing in and out, and the password hashing both need.

use chrono::{Duration, Utc};
use sqlx::PgConnection;
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

use super::change::{Record, Writer};
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use canopy_core::id::TenantId;
use canopy_core::passwords;
use canopy_core::secrets::{self, SecretKind};
use canopy_core::store::sessions;
use canopy_core::store::users::{self, UserRow};

/// How long a session works after signing in.
pub const SESSION_TTL_HOURS: i64 = 24;

/// Every refused login gets this, whatever the reason.
const LOGIN_REFUSED: &str = "the email or password is not correct, or the account cannot sign in";

/// A new session: the bearer token (shown once) and its user.
pub struct Session {
    pub id: i64,
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
    pub user: UserRow,
}

pub(super) async fn open_session(conn: &mut PgConnection, user: &UserRow) -> ApiResult<Session> {
    let secret = secrets::mint(SecretKind::Session, user.tenant_id);
    let expires_at = Utc::now() + Duration::hours(SESSION_TTL_HOURS);
    let id = sessions::insert(conn, user.tenant_id, user.id, &secret.hash, expires_at).await?;
    let user = users::record_login(conn, user.tenant_id, user.id).await?;
    Ok(Session {
        id,
        token: secret.plaintext,
        expires_at,
        user,
    })
}

/// Argon2 runs at most this many at once: one per core but one, so a
/// flood of sign-ins queues here and always leaves a core to the callers
/// reading; a caller never holds a database connection meanwhile.
fn argon2_slots() -> Arc<Semaphore> {
    static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)))
    });
    SLOTS.clone()
}

/// Runs Argon2 work off the async threads, behind `argon2_slots`. The
/// slot goes with the work, not the request: a request dropped mid-hash
/// (a timeout, a client gone) frees it only when the hash is done.
pub(super) async fn argon2<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let slot = argon2_slots()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    tokio::task::spawn_blocking(move || {
        let done = work();
        drop(slot);
        done
    })
    .await
    .map_err(|e| ApiError::from(anyhow::Error::from(e)))
}

/// Hashes a new password: Argon2 is slow on purpose.
pub async fn hash_password(password: String) -> ApiResult<String> {
    argon2(move || passwords::hash(&password)).await
}

pub fn check_password(password: &str) -> ApiResult<()> {
    match passwords::policy_violation(password) {
        Some(message) => Err(ApiError::bad_input("password", message)),
        None => Ok(()),
    }
}

/// Signs in with address and password. Any refusal (unknown tenant or
/// address, wrong password, a user who may not sign in) answers the same,
/// after the same Argon2 work.
pub async fn login(
    db: &Writer<'_>,
    tenant_id: Option<TenantId>,
    email: &str,
    password: &str,
) -> ApiResult<Session> {
    let email = &crate::validation::lookup_email("email", email)?;
    let refused = || ApiError::UnauthenticatedBecause(LOGIN_REFUSED.to_owned());
    let found = match tenant_id {
        Some(tenant_id) if password.chars().count() <= passwords::MAX_CHARS => {
            // The connection goes back to the pool before the hash.
            let mut conn = db.pool.acquire().await?;
            users::credentials(&mut conn, tenant_id, email).await?
        }
        _ => None,
    };
    let stored = found.as_ref().and_then(|c| c.password_hash.clone());
    let attempt = password
        .chars()
        .take(passwords::MAX_CHARS)
        .collect::<String>();
    let matched = argon2(move || passwords::verify(&attempt, stored.as_deref())).await?;
    let Some(credentials) = found.filter(|_| matched) else {
        return Err(refused());
    };
    if !credentials.user.status.may_sign_in() {
        return Err(refused());
    }
    let mut tx = db.begin().await?;
    // Whatever changed while the password was checked (a reset, a
    // suspension) wins: the session opens only on what still holds.
    let current = users::lock_credentials(&mut tx, credentials.user.tenant_id, credentials.user.id)
        .await?
        .filter(|now| now.password_hash == credentials.password_hash)
        .filter(|now| now.user.status.may_sign_in())
        .ok_or_else(refused)?;
    let session = open_session(&mut tx, &current.user).await?;
    tx.commit(session.record()).await?;
    Ok(session)
}

/// Ends the caller's session; an API key has none to end.
pub async fn logout(db: &Writer<'_>, caller: &Caller) -> ApiResult<bool> {
    let Principal::User { id, session_id, .. } = caller.principal else {
        return Ok(false);
    };
    let mut tx = db.begin().await?;
    if !sessions::delete(&mut tx, caller.tenant_id, session_id).await? {
        return Ok(false);
    }
    tx.commit(
        Record::tenant(caller.tenant_id)
            .object(id)
            .customer(caller_customer(caller)),
    )
    .await?;
    Ok(true)
}

/// The customer of a signed-in customer user, for its entries.
fn caller_customer(caller: &Caller) -> Option<&canopy_core::path::Path> {
    caller
        .limits()
        .and_then(|reach| reach.own_customer.as_ref())
        .map(|(_, path)| path)
}

impl Session {
    /// The audit record of a session opened: its user signed in.
    pub(super) fn record(&self) -> Record {
        Record::tenant(self.user.tenant_id)
            .object(self.user.id)
            .customer(self.user.customer_path.as_ref())
            .by_user(self.user.id, Some(self.id))
    }
}
