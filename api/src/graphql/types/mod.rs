//! The objects callers see.

mod actor;
mod api_key;
mod audit;
mod batch;
mod connection;
mod customer;
mod entitlement;
mod job;
mod tenant;
mod user;
mod webhook;

use async_graphql::{Interface, SimpleObject};

pub use api_key::{ApiKey, CreateApiKeyPayload, Scope};
pub use audit::{AuditEntryConnection, AuditLogFilter};
pub use batch::{
    CreateCustomersPayload, CreateUsersPayload, UpdateUsersPayload, UserUpdate, cost as batch_cost,
};
pub use customer::{
    CreateCustomerInput, Customer, CustomerConnection, CustomerPayload, CustomerTotal,
    DeleteCustomerPayload, UpdateCustomerInput,
};
pub use entitlement::{Entitlement, EntitlementKind};
pub use job::{
    Job, JobConnection, JobFilter, JobKind, JobKindRow, JobQueue, JobSet, RetryJobsPayload,
};
pub use tenant::{Tenant, UpdateTenantInput, Viewer};
pub use user::{
    ActivationMethod, AuthPayload, CreateUserInput, CreateUserPayload, DeleteUserPayload, Session,
    SignUpInput, SignUpPayload, UpdateUserInput, User, UserConnection, UserPayload, UserRole,
    UserStatus, UserTotal,
};
pub use webhook::{
    CreateWebhookEndpointPayload, EventConnection, EventType, WebhookDelivery, WebhookEndpoint,
};

use crate::pagination::PageInfoParts;

/// Anything with a global id, fetched by `node(id:)`.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "async_graphql::ID",
    desc = "Opaque, globally unique."
))]
pub enum Node {
    Tenant(Tenant),
    ApiKey(ApiKey),
    Customer(Customer),
    User(User),
    Entitlement(Entitlement),
    Job(Job),
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    pub fn new(parts: PageInfoParts, cursors: &[String]) -> Self {
        Self {
            has_next_page: parts.has_next_page,
            has_previous_page: parts.has_previous_page,
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        }
    }
}

impl<T> From<async_graphql::MaybeUndefined<T>> for crate::actions::Patch<T> {
    fn from(value: async_graphql::MaybeUndefined<T>) -> Self {
        match value {
            async_graphql::MaybeUndefined::Undefined => crate::actions::Patch::Keep,
            async_graphql::MaybeUndefined::Null => crate::actions::Patch::Clear,
            async_graphql::MaybeUndefined::Value(value) => crate::actions::Patch::Set(value),
        }
    }
}
