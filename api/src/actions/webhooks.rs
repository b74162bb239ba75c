//! Registering webhook endpoints, and sending a delivery again. An
//! endpoint gets only the events whose read scope its registrar holds, and
//! only at an address that is no private one (unless the server allows it).

use url::Url;

use super::change::{Record, Writer};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ids::NodeKind;
use crate::validation;
use canopy_core::config::Config;
use canopy_core::events::{self, EventType};
use canopy_core::secrets::Keyring;
use canopy_core::store::webhooks::{self, DeliveryRow, EndpointRow, NewEndpoint};

/// The most endpoints a tenant registers: each event is written once per
/// endpoint that wants it, inside the change that caused it.
pub const MAX_ENDPOINTS: usize = 20;

/// An endpoint as the caller describes it; checked by `checked`.
pub struct EndpointCommand {
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
}

struct Checked {
    url: Url,
    events: Vec<EventType>,
    description: Option<String>,
}

/// Checks an endpoint: events the caller may read (at least one), a
/// description of at most 200 characters, and an https URL (http too when
/// private addresses are allowed) of at most 2,048 characters, without
/// credentials, whose host resolves to public addresses only.
async fn checked(config: &Config, caller: &Caller, command: EndpointCommand) -> ApiResult<Checked> {
    let mut events = command.events;
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::bad_input("events", "choose at least one event"));
    }
    if let Some(event) = events.iter().find(|e| !caller.has(e.scope())) {
        return Err(ApiError::Forbidden(format!(
            "{} events need the {} scope",
            event.as_str(),
            event.scope().as_str()
        )));
    }
    let description = validation::optional("description", command.description.as_deref(), 200)?;
    let url = public_url(config, command.url.trim()).await?;
    Ok(Checked {
        url,
        events,
        description,
    })
}

async fn public_url(config: &Config, value: &str) -> ApiResult<Url> {
    let bad = |message: &str| ApiError::bad_input("url", message);
    let url = Url::parse(value).map_err(|_| bad("url is not a URL"))?;
    let allowed_scheme =
        url.scheme() == "https" || (config.webhook_allow_private && url.scheme() == "http");
    if !allowed_scheme || value.len() > 2048 {
        return Err(bad("url must be an https URL of at most 2048 characters"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("url must not carry credentials"));
    }
    let host = url.host_str().ok_or_else(|| bad("url has no host"))?;
    if config.webhook_allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // One answer whether the host does not resolve or resolves inside:
    // the API's resolver is no oracle for internal names.
    let refused = || bad("url's host must resolve to public addresses only");
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| refused())?
        .collect();
    if addresses.is_empty() || addresses.iter().any(|a| !events::is_public(a.ip())) {
        return Err(refused());
    }
    Ok(url)
}

fn record(row: &EndpointRow) -> Record {
    Record::tenant(row.tenant_id).object_of(NodeKind::WebhookEndpoint, row.id)
}

/// Registers an endpoint; answers it with its signing secret, shown once
/// (derived from the server secret, never stored).
pub async fn create(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    command: EndpointCommand,
) -> ApiResult<(EndpointRow, String)> {
    let endpoint = checked(config, caller, command).await?;
    if webhooks::endpoints(db.pool, caller.tenant_id).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::precondition(format!(
            "a tenant has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
        )));
    }
    let mut tx = db.begin().await?;
    let id = webhooks::next_endpoint_id(&mut tx).await?;
    let (secret, secret_id) = events::endpoint_secret(keyring, caller.tenant_id, id, 1);
    let row = webhooks::insert_endpoint(
        &mut tx,
        caller.tenant_id,
        id,
        &secret_id,
        &NewEndpoint {
            url: endpoint.url.as_str(),
            events: &endpoint.events,
            description: endpoint.description.as_deref(),
        },
    )
    .await?;
    tx.commit(record(&row)).await?;
    Ok((row, secret))
}

/// Changes an endpoint; `enabled: true` turns a disabled one on again.
pub async fn update(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    id: i64,
    command: EndpointCommand,
    enabled: bool,
) -> ApiResult<EndpointRow> {
    let endpoint = checked(config, caller, command).await?;
    let mut tx = db.begin().await?;
    let current = webhooks::lock_endpoint(&mut tx, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    must_cover(caller, &current)?;
    let row = webhooks::update_endpoint(
        &mut tx,
        caller.tenant_id,
        id,
        &NewEndpoint {
            url: endpoint.url.as_str(),
            events: &endpoint.events,
            description: endpoint.description.as_deref(),
        },
        enabled,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    tx.commit(record(&row)).await?;
    Ok(row)
}

/// A caller changes only endpoints all of whose events it may read: a
/// narrower key must not redirect another's stream.
fn must_cover(caller: &Caller, endpoint: &EndpointRow) -> ApiResult<()> {
    match endpoint.events.iter().find(|e| !caller.has(e.scope())) {
        Some(event) => Err(ApiError::Forbidden(format!(
            "this endpoint receives {} events, which need the {} scope",
            event.as_str(),
            event.scope().as_str()
        ))),
        None => Ok(()),
    }
}

pub async fn delete(db: &Writer<'_>, caller: &Caller, id: i64) -> ApiResult<EndpointRow> {
    let mut tx = db.begin().await?;
    let current = webhooks::lock_endpoint(&mut tx, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    must_cover(caller, &current)?;
    let row = webhooks::delete_endpoint(&mut tx, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    tx.commit(record(&row)).await?;
    Ok(row)
}

/// Sends a delivery again, due now with a fresh allowance of attempts.
pub async fn redeliver(db: &Writer<'_>, caller: &Caller, id: i64) -> ApiResult<DeliveryRow> {
    let mut tx = db.begin().await?;
    let row = webhooks::redeliver(&mut tx, caller.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    let endpoint = webhooks::lock_endpoint(&mut tx, caller.tenant_id, row.endpoint_id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    must_cover(caller, &endpoint)?;
    tx.commit(
        Record::tenant(caller.tenant_id)
            .object_of(NodeKind::WebhookEndpoint, row.endpoint_id)
            .object_of(NodeKind::WebhookDelivery, row.id),
    )
    .await?;
    Ok(row)
}
