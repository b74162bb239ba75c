use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::Customer;
use crate::error::ApiResult;
use crate::graphql::loaders::Loaders;
use crate::ids::{self, NodeKind};
use canopy_core::store::entitlements::EntitlementRow;

// The GraphQL face of `canopy_core::store::entitlements::EntitlementKind`.
/// What an entitlement is; it decides what deleting its customer does with it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::store::entitlements::EntitlementKind")]
pub enum EntitlementKind {
    /// Survives the customer's deletion, detached.
    AuthorizationCode,
    /// Survives the customer's deletion, detached.
    ActivationKey,
    /// Blocks the customer's deletion while attached.
    CloudAccount,
}

/// Something the customer holds outside this service.
pub struct Entitlement(pub EntitlementRow);

#[Object]
impl Entitlement {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Entitlement, self.0.id).into()
    }

    async fn kind(&self) -> EntitlementKind {
        self.0.kind.into()
    }

    /// The code, key or account id; unique per kind in the tenant.
    async fn reference(&self) -> &str {
        &self.0.reference
    }

    /// Null once detached, e.g. after its customer was deleted.
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        let Some(customer_id) = self.0.customer_id else {
            return Ok(None);
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .customers
            .load_one((self.0.tenant_id, customer_id))
            .await?
            .map(Customer))
    }

    /// The number of the customer it was last attached to.
    async fn customer_number(&self) -> Option<&str> {
        self.0.customer_number.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
