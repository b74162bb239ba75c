//! Webhook endpoints, their deliveries, and the events partners read with
//! `events(after:)`.

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::connection::{Connection, Total};
use crate::AppState;
use crate::error::ApiResult;
use crate::ids::{self, NodeKind};
use crate::pagination::{self, Page, connection_cost};
use canopy_core::authz::Caller;
use canopy_core::events::EventType as CoreEventType;
use canopy_core::id::TenantId;
use canopy_core::store::Count;
use canopy_core::store::webhooks::{self, DeliveryRow, EndpointRow, EventRow};

// The GraphQL face of `canopy_core::events::EventType`.
/// A kind of event: CUSTOMER_CREATED is `customer.created` in a webhook's
/// body, and so on. Receiving or reading one needs its read scope:
/// CUSTOMERS_READ for customer events, USERS_READ for user and approval
/// events, JOBS_READ for JOB_KILLED.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "EventType", remote = "canopy_core::events::EventType")]
pub enum EventType {
    CustomerCreated,
    CustomerUpdated,
    CustomerMoved,
    CustomerDeleted,
    UserCreated,
    UserStatusChanged,
    UserDeleted,
    ApprovalRequested,
    JobKilled,
}

/// Something that happened, as webhooks send it.
#[derive(Clone)]
pub struct Event(pub EventRow);

#[Object]
impl Event {
    /// Also the `webhook-id` of its deliveries.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Event, self.0.id).into()
    }

    #[graphql(name = "type")]
    async fn event_type(&self) -> EventType {
        self.0.event_type.into()
    }

    /// As a webhook's body names it: `customer.created`.
    async fn type_name(&self) -> &str {
        self.0.event_type.as_str()
    }

    /// What it names: `id` (a global id) and a few facts.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.data.0.clone())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A URL that receives the tenant's events of the types it asked for,
/// signed as Standard Webhooks specifies.
#[derive(Clone)]
pub struct WebhookEndpoint(pub EndpointRow);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::WebhookEndpoint, self.0.id).into()
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn events(&self) -> Vec<EventType> {
        self.0.events.iter().map(|&e| e.into()).collect()
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// False once it failed too often in a row (`disabledReason` says
    /// why) or was turned off; `updateWebhookEndpoint(enabled: true)`
    /// turns it on again.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// Deliveries failed in a row since the last success.
    async fn failures(&self) -> i32 {
        self.0.failures
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Its deliveries, newest first: each event sent, retried or given up,
    /// with the last status, latency and error. `first` defaults to 20
    /// and may be at most 100.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<WebhookDeliveryConnection> {
        let page = pagination::page(first, after)?;
        let state = ctx.data_unchecked::<AppState>();
        let rows = webhooks::deliveries(&state.pool, self.0.tenant_id, self.0.id, &page).await?;
        let events: Vec<i64> = rows.iter().map(|r| r.event_id).collect();
        let events = webhooks::events_by_ids(&state.pool, self.0.tenant_id, &events).await?;
        Ok(Connection::new(
            &page,
            rows,
            |row| row.id.to_string(),
            |row| WebhookDelivery {
                event: events
                    .iter()
                    .find(|e| e.id == row.event_id)
                    .cloned()
                    .map(Event),
                row,
            },
            Deliveries(self.0.clone()),
        ))
    }
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::store::webhooks::DeliveryState")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// Given up after its attempts; `redeliverWebhook` sends it again.
    Failed,
}

/// One event sent to one endpoint.
#[derive(Clone)]
pub struct WebhookDelivery {
    row: DeliveryRow,
    event: Option<Event>,
}

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::WebhookDelivery, self.row.id).into()
    }

    async fn event(&self) -> Option<Event> {
        self.event.clone()
    }

    async fn state(&self) -> DeliveryState {
        self.row.state.into()
    }

    async fn attempts(&self) -> i32 {
        self.row.attempts
    }

    /// The HTTP status of the last attempt; null when no answer came.
    async fn last_status(&self) -> Option<i32> {
        self.row.last_status
    }

    async fn last_latency_ms(&self) -> Option<i32> {
        self.row.last_latency_ms
    }

    async fn last_error(&self) -> Option<&str> {
        self.row.last_error.as_deref()
    }

    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.row.state == webhooks::DeliveryState::Pending).then_some(self.row.next_attempt_at)
    }

    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.row.delivered_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
}

/// What a deliveries connection counts: the endpoint's deliveries.
pub struct Deliveries(EndpointRow);

impl Total for Deliveries {
    async fn count(&self, ctx: &Context<'_>) -> ApiResult<Count> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(webhooks::count_deliveries(&state.pool, self.0.tenant_id, self.0.id).await?)
    }
}

pub type WebhookDeliveryConnection = Connection<WebhookDelivery, Deliveries>;

/// What an events connection counts: the events the caller reads after
/// the cursor.
pub struct Events {
    tenant_id: TenantId,
    types: Vec<CoreEventType>,
    after: Option<String>,
}

impl Total for Events {
    async fn count(&self, ctx: &Context<'_>) -> ApiResult<Count> {
        let state = ctx.data_unchecked::<AppState>();
        let after = self
            .after
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        Ok(webhooks::count_events(&state.pool, self.tenant_id, &self.types, after).await?)
    }
}

pub type EventConnection = Connection<Event, Events>;

impl EventConnection {
    /// The tenant's events after the cursor, oldest first, of the types
    /// the caller may read.
    pub async fn load(ctx: &Context<'_>, caller: &Caller, page: Page) -> ApiResult<Self> {
        let types: Vec<CoreEventType> = CoreEventType::ALL
            .into_iter()
            .filter(|e| caller.has(e.scope()))
            .collect();
        let state = ctx.data_unchecked::<AppState>();
        let rows = webhooks::page(&state.pool, caller.tenant_id, &types, &page).await?;
        let after = page.after.clone();
        Ok(Connection::new(
            &page,
            rows,
            |row| row.id.to_string(),
            Event,
            Events {
                tenant_id: caller.tenant_id,
                types,
                after,
            },
        ))
    }
}

#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_…`), shown once: verify each delivery's
    /// `webhook-signature` with it, as any Standard Webhooks library does.
    pub secret: String,
}
