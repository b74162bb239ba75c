use async_graphql::{Context, ID, InputObject, Object};

use super::{ApiKey, Scope, User};
use crate::AppState;
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::graphql::loaders::Loaders;
use crate::ids::{self};
use canopy_core::store::api_keys;
use canopy_core::store::tenants::TenantRow;

/// A tenant (a reseller, a vendor): everything else belongs to exactly one.
pub struct Tenant(pub TenantRow);

#[Object]
impl Tenant {
    pub async fn id(&self) -> ID {
        ids::of(self.0.id).into()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Self sign-ups wait in the approval queue after validating their email.
    async fn require_approval(&self) -> bool {
        self.0.require_approval
    }

    /// Base URL of the customer portal; links in emails point below it.
    async fn portal_url(&self) -> &str {
        &self.0.portal_url
    }

    /// Whether anyone may sign up (`signUp`); when false, sign-up answers
    /// as if the tenant did not exist.
    async fn self_sign_up(&self) -> bool {
        self.0.self_sign_up
    }

    /// An https URL of its logo, shown on its account pages and in its
    /// emails.
    async fn logo_url(&self) -> Option<&str> {
        self.0.logo_url.as_deref()
    }

    /// Its accent colour, `#rrggbb`, for its account pages and emails.
    async fn accent_color(&self) -> Option<&str> {
        self.0.accent_color.as_deref()
    }
}

/// Changes to the tenant's settings; fields left out are unchanged.
#[derive(InputObject)]
pub struct UpdateTenantInput {
    /// At most 200 characters.
    pub name: Option<String>,
    pub require_approval: Option<bool>,
    /// An http(s) URL.
    pub portal_url: Option<String>,
    pub self_sign_up: Option<bool>,
    /// An https URL of the tenant's logo (at most 2,048 characters), shown
    /// on its account pages and in its emails; empty removes it.
    pub logo_url: Option<String>,
    /// The tenant's accent colour, `#rrggbb`, for its account pages and
    /// emails; empty removes it.
    pub accent_color: Option<String>,
}

/// Who is calling.
pub struct Viewer(pub Caller);

#[Object]
impl Viewer {
    async fn tenant(&self, ctx: &Context<'_>) -> ApiResult<Tenant> {
        let state = ctx.data_unchecked::<AppState>();
        canopy_core::store::tenants::by_id(&state.pool, self.0.tenant_id)
            .await?
            .map(Tenant)
            .ok_or_else(|| ApiError::not_found("tenant"))
    }

    /// Set when the caller is a signed-in user.
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Principal::User { id, .. } = &self.0.principal else {
            return Ok(None);
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .users
            .load_one((self.0.tenant_id, *id))
            .await?
            .map(User))
    }

    /// Set when the caller is an API key.
    async fn api_key(&self, ctx: &Context<'_>) -> ApiResult<Option<ApiKey>> {
        let Principal::ApiKey { id, .. } = &self.0.principal else {
            return Ok(None);
        };
        let state = ctx.data_unchecked::<AppState>();
        Ok(api_keys::by_id(&state.pool, self.0.tenant_id, *id)
            .await?
            .map(ApiKey))
    }

    async fn scopes(&self) -> Vec<Scope> {
        self.0.scopes().iter().copied().map(Scope::from).collect()
    }
}

impl From<UpdateTenantInput> for crate::actions::tenants::TenantChanges {
    fn from(input: UpdateTenantInput) -> Self {
        Self {
            name: input.name,
            require_approval: input.require_approval,
            portal_url: input.portal_url,
            self_sign_up: input.self_sign_up,
            logo_url: input.logo_url,
            accent_color: input.accent_color,
        }
    }
}
