//! Creating a tenant with its first administrator: how a fresh installation
//! gets its first caller (`canopy-api create-tenant`).

use chrono::Duration;
use serde::Serialize;
use url::Url;

use sqlx::PgPool;

use super::change::{Origin, Record, Writer};
use crate::access;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, NodeKind};
use crate::validation;
use canopy_core::authz;
use canopy_core::id::TenantId;
use canopy_core::lifecycle::UserStatus;
use canopy_core::links;
use canopy_core::secrets::{self, Keyring, SecretKind};
use canopy_core::store::tenants::TenantRow;
use canopy_core::store::tokens::ActivationMethod;
use canopy_core::store::{api_keys, tenants, tokens, users};

/// How long an activation link works unless the caller says otherwise.
pub const ACTIVATION_TTL_HOURS: i64 = 168;

pub struct NewTenant {
    pub name: String,
    pub admin_email: String,
    /// The tenant's own portal; `None`: Canopy's account pages
    /// (`<CANOPY_PUBLIC_URL>/account/<tenant id>`).
    pub portal_url: Option<String>,
    pub require_approval: bool,
    pub self_sign_up: bool,
    /// An https URL of its logo, for its account pages and emails.
    pub logo_url: Option<String>,
    /// Its accent colour, `#rrggbb`.
    pub accent_color: Option<String>,
}

/// What `create-tenant` prints: the only time the API key is shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTenant {
    pub tenant_id: String,
    pub admin_user_id: String,
    pub api_key: String,
    pub activation_link: String,
}

impl NewTenant {
    /// Checks every field, so a caller can refuse bad input before it
    /// touches the database.
    pub fn validate(&self) -> ApiResult<()> {
        validation::required("name", &self.name, validation::MAX_TITLE_CHARS)?;
        validation::email("adminEmail", &self.admin_email)?;
        self.portal_url.as_deref().map(portal_url).transpose()?;
        self.logo_url.as_deref().map(logo_url).transpose()?;
        self.accent_color.as_deref().map(accent_color).transpose()?;
        Ok(())
    }
}

/// The `create-tenant` command: its audit entry names no actor (whoever
/// runs the command holds the database).
pub async fn create(
    pool: &PgPool,
    keyring: &Keyring,
    public_url: &Url,
    new: NewTenant,
) -> ApiResult<CreatedTenant> {
    let name = validation::required("name", &new.name, validation::MAX_TITLE_CHARS)?;
    let admin_email = validation::email("adminEmail", &new.admin_email)?;
    let own_portal = new.portal_url.as_deref().map(portal_url).transpose()?;
    let logo = new.logo_url.as_deref().map(logo_url).transpose()?;
    let accent = new.accent_color.as_deref().map(accent_color).transpose()?;

    let db = Writer::new(pool, Origin::command("create-tenant"));
    let mut tx = db.begin().await?;
    let mut settings = tenants::Settings {
        name: &name,
        portal_url: own_portal.as_ref().unwrap_or(public_url).as_str(),
        require_approval: new.require_approval,
        self_sign_up: new.self_sign_up,
        logo_url: logo.as_ref().map(Url::as_str),
        accent_color: accent.as_deref(),
    };
    let mut tenant = tenants::insert(&mut tx, &settings).await?;
    // Without a portal of its own, the account pages are its portal; their
    // address names the tenant, known only now.
    let hosted = account_pages(public_url, tenant.id);
    if own_portal.is_none() {
        settings.portal_url = hosted.as_str();
        tenant = tenants::update(&mut tx, tenant.id, &settings).await?;
    }
    let portal_url = own_portal.unwrap_or(hosted);
    let admin = users::insert(
        &mut tx,
        tenant.id,
        &users::NewUser {
            customer_id: None,
            email: &admin_email,
            first_name: None,
            last_name: None,
            phone: None,
            role: authz::Role::TenantAdmin,
            status: UserStatus::PendingEmailValidation,
            external_id: None,
        },
    )
    .await?;
    let activation = tokens::issue(
        &mut tx,
        keyring,
        tokens::TokenRequest {
            tenant_id: tenant.id,
            user_id: admin.id,
            purpose: tokens::Purpose::Activation,
            ttl: Duration::hours(ACTIVATION_TTL_HOURS),
            method: Some(ActivationMethod::DisplayActivationLink),
            email: None,
        },
    )
    .await?;
    let key = secrets::mint(SecretKind::ApiKey, tenant.id);
    let key_row = api_keys::insert(
        &mut tx,
        tenant.id,
        &api_keys::NewKey {
            name: "Initial key",
            scopes: &Scope::ALL,
            prefix: secrets::visible_prefix(&key.plaintext),
            secret_hash: &key.hash,
            expires_at: None,
            rate_limit_per_minute: None,
        },
    )
    .await?;
    tx.commit(
        Record::tenant(tenant.id)
            .object(tenant.id)
            .object(admin.id)
            .object_of(NodeKind::ApiKey, key_row.id),
    )
    .await?;

    Ok(CreatedTenant {
        tenant_id: ids::of(tenant.id),
        admin_user_id: ids::of(admin.id),
        api_key: key.plaintext,
        activation_link: links::link(&portal_url, links::ACTIVATE, &activation.token),
    })
}

