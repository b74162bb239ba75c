use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::Customer;
use super::connection::{Connection, Total};
use crate::actions::accounts::SignUp;
use crate::actions::users::{NewUserCommand, UserChanges};
use crate::auth::{Caller, Principal, Scope};
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::graphql::loaders::Loaders;
use crate::ids::{self, NodeKind};
use crate::pagination::{self, Page};
use crate::{AppState, access};
use canopy_core::authz;
use canopy_core::id::TenantId;
use canopy_core::store::Count;
use canopy_core::store::customers::CustomerRow;
use canopy_core::store::users::{self, Filter, UserRow};

// The GraphQL face of the lifecycle's status (`canopy_core::lifecycle`).
/// Where a user is in its lifecycle; only the lifecycle's moves change it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::lifecycle::UserStatus")]
pub enum UserStatus {
    /// Must open the link in the validation or activation email.
    PendingEmailValidation,
    /// Waits in the approval queue.
    PendingApproval,
    Active,
    /// Cannot sign in.
    Suspended,
}

// The GraphQL face of `canopy_core::authz::Role`.
/// A user's place in its tenant.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::authz::Role")]
pub enum UserRole {
    /// Manages every customer and user of the tenant.
    TenantAdmin,
    /// Belongs to one customer; manages what it administers.
    CustomerUser,
}

// The GraphQL face of `canopy_core::store::tokens::ActivationMethod`.
/// How an activation link is handed out.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::store::tokens::ActivationMethod")]
pub enum ActivationMethod {
    /// Queue an invitation email carrying the activation link.
    SendActivationEmail,
    /// Return the activation link in the payload; send nothing.
    DisplayActivationLink,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Expired,
    /// Replaced by a newer link, or revoked.
    Revoked,
}

#[derive(SimpleObject)]
pub struct Invitation {
    pub state: InvitationState,
    pub method: ActivationMethod,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<canopy_core::store::tokens::InvitationRow> for Invitation {
    fn from(row: canopy_core::store::tokens::InvitationRow) -> Self {
        let state = if row.consumed_at.is_some() {
            InvitationState::Accepted
        } else if row.revoked_at.is_some() {
            InvitationState::Revoked
        } else if row.expires_at <= Utc::now() {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        };
        let method = row
            .method
            .map_or(ActivationMethod::DisplayActivationLink, Into::into);
        Self {
            state,
            method,
            expires_at: row.expires_at,
            created_at: row.created_at,
        }
    }
}

#[derive(Clone)]
pub struct User(pub UserRow);

impl User {
    /// Whether the caller is this user, or manages it and holds every power
    /// it holds (`authz::manage_user`), reading what it administers
    /// through the request's loaders.
    async fn is_self_or_covered(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let caller = guards::caller(ctx)?;
        if caller.user_id() == Some(self.0.id) {
            return Ok(true);
        }
        if !access::reaches_user(caller, &self.0) {
            return Ok(false);
        }
        let administered = self
            .administered_rows(ctx)
            .await?
            .into_iter()
            .map(|row| row.path)
            .collect();
        Ok(authz::manage_user(caller, &self.0.facts(administered)).is_allowed())
    }

    /// The customers this user administers, in order, through the
    /// request's loaders.
    async fn administered_rows(&self, ctx: &Context<'_>) -> ApiResult<Vec<CustomerRow>> {
        let loaders = ctx.data_unchecked::<Loaders>();
        let tenant = self.0.tenant_id;
        let ids = loaders
            .administered
            .load_one((tenant, self.0.id))
            .await?
            .unwrap_or_default();
        let mut found = loaders
            .customers
            .load_many(ids.iter().map(|id| (tenant, *id)))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(&(tenant, *id)))
            .collect())
    }

    /// Whether the caller manages this user or is it.
    fn is_managed_or_self(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let caller = guards::caller(ctx)?;
        Ok(caller.user_id() == Some(self.0.id) || access::reaches_user(caller, &self.0))
    }
}

#[Object]
impl User {
    pub async fn id(&self) -> ID {
        ids::of(self.0.id).into()
    }

