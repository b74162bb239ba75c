use async_graphql::{ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use async_graphql::Enum;

use crate::ids::{self, NodeKind};
use crate::store::api_keys::ApiKeyRow;

/// What an API key may do. A tenant administrator holds every scope.
/// (The GraphQL face of `canopy_core::authz::Scope`.)
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
        ids::encode(NodeKind::ApiKey, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn scopes(&self) -> Vec<Scope> {
        self.0.scopes().into_iter().map(Scope::from).collect()
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
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// The secret, shown only here. Send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}
