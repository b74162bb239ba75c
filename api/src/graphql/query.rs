//! Every root query field: the viewer, any node by id, customers by id or
//! number, users by id or address, the lists of both, the approval queue,
//! the job queue and the API keys, each within what the caller may read.

use async_graphql::{Context, ID, Object};

use super::guards;
use super::loaders::Loaders;
use super::types::{
    ApiKey, AuditEntryConnection, AuditLogFilter, Customer, CustomerConnection, CustomerTotal,
    Entitlement, EventConnection, Job, JobQueue, Node, Tenant, User, UserConnection, UserStatus,
    Viewer, WebhookEndpoint,
};
use crate::AppState;
use crate::access;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, NodeKind};
use crate::pagination::{self, connection_cost};
use crate::validation;
use canopy_core::id::{CustomerId, JobId, UserId};
use canopy_core::store::webhooks;
use canopy_core::store::{api_keys, customers, entitlements, jobs, tenants, users};

pub struct Query;

#[Object]
impl Query {
    /// Any object by its global id; null when it does not exist or is out of
    /// the caller's reach.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Node>> {
        let caller = guards::caller(ctx)?;
        let tenant = caller.tenant_id;
        let Some((kind, number)) = ids::decode(&id) else {
            return Err(ApiError::bad_input("id", "id is not a valid id"));
        };
        let state = ctx.data_unchecked::<AppState>();
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(match kind {
            NodeKind::Tenant if number == tenant.0 => tenants::by_id(&state.pool, tenant)
                .await?
                .map(|row| Node::Tenant(Tenant(row))),
            NodeKind::Tenant => None,
            NodeKind::Customer => {
                guards::require(ctx, Scope::CustomersRead)?;
                loaders
                    .customers
                    .load_one((tenant, CustomerId(number)))
                    .await?
                    .filter(|row| access::sees_customer(caller, row))
                    .map(|row| Node::Customer(Customer(row)))
            }
            NodeKind::User => {
                guards::require(ctx, Scope::UsersRead)?;
                loaders
                    .users
                    .load_one((tenant, UserId(number)))
                    .await?
                    .filter(|row| access::sees_user(caller, row))
                    .map(|row| Node::User(User(row)))
            }
            NodeKind::ApiKey => {
                guards::require(ctx, Scope::ApiKeysWrite)?;
                api_keys::by_id(&state.pool, tenant, number)
                    .await?
                    .map(|row| Node::ApiKey(ApiKey(row)))
            }
            NodeKind::Job => {
                guards::require(ctx, Scope::JobsRead)?;
                jobs::by_id(&state.pool, tenant, JobId(number))
                    .await?
                    .map(|row| Node::Job(Job(row)))
            }
            NodeKind::Session
            | NodeKind::WebhookEndpoint
            | NodeKind::WebhookDelivery
            | NodeKind::Event => None,
            NodeKind::Entitlement => {
                guards::require(ctx, Scope::CustomersRead)?;
                let mut conn = state.pool.acquire().await?;
                let row = entitlements::by_id(&mut conn, tenant, number).await?;
                let holder = match row.as_ref().and_then(|r| r.customer_id) {
                    Some(id) => loaders.customers.load_one((tenant, id)).await?,
                    None => None,
                };
                // A detached entitlement belongs to the tenant's view only.
                let visible = match &holder {
                    Some(customer) => access::sees_customer(caller, customer),
                    None => caller.limits().is_none(),
                };
                row.filter(|_| visible)
                    .map(|row| Node::Entitlement(Entitlement(row)))
            }
        })
    }

    async fn viewer(&self, ctx: &Context<'_>) -> ApiResult<Viewer> {
        Ok(Viewer(guards::caller(ctx)?.clone()))
    }

    async fn customer(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Customer>> {
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        let Some((kind, number)) = ids::decode(&id) else {
            return Err(ApiError::bad_input("id", "id is not a valid id"));
        };
        if kind != NodeKind::Customer {
            return Ok(None);
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .customers
            .load_one((caller.tenant_id, CustomerId(number)))
            .await?
            .filter(|row| access::sees_customer(caller, row))
            .map(Customer))
    }

    async fn customer_by_number(
        &self,
        ctx: &Context<'_>,
        number: String,
    ) -> ApiResult<Option<Customer>> {
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        let number = validation::required("number", &number, validation::MAX_NUMBER_CHARS)?;
        let state = ctx.data_unchecked::<AppState>();
        Ok(customers::by_number(&state.pool, caller.tenant_id, &number)
            .await?
            .filter(|row| access::sees_customer(caller, row))
            .map(Customer))
    }

    /// The customer you know by your own id (`externalId`); null when none
    /// is, or it is out of reach.
    async fn customer_by_external_id(
        &self,
        ctx: &Context<'_>,
        external_id: String,
    ) -> ApiResult<Option<Customer>> {
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        let Some(external_id) = validation::external_id(Some(&external_id))? else {
            return Ok(None);
        };
        let state = ctx.data_unchecked::<AppState>();
        Ok(
            customers::by_external_id(&state.pool, caller.tenant_id, &external_id)
                .await?
                .filter(|row| access::sees_customer(caller, row))
                .map(Customer),
        )
    }

    /// Customers the caller may see. search matches the number or the title,
    /// case-insensitively, anywhere in it (3 to 200 characters); absent
    /// or blank lists them all. Ordered by title then number. `first`
    /// defaults to 20 and may be at most 100.
    #[graphql(complexity = "pagination::search_cost(first, &search, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        #[graphql(default_with = "Some(false)")] roots_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<CustomerConnection> {
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        let page = pagination::page(first, after)?;
        let filter = customers::Filter {
            search: pagination::search(search.as_deref())?,
            roots_only: roots_only.unwrap_or(false),
            reach: caller.limits().cloned(),
        };
        let state = ctx.data_unchecked::<AppState>();
        let rows = customers::list(&state.pool, caller.tenant_id, &filter, &page).await?;
        Ok(CustomerConnection::of(
            &page,
            rows,
            CustomerTotal::List {
                tenant_id: caller.tenant_id,
                filter,
            },
        ))
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        let caller = guards::require(ctx, Scope::UsersRead)?;
        let Some((kind, number)) = ids::decode(&id) else {
            return Err(ApiError::bad_input("id", "id is not a valid id"));
        };
        if kind != NodeKind::User {
            return Ok(None);
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .users
            .load_one((caller.tenant_id, UserId(number)))
            .await?
            .filter(|row| access::sees_user(caller, row))
            .map(User))
    }

    /// Compared case-insensitively.
    async fn user_by_email(&self, ctx: &Context<'_>, email: String) -> ApiResult<Option<User>> {
        let caller = guards::require(ctx, Scope::UsersRead)?;
        let email = validation::lookup_email("email", &email)?;
        let state = ctx.data_unchecked::<AppState>();
        let mut conn = state.pool.acquire().await?;
        Ok(users::by_email(&mut conn, caller.tenant_id, &email)
            .await?
            .filter(|row| access::sees_user(caller, row))
            .map(User))
    }

    /// The user you know by your own id (`externalId`); null when none is,
    /// or it is out of reach.
    async fn user_by_external_id(
        &self,
        ctx: &Context<'_>,
        external_id: String,
    ) -> ApiResult<Option<User>> {
        let caller = guards::require(ctx, Scope::UsersRead)?;
        let Some(external_id) = validation::external_id(Some(&external_id))? else {
            return Ok(None);
        };
        let state = ctx.data_unchecked::<AppState>();
        Ok(
            users::by_external_id(&state.pool, caller.tenant_id, &external_id)
                .await?
                .filter(|row| access::sees_user(caller, row))
                .map(User),
        )
    }

    /// Users by email address; `search` matches email or names anywhere,
    /// case-insensitively (3 to 200 characters). `first` defaults to 20 and may be at most 100.
    #[graphql(complexity = "pagination::search_cost(first, &search, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        customer_id: Option<ID>,
        status: Option<UserStatus>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<UserConnection> {
        let caller = guards::require(ctx, Scope::UsersRead)?;
        let customer_id = customer_id
            .map(|id| ids::expect_id(&id, "customerId"))
            .transpose()?;
        let filter = users::Filter {
            customer_id,
            status: status.map(Into::into),
            search: pagination::search(search.as_deref())?,
            reach: caller.limits().cloned(),
        };
        UserConnection::load(
            ctx,
            caller.tenant_id,
            filter,
            pagination::page(first, after)?,
        )
        .await
    }

    /// The request queue: users waiting for approval that the caller may
    /// approve, oldest first. `first` defaults to 20 and may be at most 100.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn approval_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<UserConnection> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        UserConnection::approvals(ctx, caller, pagination::page(first, after)?).await
    }

    /// The job queue: counts per kind and state, active workers, and the
    /// jobs themselves. Needs JOBS_READ (tenant administrators hold it).
    async fn job_queue(&self, ctx: &Context<'_>) -> ApiResult<JobQueue> {
        let caller = guards::require(ctx, Scope::JobsRead)?;
        Ok(JobQueue {
            tenant_id: caller.tenant_id,
        })
    }

    /// The audit log, newest first: one entry for each mutation that
    /// changed something, written in its transaction. A tenant
    /// administrator (or a key holding every scope) reads the whole
    /// tenant's; a customer administrator the entries about customers in
    /// the subtrees it administers (as they stood when written); anyone
    /// else is FORBIDDEN. Entries are kept CANOPY_AUDIT_RETENTION_DAYS.
    /// `totalCount` stops at 10,000. `first` defaults to 20 and may be at
    /// most 100.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<AuditEntryConnection> {
        let caller = guards::caller(ctx)?;
        AuditEntryConnection::load(ctx, caller, filter, pagination::page(first, after)?).await
    }

    /// The tenant's webhook endpoints (at most 20) whose every event type
    /// the caller may read: a narrower caller sees neither their URLs nor
    /// what they were sent. Needs API_KEYS_WRITE.
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> ApiResult<Vec<WebhookEndpoint>> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let state = ctx.data_unchecked::<AppState>();
        Ok(webhooks::endpoints(&state.pool, caller.tenant_id)
            .await?
            .into_iter()
            .filter(|row| row.events.iter().all(|e| caller.has(e.scope())))
            .map(WebhookEndpoint)
            .collect())
    }

    /// The tenant's events, oldest first, after the cursor `after` (an
    /// `endCursor` of this list): what webhooks send, to catch up after an
    /// endpoint was down or disabled. Only the types whose read scope the
    /// caller holds; tenant-wide callers only (API keys and tenant
    /// administrators), else FORBIDDEN. Events are kept
    /// CANOPY_EVENT_RETENTION_DAYS. `first` defaults to 20 and may be at
    /// most 100.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<EventConnection> {
        let caller = guards::caller(ctx)?;
        if caller.limits().is_some() {
            return Err(ApiError::Forbidden(
                "events are read by API keys and tenant administrators".into(),
            ));
        }
        EventConnection::load(ctx, caller, pagination::page(first, after)?).await
    }

    /// The tenant's API keys, newest first, revoked ones included.
    async fn api_keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<ApiKey>> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let state = ctx.data_unchecked::<AppState>();
        Ok(api_keys::list(&state.pool, caller.tenant_id)
            .await?
            .into_iter()
            .map(ApiKey)
            .collect())
    }
}