    /// Unique within the tenant, compared case-insensitively.
    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }

    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }

    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    async fn role(&self) -> UserRole {
        self.0.role.into()
    }

    async fn status(&self) -> UserStatus {
        self.0.status.into()
    }

    /// Whether the user has proven the address, derived from the status.
    async fn email_verified(&self) -> bool {
        self.0.status.email_verified()
    }

    /// Null for tenant administrators.
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        let Some(customer_id) = self.0.customer_id else {
            return Ok(None);
        };
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .customers
            .load_one((self.0.tenant_id, customer_id))
            .await?
            .filter(|row| access::sees_customer(caller, row))
            .map(Customer))
    }

    async fn administered_customers(&self, ctx: &Context<'_>) -> ApiResult<Vec<Customer>> {
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        Ok(self
            .administered_rows(ctx)
            .await?
            .into_iter()
            .filter(|row| access::sees_customer(caller, row))
            .map(Customer)
            .collect())
    }

    /// The user's live sessions, newest first (at most 100): for the user
    /// itself and those who may end them (who manage it and hold every
    /// power it holds, as `revokeSessions` needs); empty for anyone else.
    async fn sessions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Session>> {
        if !self.is_self_or_covered(ctx).await? {
            return Ok(Vec::new());
        }
        let current = match guards::caller(ctx)?.principal {
            Principal::User { session_id, .. } => Some(session_id),
            Principal::ApiKey { .. } => None,
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .sessions
            .load_one((self.0.tenant_id, self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|row| Session {
                id: ids::encode(NodeKind::Session, row.id).into(),
                current: current == Some(row.id),
                created_at: row.created_at,
                expires_at: row.expires_at,
            })
            .collect())
    }

    /// The latest activation link issued to this user, if any.
    async fn invitation(&self, ctx: &Context<'_>) -> ApiResult<Option<Invitation>> {
        if !self.is_managed_or_self(ctx)? {
            return Ok(None);
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .invitations
            .load_one((self.0.tenant_id, self.0.id))
            .await?
            .map(Invitation::from))
    }

    /// Emails addressed to this user, newest first, with their delivery
    /// state. `first` defaults to 20 and may be at most 100.
    #[graphql(complexity = "pagination::connection_cost(first, child_complexity)")]
    async fn email_deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<super::JobConnection> {
        guards::require(ctx, Scope::UsersRead)?;
        if !self.is_managed_or_self(ctx)? {
            return Err(ApiError::Forbidden(
                "only the user and its managers see its email".into(),
            ));
        }
        super::JobConnection::for_user(
            ctx,
            self.0.tenant_id,
            self.0.id,
            pagination::page(first, after)?,
        )
        .await
    }

    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The partner's own id for the user, unique in the tenant.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub type UserConnection = Connection<User, UserTotal>;

/// Which set a user connection pages through, for its totalCount.
pub enum UserTotal {
    List { tenant_id: TenantId, filter: Filter },
    Nothing,
}

impl UserConnection {
    /// A page of users by address.
    pub async fn load(
        ctx: &Context<'_>,
        tenant_id: TenantId,
        filter: Filter,
        page: Page,
    ) -> ApiResult<Self> {
        let state = ctx.data_unchecked::<AppState>();
        let rows = users::list(&state.pool, tenant_id, &filter, &page).await?;
        Ok(Connection::new(
            &page,
            rows,
            |row| row.email_key.clone(),
            User,
            UserTotal::List { tenant_id, filter },
        ))
    }

    /// No users: what a caller gets for a customer it may not read.
    pub fn empty() -> Self {
        let page = Page {
            first: 0,
            after: None,
        };
        Connection::new(
            &page,
            Vec::new(),
            |row: &UserRow| row.id.to_string(),
            User,
            UserTotal::Nothing,
        )
    }

    /// A page of the approval queue, oldest first.
    pub async fn approvals(ctx: &Context<'_>, caller: &Caller, page: Page) -> ApiResult<Self> {
        let state = ctx.data_unchecked::<AppState>();
        let reach = caller.limits();
        let rows = users::approval_requests(&state.pool, caller.tenant_id, reach, &page).await?;
        let total = UserTotal::List {
            tenant_id: caller.tenant_id,
            filter: users::approval_filter(reach),
        };
        Ok(Connection::new(
            &page,
            rows,
            |row| row.id.to_string(),
            User,
            total,
        ))
    }
}

impl Total for UserTotal {
    async fn count(&self, ctx: &Context<'_>) -> ApiResult<Count> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(Count::exact(match self {
            UserTotal::List { tenant_id, filter } => {
                users::count(&state.pool, *tenant_id, filter).await?
            }
            UserTotal::Nothing => 0,
        }))
    }
}

