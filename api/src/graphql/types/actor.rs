//! Who took an action (created a key, cancelled a job, paused a kind),
//! shown only to callers who may read what it names.

use async_graphql::{Context, Object};

use super::{ApiKey, User};
use crate::access;
use crate::error::ApiResult;
use crate::graphql::guards;
use crate::graphql::loaders::Loaders;
use canopy_core::authz::{Actor as CoreActor, Scope as CoreScope};
use canopy_core::id::{TenantId, UserId};

/// A signed-in user or an API key of the tenant that acted.
pub struct Actor {
    pub tenant_id: TenantId,
    pub actor: CoreActor,
}

#[Object]
impl Actor {
    /// The user who acted, when a signed-in user did and the caller may
    /// read users (USERS_READ) and sees that user; null otherwise.
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        acting_user(ctx, self.tenant_id, self.actor.user_id).await
    }

    /// The key that acted, when a key did and the caller may read keys
    /// (API_KEYS_WRITE); null otherwise.
    async fn api_key(&self, ctx: &Context<'_>) -> ApiResult<Option<ApiKey>> {
        acting_key(ctx, self.tenant_id, self.actor.key_id).await
    }
}

pub async fn acting_user(
    ctx: &Context<'_>,
    tenant_id: TenantId,
    user_id: Option<UserId>,
) -> ApiResult<Option<User>> {
    let caller = guards::caller(ctx)?;
    let Some(id) = user_id else {
        return Ok(None);
    };
    if !caller.has(CoreScope::UsersRead) {
        return Ok(None);
    }
    let loaders = ctx.data_unchecked::<Loaders>();
    Ok(loaders
        .users
        .load_one((tenant_id, id))
        .await?
        .filter(|row| access::sees_user(caller, row))
        .map(User))
}

pub async fn acting_key(
    ctx: &Context<'_>,
    tenant_id: TenantId,
    key_id: Option<i64>,
) -> ApiResult<Option<ApiKey>> {
    let caller = guards::caller(ctx)?;
    let Some(id) = key_id else {
        return Ok(None);
    };
    if !caller.has(CoreScope::ApiKeysWrite) || !access::in_tenant(caller, tenant_id) {
        return Ok(None);
    }
    let loaders = ctx.data_unchecked::<Loaders>();
    Ok(loaders
        .api_keys
        .load_one((tenant_id, id))
        .await?
        .map(ApiKey))
}
