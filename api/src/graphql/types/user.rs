use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Customer, PageInfo};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::graphql::guards;
use crate::graphql::loaders::Loaders;
use crate::ids::{self, NodeKind};
use crate::pagination::{self, Page, PageInfoParts};
use crate::store::users::{self, Filter, UserRow};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserStatus {
    /// Must open the link in the validation or activation email.
    PendingEmailValidation,
    /// Waits in the approval queue.
    PendingApproval,
    Active,
    /// Cannot sign in.
    Suspended,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::PendingEmailValidation => "PENDING_EMAIL_VALIDATION",
            UserStatus::PendingApproval => "PENDING_APPROVAL",
            UserStatus::Active => "ACTIVE",
            UserStatus::Suspended => "SUSPENDED",
        }
    }

    fn parse(value: &str) -> Self {
        match value {
            "PENDING_APPROVAL" => UserStatus::PendingApproval,
            "ACTIVE" => UserStatus::Active,
            "SUSPENDED" => UserStatus::Suspended,
            _ => UserStatus::PendingEmailValidation,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserRole {
    /// Manages every customer and user of the tenant.
    TenantAdmin,
    /// Belongs to one customer; manages what it administers.
    CustomerUser,
}

pub struct User(pub UserRow);

#[Object]
impl User {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::User, self.0.id)
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
        if self.0.role == "TENANT_ADMIN" {
            UserRole::TenantAdmin
        } else {
            UserRole::CustomerUser
        }
    }

    async fn status(&self) -> UserStatus {
        UserStatus::parse(&self.0.status)
    }

    /// Whether the user has proven the address, derived from the status.
    async fn email_verified(&self) -> bool {
        UserStatus::parse(&self.0.status) != UserStatus::PendingEmailValidation
    }

    /// Null for tenant administrators.
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        let Some(customer_id) = self.0.customer_id else {
            return Ok(None);
        };
        guards::require(ctx, Scope::CustomersRead)?;
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .customers
            .load_one((self.0.tenant_id, customer_id))
            .await?
            .map(Customer))
    }

    async fn administered_customers(&self, ctx: &Context<'_>) -> ApiResult<Vec<Customer>> {
        guards::require(ctx, Scope::CustomersRead)?;
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
            .map(Customer)
            .collect())
    }

    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(SimpleObject)]
pub struct UserEdge {
    pub cursor: String,
    pub node: User,
}

pub struct UserConnection {
    rows: Vec<UserRow>,
    cursors: Vec<String>,
    info: PageInfoParts,
    tenant_id: i64,
    filter: Filter,
}

impl UserConnection {
    pub async fn load(
        ctx: &Context<'_>,
        tenant_id: i64,
        filter: Filter,
        page: Page,
    ) -> ApiResult<Self> {
        let state = ctx.data_unchecked::<AppState>();
        let rows = users::list(&state.pool, tenant_id, &filter, &page).await?;
        let (rows, info) = page.finish(rows);
        let cursors = rows
            .iter()
            .map(|row| pagination::encode_cursor(&row.email_key))
            .collect();
        Ok(Self {
            rows,
            cursors,
            info,
            tenant_id,
            filter,
        })
    }
}

#[Object]
impl UserConnection {
    async fn edges(&self) -> Vec<UserEdge> {
        self.rows
            .iter()
            .zip(&self.cursors)
            .map(|(row, cursor)| UserEdge {
                cursor: cursor.clone(),
                node: User(row.clone()),
            })
            .collect()
    }

    async fn nodes(&self) -> Vec<User> {
        self.rows.iter().cloned().map(User).collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo::new(self.info, &self.cursors)
    }

    /// All matching users, not just this page.
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(users::count(&state.pool, self.tenant_id, &self.filter).await?)
    }
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