/// A signed-in session of a user.
#[derive(SimpleObject)]
pub struct Session {
    /// As the audit log names it (`AuditEntry.sessionId`).
    pub id: ID,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether it is the session making this request.
    pub current: bool,
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Bearer token for the Authorization header.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

impl From<crate::actions::sessions::Session> for AuthPayload {
    fn from(session: crate::actions::sessions::Session) -> Self {
        Self {
            token: session.token,
            expires_at: session.expires_at,
            user: User(session.user),
        }
    }
}

#[derive(SimpleObject)]
pub struct UserPayload {
    pub user: User,
}

#[derive(SimpleObject)]
pub struct CreateUserPayload {
    pub user: User,
    /// Set for DISPLAY_ACTIVATION_LINK.
    pub activation_link: Option<String>,
}

#[derive(SimpleObject)]
pub struct DeleteUserPayload {
    pub deleted_user_id: ID,
}

#[derive(SimpleObject)]
pub struct SignUpPayload {
    pub user: User,
    pub customer: Customer,
}

/// A new user. Names at most 100 characters, phone at most 32.
#[derive(async_graphql::InputObject)]
pub struct CreateUserInput {
    /// Required for CUSTOMER_USER, absent for TENANT_ADMIN.
    pub customer_id: Option<ID>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    #[graphql(default_with = "Some(UserRole::CustomerUser)")]
    pub role: Option<UserRole>,
    pub activation: ActivationMethod,
    /// How long the activation link works: 1 to 720 hours, default 168 (7 days).
    pub activation_ttl_hours: Option<i32>,
    /// Your own id for the user: unique in the tenant, at most 255
    /// characters; set by API keys and tenant administrators only.
    pub external_id: Option<String>,
}

/// Fields left out are unchanged; a field given as null is cleared.
#[derive(async_graphql::InputObject)]
pub struct UpdateUserInput {
    pub first_name: async_graphql::MaybeUndefined<String>,
    pub last_name: async_graphql::MaybeUndefined<String>,
    pub phone: async_graphql::MaybeUndefined<String>,
    /// Changing it sends a validation email to the new address; the change
    /// takes effect when its link is used, and the address is reserved
    /// meanwhile.
    pub email: async_graphql::MaybeUndefined<String>,
    /// Set by API keys and tenant administrators only.
    pub external_id: async_graphql::MaybeUndefined<String>,
}

#[derive(async_graphql::InputObject)]
pub struct SignUpInput {
    /// The tenant's id.
    pub tenant_id: ID,
    /// Title of the new customer that the sign-up creates.
    pub customer_title: String,
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl CreateUserInput {
    /// The command, with `customerId` decoded.
    pub fn into_command(self) -> ApiResult<NewUserCommand> {
        let customer_id = self
            .customer_id
            .map(|id| ids::expect_id(&id, "customerId"))
            .transpose()?;
        Ok(NewUserCommand {
            customer_id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            phone: self.phone,
            role: self.role.map_or(authz::Role::CustomerUser, Into::into),
            activation: self.activation.into(),
            activation_ttl_hours: self.activation_ttl_hours,
            external_id: self.external_id,
        })
    }
}

impl From<UpdateUserInput> for UserChanges {
    fn from(input: UpdateUserInput) -> Self {
        UserChanges {
            first_name: input.first_name.into(),
            last_name: input.last_name.into(),
            phone: input.phone.into(),
            email: input.email.into(),
            external_id: input.external_id.into(),
        }
    }
}

impl From<SignUpInput> for SignUp {
    fn from(input: SignUpInput) -> Self {
        SignUp {
            tenant_id: ids::tenant(&input.tenant_id),
            customer_title: input.customer_title,
            email: input.email,
            password: input.password,
            first_name: input.first_name,
            last_name: input.last_name,
        }
    }
}