/// Where Canopy serves a tenant's account pages: `<public>/account/<tenant id>`.
pub fn account_pages(public_url: &Url, tenant: TenantId) -> Url {
    let mut url = public_url.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .push("account")
            .push(&ids::of(tenant));
    }
    url
}

/// A one-line account of why creating a tenant failed, for the CLI.
pub fn describe(error: &ApiError) -> String {
    match error {
        ApiError::BadInput { message, .. } | ApiError::Conflict { message, .. } => message.clone(),
        ApiError::Internal(cause) => format!("{cause:#}"),
        other => other.code().to_owned(),
    }
}

/// Changes to a tenant's settings; a field left out keeps its value.
#[derive(Clone, Debug, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub require_approval: Option<bool>,
    pub portal_url: Option<String>,
    pub self_sign_up: Option<bool>,
    /// An https URL; empty removes the logo.
    pub logo_url: Option<String>,
    /// `#rrggbb`; empty removes the colour.
    pub accent_color: Option<String>,
}

/// Changes the caller's tenant; needs every scope (`authz::change_tenant`).
pub async fn update(
    db: &Writer<'_>,
    caller: &Caller,
    input: TenantChanges,
) -> ApiResult<TenantRow> {
    access::enforce(authz::change_tenant(caller), "tenant")?;
    let name = input
        .name
        .map(|name| validation::required("name", &name, validation::MAX_TITLE_CHARS))
        .transpose()?;
    let portal = input.portal_url.map(|url| portal_url(&url)).transpose()?;
    // Given: a value to set, or empty to remove; left out: kept.
    let logo = input
        .logo_url
        .map(|url| cleared(&url).map(logo_url).transpose())
        .transpose()?;
    let accent = input
        .accent_color
        .map(|colour| cleared(&colour).map(accent_color).transpose())
        .transpose()?;
    let mut tx = db.begin().await?;
    let current = tenants::lock(&mut tx, caller.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let row = tenants::update(
        &mut tx,
        current.id,
        &tenants::Settings {
            name: name.as_deref().unwrap_or(&current.name),
            portal_url: portal
                .as_ref()
                .map_or(current.portal_url.as_str(), Url::as_str),
            require_approval: input.require_approval.unwrap_or(current.require_approval),
            self_sign_up: input.self_sign_up.unwrap_or(current.self_sign_up),
            logo_url: match &logo {
                Some(logo) => logo.as_ref().map(Url::as_str),
                None => current.logo_url.as_deref(),
            },
            accent_color: match &accent {
                Some(accent) => accent.as_deref(),
                None => current.accent_color.as_deref(),
            },
        },
    )
    .await?;
    tx.commit(Record::tenant(row.id).object(row.id)).await?;
    Ok(row)
}

/// `None` for a blank value (remove the setting), else the value.
fn cleared(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// A logo's address: https (pages and emails load it; a page on https
/// must not load from http), at most 2,048 characters.
fn logo_url(value: &str) -> ApiResult<Url> {
    let bad = || {
        ApiError::bad_input(
            "logoUrl",
            "logoUrl must be an https URL of at most 2048 characters",
        )
    };
    let url = Url::parse(value.trim()).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host().is_none() || url.as_str().len() > 2048 {
        return Err(bad());
    }
    Ok(url)
}

/// An accent colour: `#rrggbb`, kept in lower case.
fn accent_color(value: &str) -> ApiResult<String> {
    let value = value.trim().to_ascii_lowercase();
    let hex = value.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_input(
            "accentColor",
            "accentColor must be a colour as #rrggbb",
        ));
    }
    Ok(value)
}

fn portal_url(value: &str) -> ApiResult<Url> {
    let bad = || ApiError::bad_input("portalUrl", "portalUrl must be an http(s) URL");
    let url = Url::parse(value.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_take_https_logos_and_hex_colours() {
        assert!(logo_url("https://cdn.example.com/logo.png").is_ok());
        assert!(logo_url("http://cdn.example.com/logo.png").is_err());
        assert!(logo_url("javascript:alert(1)").is_err());
        assert!(logo_url(&format!("https://x.example/{}", "a".repeat(2048))).is_err());
        assert_eq!(accent_color(" #0B6E4F ").unwrap(), "#0b6e4f");
        for bad in ["0b6e4f", "#0b6e4", "#0b6e4fa", "#gggggg", "red"] {
            assert!(accent_color(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn portal_urls_must_be_http() {
        assert!(portal_url("https://portal.example.com/app/").is_ok());
        assert!(portal_url("ftp://x").is_err());
        assert!(portal_url("nonsense").is_err());
    }
}
