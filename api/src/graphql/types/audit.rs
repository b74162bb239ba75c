//! The audit log as its readers see it: administrators, each within its
//! sight (`authz::audit_sight`).

use async_graphql::{Context, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};

use super::Customer;
use super::actor::Actor;
use super::connection::{Connection, Total};
use crate::AppState;
use crate::access;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::graphql::loaders::Loaders;
use crate::ids::{self, NodeKind};
use crate::pagination::Page;
use canopy_core::authz::{Actor as CoreActor, AuditSight};
use canopy_core::id::{TenantId, UserId};
use canopy_core::store::Count;
use canopy_core::store::audit::{self, EntryRow, Filter};

/// One change: who made it (and through which session), what (the
/// mutation and the objects it made or changed), when, and from which
/// client address.
#[derive(Clone)]
pub struct AuditEntry(EntryRow);

#[Object]
impl AuditEntry {
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// The mutation's name (`createUser`), or `create-tenant` for the
    /// command that made the tenant.
    async fn operation(&self) -> &str {
        &self.0.operation
    }

    /// Who acted: a user or an API key, each shown as `Actor` shows them;
    /// neither for a public mutation made by no one signed in (a sign-up's
    /// address already taken, a reset asked for) or for the command.
    async fn actor(&self) -> Actor {
        Actor {
            tenant_id: self.0.tenant_id,
            actor: self.0.actor(),
        }
    }

    /// The session the user acted through (`Session.id`).
    async fn session_id(&self) -> Option<ID> {
        self.0
            .session_id
            .map(|id| ids::encode(NodeKind::Session, id).into())
    }

    /// The client's address, to callers reading the whole tenant's log;
    /// null for customer administrators.
    async fn client_address(&self, ctx: &Context<'_>) -> ApiResult<Option<&str>> {
        let tenant_wide = guards::caller(ctx)?.limits().is_none();
        Ok(self.0.client_addr.as_deref().filter(|_| tenant_wide))
    }

    /// The request's X-Request-Id.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The customer it concerns, when there is one and the caller sees it
    /// (not once deleted).
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        let caller = guards::caller(ctx)?;
        let Some(path) = &self.0.customer_path else {
            return Ok(None);
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .customers
            .load_one((self.0.tenant_id, path.id()))
            .await?
            .filter(|row| access::sees_customer(caller, row))
            .map(Customer))
    }

    /// The objects it made or changed, by global id (some may no longer
    /// exist).
    async fn object_ids(&self) -> Vec<ID> {
        self.0
            .objects
            .iter()
            .filter_map(|object| ids::from_reference(object))
            .map(ID)
            .collect()
    }

    /// A few facts of the change: the status set, the kind paused, how
    /// many sessions ended.
    async fn detail(&self) -> Option<Json<serde_json::Value>> {
        self.0.detail.clone().map(Json)
    }
}

/// Which entries: every condition given must hold.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// A mutation's name, as `operation` shows it.
    pub operation: Option<String>,
    /// Entries that made or changed this object.
    pub object_id: Option<ID>,
    /// Entries of this user or API key.
    pub actor_id: Option<ID>,
    /// Written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Written before this time.
    pub until: Option<DateTime<Utc>>,
}

impl AuditLogFilter {
    fn decode(self) -> ApiResult<Filter> {
        let operation = self
            .operation
            .map(|op| {
                let valid = (1..=64).contains(&op.len())
                    && op.chars().all(|c| c.is_ascii_alphabetic() || c == '-');
                valid.then_some(op).ok_or_else(|| {
                    ApiError::bad_input("filter.operation", "filter.operation names no operation")
                })
            })
            .transpose()?;
        let object = self
            .object_id
            .map(|id| {
                ids::decode(&id)
                    .map(|(kind, number)| ids::reference(kind, number))
                    .ok_or_else(|| {
                        ApiError::bad_input("filter.objectId", "filter.objectId is not a valid id")
                    })
            })
            .transpose()?;
        let actor = self
            .actor_id
            .map(|id| match ids::decode(&id) {
                Some((NodeKind::User, number)) => Ok(CoreActor {
                    user_id: Some(UserId(number)),
                    key_id: None,
                }),
                Some((NodeKind::ApiKey, number)) => Ok(CoreActor {
                    user_id: None,
                    key_id: Some(number),
                }),
                _ => Err(ApiError::bad_input(
                    "filter.actorId",
                    "filter.actorId must name a user or an API key",
                )),
            })
            .transpose()?;
        Ok(Filter {
            operation,
            object,
            actor,
            since: self.since,
            until: self.until,
        })
    }
}

/// What an audit log connection counts: the entries the reader sees that
/// its filter names, up to 10,000.
pub struct AuditSet {
    tenant_id: TenantId,
    sight: AuditSight,
    filter: Filter,
}

impl Total for AuditSet {
    async fn count(&self, ctx: &Context<'_>) -> ApiResult<Count> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(audit::count(&state.pool, self.tenant_id, &self.sight, &self.filter).await?)
    }
}

pub type AuditEntryConnection = Connection<AuditEntry, AuditSet>;

impl AuditEntryConnection {
    pub async fn load(
        ctx: &Context<'_>,
        caller: &Caller,
        filter: Option<AuditLogFilter>,
        page: Page,
    ) -> ApiResult<AuditEntryConnection> {
        let sight = access::enforce_audit_sight(caller)?;
        let filter = filter.unwrap_or_default().decode()?;
        let state = ctx.data_unchecked::<AppState>();
        let rows = audit::page(&state.pool, caller.tenant_id, &sight, &filter, &page).await?;
        Ok(Connection::new(
            &page,
            rows,
            |row| row.id.to_string(),
            AuditEntry,
            AuditSet {
                tenant_id: caller.tenant_id,
                sight,
                filter,
            },
        ))
    }
}
