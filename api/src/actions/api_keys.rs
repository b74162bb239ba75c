use async_graphql::ID;
use sqlx::PgPool;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::ids::{self, NodeKind};
use crate::store::api_keys::{self, ApiKeyRow};
use crate::validation::{self, MAX_NAME_CHARS};
use canopy_core::secrets::{self, SecretKind};

/// Creates a key with `scopes` (no more than the caller holds) and returns it
/// with its secret, which is not stored and cannot be shown again.
pub async fn create(
    pool: &PgPool,
    caller: &Caller,
    name: &str,
    scopes: &[Scope],
) -> ApiResult<(ApiKeyRow, String)> {
    let name = validation::required("name", name, MAX_NAME_CHARS)?;
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
    let secret = secrets::mint(SecretKind::ApiKey, caller.tenant_id);
    let mut conn = pool.acquire().await?;
    let row = api_keys::insert(
        &mut conn,
        caller.tenant_id,
        &name,
        &scopes,
        secrets::visible_prefix(&secret.plaintext),
        &secret.hash,
    )
    .await?;
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
