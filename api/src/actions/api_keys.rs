use async_graphql::ID;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::ids::{self, NodeKind};
use crate::store::api_keys::{self, ApiKeyRow, NewKey};
use crate::store::jobs::{Notification, notify_administrators};
use crate::validation::{self, MAX_NAME_CHARS};
use canopy_core::config::Config;
use canopy_core::jobs::Notice;
use canopy_core::secrets::{self, SecretKind};

/// The furthest an expiry may lie ahead.
const MAX_KEY_LIFETIME_DAYS: i64 = 3660;

/// Creates a key with `scopes` (no more than the caller holds), recording
/// who made it, and returns it with its secret, which is not stored and
/// cannot be shown again. The tenant's administrators are told.
pub async fn create(
    pool: &PgPool,
    config: &Config,
    caller: &Caller,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<(ApiKeyRow, String)> {
    let name = validation::required("name", name, MAX_NAME_CHARS)?;
    if let Some(at) = expires_at {
        let now = Utc::now();
        if at <= now || at > now + Duration::days(MAX_KEY_LIFETIME_DAYS) {
            return Err(ApiError::bad_input(
                "expiresAt",
                format!(
                    "expiresAt must be in the future and at most {MAX_KEY_LIFETIME_DAYS} days ahead"
                ),
            ));
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::bad_input(
            "scopes",
            "a key needs at least one scope",
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    guards::may_grant(caller, &scopes)?;
    // A key that expires makes only keys that expire no later: otherwise a
    // temporary key could outlive itself.
    let limit = match caller.key_id() {
        Some(id) => api_keys::by_id(pool, caller.tenant_id, id)
            .await?
            .and_then(|key| key.expires_at),
        None => None,
    };
    let expires_at = match (expires_at, limit) {
        (Some(at), Some(limit)) if at > limit => {
            return Err(ApiError::bad_input(
                "expiresAt",
                "expiresAt may not be later than the expiry of the key creating it",
            ));
        }
        (None, limit) => limit,
        (at, _) => at,
    };
    let secret = secrets::mint(SecretKind::ApiKey, caller.tenant_id);
    let mut tx = pool.begin().await?;
    let row = api_keys::insert(
        &mut tx,
        caller.tenant_id,
        &NewKey {
            name: &name,
            scopes: &scopes,
            prefix: secrets::visible_prefix(&secret.plaintext),
            secret_hash: &secret.hash,
            created_by_user_id: caller.user_id(),
            created_by_key_id: caller.key_id(),
            expires_at,
        },
    )
    .await?;
    notify_administrators(
        &mut tx,
        Notification {
            tenant_id: caller.tenant_id,
            customer_id: None,
            notice: Notice::ApiKeyCreated,
            subject_user_id: None,
            // Its visible prefix, not its caller-chosen name: the email
            // carries no text a caller wrote.
            subject_label: &row.prefix,
            actor_user_id: caller.user_id(),
            fall_back_to_tenant_admins: true,
            max_attempts: config.job_max_attempts,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((row, secret.plaintext))
}

/// Revokes a key; a caller may only revoke keys whose scopes it holds, so a
/// narrow key cannot switch off a broader one.
pub async fn revoke(pool: &PgPool, caller: &Caller, id: &ID) -> ApiResult<ApiKeyRow> {
    let id = ids::expect(id, NodeKind::ApiKey, "id")?;
    let key = api_keys::by_id(pool, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    guards::may_grant(caller, &key.scopes())?;
    api_keys::revoke(pool, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))
}
