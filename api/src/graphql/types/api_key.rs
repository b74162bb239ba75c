use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use async_graphql::Enum;

use super::{User, actor};
use crate::error::ApiResult;
use crate::graphql::loaders::{LastAct, Loaders};
use crate::ids::{self, NodeKind};
use canopy_core::authz::Actor as CoreActor;
use canopy_core::store::api_keys::ApiKeyRow;

/// What an API key may do. A tenant administrator holds every scope.
// (The GraphQL face of `canopy_core::authz::Scope`.)
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::authz::Scope")]
pub enum Scope {
    CustomersRead,
    CustomersWrite,
    UsersRead,
    UsersWrite,
    JobsRead,
    JobsWrite,
    ApiKeysWrite,
}

/// A credential for a machine client, such as a partner integration.
pub struct ApiKey(pub ApiKeyRow);

#[Object]
impl ApiKey {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::ApiKey, self.0.id).into()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn scopes(&self) -> Vec<Scope> {
        self.0.scopes.iter().copied().map(Scope::from).collect()
    }

    /// The first characters of the secret, to tell keys apart.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the key last authenticated a request, to the minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }

    /// Its own budget of operation cost per minute; null: the server's
    /// (CANOPY_LIMIT_CALLER).
    async fn rate_limit_per_minute(&self) -> Option<i32> {
        self.0.rate_limit_per_minute
    }

    /// When the key stops working on its own; null for never.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// The user who created it, when a signed-in user did and the caller
    /// may read users (USERS_READ); null otherwise.
    async fn created_by_user(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let creator = self.creator(ctx).await?;
        actor::acting_user(ctx, self.0.tenant_id, creator.user_id).await
    }

    /// The key that created it, when a key did and the caller may read
    /// keys (API_KEYS_WRITE); null otherwise.
    async fn created_by_key(&self, ctx: &Context<'_>) -> ApiResult<Option<ApiKey>> {
        let creator = self.creator(ctx).await?;
        actor::acting_key(ctx, self.0.tenant_id, creator.key_id).await
    }
}

impl ApiKey {
    /// Who created it, read from the audit log (nobody once its entry was
    /// pruned, or for a tenant's first key, made by `create-tenant`).
    async fn creator(&self, ctx: &Context<'_>) -> ApiResult<CoreActor> {
        let entry = ctx
            .data_unchecked::<Loaders>()
            .last_acts
            .load_one(LastAct {
                tenant_id: self.0.tenant_id,
                operations: &["createApiKey"],
                object: ids::reference(NodeKind::ApiKey, self.0.id),
            })
            .await?;
        Ok(entry.map_or(CoreActor::NOBODY, |entry| entry.actor()))
    }
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// The secret, shown only here. Send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}
