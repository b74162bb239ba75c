//! Global ids: opaque, and telling the node's type. `Customer:42` in
//! URL-safe base64; nobody should depend on the inside.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ApiResult};
use canopy_core::id::{CustomerId, JobId, TenantId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Tenant,
    ApiKey,
    Customer,
    User,
    Entitlement,
    Job,
    /// Not a node: `node` answers null. It names a session in the audit
    /// log and in a user's sessions.
    Session,
    /// Not nodes either: read through `webhookEndpoints` and `events`.
    WebhookEndpoint,
    WebhookDelivery,
    Event,
}

impl NodeKind {
    const ALL: [NodeKind; 10] = [
        NodeKind::Tenant,
        NodeKind::ApiKey,
        NodeKind::Customer,
        NodeKind::User,
        NodeKind::Entitlement,
        NodeKind::Job,
        NodeKind::Session,
        NodeKind::WebhookEndpoint,
        NodeKind::WebhookDelivery,
        NodeKind::Event,
    ];

    fn name(self) -> &'static str {
        match self {
            NodeKind::Tenant => "Tenant",
            NodeKind::ApiKey => "ApiKey",
            NodeKind::Customer => "Customer",
            NodeKind::User => "User",
            NodeKind::Entitlement => "Entitlement",
            NodeKind::Job => "Job",
            NodeKind::Session => "Session",
            NodeKind::WebhookEndpoint => "WebhookEndpoint",
            NodeKind::WebhookDelivery => "WebhookDelivery",
            NodeKind::Event => "Event",
        }
    }

    /// The lower-case noun used in error messages.
    pub fn noun(self) -> &'static str {
        match self {
            NodeKind::Tenant => "tenant",
            NodeKind::ApiKey => "API key",
            NodeKind::Customer => "customer",
            NodeKind::User => "user",
            NodeKind::Entitlement => "entitlement",
            NodeKind::Job => "job",
            NodeKind::Session => "session",
            NodeKind::WebhookEndpoint => "webhook endpoint",
            NodeKind::WebhookDelivery => "webhook delivery",
            NodeKind::Event => "event",
        }
    }
}

/// The typed id of a node kind.
pub trait NodeId: Copy {
    const KIND: NodeKind;
    fn number(self) -> i64;
    fn from_number(number: i64) -> Self;
}

macro_rules! node_id {
    ($id:ty, $kind:expr) => {
        impl NodeId for $id {
            const KIND: NodeKind = $kind;
            fn number(self) -> i64 {
                self.0
            }
            fn from_number(number: i64) -> Self {
                Self(number)
            }
        }
    };
}

node_id!(TenantId, NodeKind::Tenant);
node_id!(CustomerId, NodeKind::Customer);
node_id!(UserId, NodeKind::User);
node_id!(JobId, NodeKind::Job);

/// The global id of a typed row id.
pub fn of<I: NodeId>(id: I) -> String {
    encode(I::KIND, id.number())
}

/// Reads an id argument that must name a node of `I`'s kind (as `expect`).
pub fn expect_id<I: NodeId>(id: &str, field: &str) -> ApiResult<I> {
    expect(id, I::KIND, field).map(I::from_number)
}

pub fn encode(kind: NodeKind, id: i64) -> String {
    canopy_core::id::global(kind.name(), id)
}

/// What a global id says inside (`Customer:42`): how the audit log names
/// objects in the database.
pub fn reference(kind: NodeKind, id: i64) -> String {
    format!("{}:{id}", kind.name())
}

/// The inside of a typed row id's global id.
pub fn reference_of<I: NodeId>(id: I) -> String {
    reference(I::KIND, id.number())
}

/// The global id of a stored reference; `None` when it is not one.
pub fn from_reference(reference: &str) -> Option<String> {
    parse_reference(reference).map(|(kind, id)| encode(kind, id))
}

/// Reads any global id; `None` when it is not one of ours.
pub fn decode(id: &str) -> Option<(NodeKind, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(id.trim()).ok()?;
    parse_reference(&String::from_utf8(bytes).ok()?)
}

fn parse_reference(text: &str) -> Option<(NodeKind, i64)> {
    let (name, number) = text.split_once(':')?;
    let kind = NodeKind::ALL.into_iter().find(|k| k.name() == name)?;
    let number: i64 = number.parse().ok()?;
    (number > 0).then_some((kind, number))
}

/// The tenant a public mutation names; `None` when the id names none, so
/// the mutation can answer as it does for a tenant that does not exist.
pub fn tenant(id: &str) -> Option<TenantId> {
    decode(id)
        .filter(|(kind, _)| *kind == NodeKind::Tenant)
        .map(|(_, id)| TenantId(id))
}

/// Reads an id argument that must name a `kind`. A malformed id is bad
/// input on `field`; a well-formed id of another type names nothing.
pub fn expect(id: &str, kind: NodeKind, field: &str) -> ApiResult<i64> {
    match decode(id) {
        Some((found, number)) if found == kind => Ok(number),
        Some(_) => Err(ApiError::not_found(kind.noun())),
        None => Err(ApiError::bad_input(
            field,
            format!("{field} is not a valid id"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_type() {
        let id = encode(NodeKind::Customer, 42);
        assert_eq!(decode(&id), Some((NodeKind::Customer, 42)));
        assert_eq!(expect(&id, NodeKind::Customer, "id").unwrap(), 42);
        assert_eq!(
            expect(&id, NodeKind::User, "id").unwrap_err().code(),
            "NOT_FOUND"
        );
        let bad = expect("nonsense", NodeKind::User, "userId").unwrap_err();
        assert!(matches!(bad, ApiError::BadInput { ref field, .. } if field == "userId"));
    }
}
