//! Creating and revoking API keys; a key never holds a scope its creator
//! lacks, and the tenant's administrators hear of every new one.

use super::change::{Record, Writer};
use crate::access;
use crate::auth::{Caller, Credentials, Scope};
use crate::error::{ApiError, ApiResult};
use crate::ids::NodeKind;
use crate::validation::{self, MAX_NAME_CHARS};
use canopy_core::config::Config;
use canopy_core::jobs::Notice;
use canopy_core::secrets::{self, SecretKind};
use canopy_core::store::api_keys::{self, ApiKeyRow, NewKey};
use canopy_core::store::jobs::{Notification, notify_administrators};
use chrono::{DateTime, Duration, Utc};

/// The furthest an expiry may lie ahead.
const MAX_KEY_LIFETIME_DAYS: i64 = 3660;

/// Creates a key with `scopes` (no more than the caller holds), recording
/// who made it, and returns it with its secret, which is not stored and
/// cannot be shown again. The tenant's administrators are told.
/// What `createApiKey` asks for.
pub struct KeyRequest<'a> {
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub expires_at: Option<DateTime<Utc>>,
    /// Its own budget of operation cost per minute.
    pub rate_limit_per_minute: Option<i32>,
}

/// The largest budget a key may be given, in cost per minute.
pub const MAX_RATE_LIMIT_PER_MINUTE: i32 = 100_000_000;

pub async fn create(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    request: KeyRequest<'_>,
) -> ApiResult<(ApiKeyRow, String)> {
    let KeyRequest {
        name,
        scopes,
        expires_at,
        rate_limit_per_minute,
    } = request;
    let name = validation::required("name", name, MAX_NAME_CHARS)?;
    if rate_limit_per_minute.is_some_and(|n| !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&n)) {
        return Err(ApiError::bad_input(
            "rateLimitPerMinute",
            format!("rateLimitPerMinute must be 1 to {MAX_RATE_LIMIT_PER_MINUTE}"),
        ));
    }
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
    access::may_grant(caller, &scopes)?;
    // A key makes only keys that expire no later and may spend no more
    // than itself: otherwise a temporary or slow key could outgrow itself.
    let maker = match caller.key_id() {
        Some(id) => api_keys::by_id(db.pool, caller.tenant_id, id).await?,
        None => None,
    };
    let server_budget =
        u64::from(config.limits.caller.burst) * 60 / config.limits.caller.period.as_secs().max(1);
    let budget = |key: &ApiKeyRow| key.rate_limit().map_or(server_budget, u64::from);
    if let (Some(maker), Some(wanted)) = (&maker, rate_limit_per_minute)
        && wanted as u64 > budget(maker)
    {
        return Err(ApiError::bad_input(
            "rateLimitPerMinute",
            "rateLimitPerMinute may not exceed the budget of the key creating it",
        ));
    }
    let rate_limit_per_minute = match (&maker, rate_limit_per_minute) {
        (Some(maker), None) => maker.rate_limit_per_minute,
        (_, wanted) => wanted,
    };
    let limit = maker.as_ref().and_then(|key| key.expires_at);
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
    let mut tx = db.begin().await?;
    let row = api_keys::insert(
        &mut tx,
        caller.tenant_id,
        &NewKey {
            name: &name,
            scopes: &scopes,
            prefix: secrets::visible_prefix(&secret.plaintext),
            secret_hash: &secret.hash,
            expires_at,
            rate_limit_per_minute,
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
    tx.commit(Record::tenant(caller.tenant_id).object_of(NodeKind::ApiKey, row.id))
        .await?;
    Ok((row, secret.plaintext))
}

/// Revokes a key; a caller may only revoke keys whose scopes it holds, so a
/// narrow key cannot switch off a broader one. It answers only once no
/// process can still accept the key: when the processes cannot be told,
/// it answers an error, and revoking again (which changes nothing more)
/// tells them.
pub async fn revoke(
    db: &Writer<'_>,
    credentials: &Credentials,
    caller: &Caller,
    id: i64,
) -> ApiResult<ApiKeyRow> {
    let key = api_keys::by_id(db.pool, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    access::may_grant(caller, &key.scopes)?;
    let mut tx = db.begin().await?;
    let revoked = api_keys::revoke(&mut tx, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    tx.commit(Record::tenant(caller.tenant_id).object_of(NodeKind::ApiKey, id))
        .await?;
    credentials.forget(caller.tenant_id).await.map_err(|error| {
        anyhow::anyhow!("the key is revoked, but api processes may accept it for up to a minute: {error}; revoke it again")
    })?;
    Ok(revoked)
}
