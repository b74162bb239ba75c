//! What happened, as partners learn it: event types, the read scope each
//! needs, and the signing secret of a webhook endpoint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::authz::Scope;
use crate::id::TenantId;
use crate::secrets::{self, Keyring};

crate::text_enum! {
    /// A kind of event, as webhooks and `events` name it.
    #[derive(PartialOrd, Ord)]
    pub enum EventType {
        CustomerCreated = "customer.created",
        CustomerUpdated = "customer.updated",
        CustomerMoved = "customer.moved",
        CustomerDeleted = "customer.deleted",
        UserCreated = "user.created",
        UserStatusChanged = "user.status_changed",
        UserDeleted = "user.deleted",
        ApprovalRequested = "approval.requested",
        JobKilled = "job.killed",
    }
}

impl EventType {
    /// The scope a caller needs to receive or read the event: what reading
    /// its object needs.
    pub fn scope(self) -> Scope {
        match self {
            EventType::CustomerCreated
            | EventType::CustomerUpdated
            | EventType::CustomerMoved
            | EventType::CustomerDeleted => Scope::CustomersRead,
            EventType::UserCreated
            | EventType::UserStatusChanged
            | EventType::UserDeleted
            | EventType::ApprovalRequested => Scope::UsersRead,
            EventType::JobKilled => Scope::JobsRead,
        }
    }
}

/// An event to write with the change that caused it.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub tenant_id: TenantId,
    pub event_type: EventType,
    /// What the event names (`{"id": <global id>, …}`).
    pub data: serde_json::Value,
}

/// The purpose a webhook secret is derived under: its endpoint's
/// generation, so a rotation makes a new one.
fn purpose(generation: i32) -> String {
    format!("webhook-{generation}")
}

/// The endpoint's signing secret, as Standard Webhooks writes it
/// (`whsec_` and the base64 of 32 bytes), derived from the server secret
/// (so none is stored), with the id of the server secret used.
pub fn endpoint_secret(
    keyring: &Keyring,
    tenant_id: TenantId,
    endpoint_id: i64,
    generation: i32,
) -> (String, String) {
    let (token, secret_id) = keyring.issue(tenant_id, endpoint_id, &purpose(generation));
    (format_secret(&token), secret_id)
}

/// The endpoint's secret again, from the server secret it was made under;
/// `None` when that secret is no longer known.
pub fn rebuilt_secret(
    keyring: &Keyring,
    secret_id: &str,
    tenant_id: TenantId,
    endpoint_id: i64,
    generation: i32,
) -> Option<String> {
    keyring
        .rebuild(
            Some(secret_id),
            tenant_id,
            endpoint_id,
            &purpose(generation),
        )
        .map(|token| format_secret(&token))
}

fn format_secret(token: &str) -> String {
    format!(
        "whsec_{}",
        STANDARD.encode(secrets::sha256(token.as_bytes()))
    )
}

/// Whether a webhook may be sent to `ip`: not loopback, private, link-local
/// (cloud metadata lives there), shared (CGNAT), unspecified, multicast,
/// broadcast or documentation space, in IPv4 or IPv6 (IPv4-mapped
/// addresses judged as IPv4).
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.segments();
            let v4_compatible = v6.segments()[..6].iter().all(|s| *s == 0);
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v4_compatible
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || first == 0x2001 && (second == 0x0db8 || second == 0)
                || first == 0x2002
                || first == 0x0064
                || first == 0x0100
                || v6.segments()[..4] == [0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::",
            "2001:db8::1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn every_event_type_has_a_read_scope() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
            let _ = event.scope();
        }
        assert_eq!(EventType::JobKilled.scope(), Scope::JobsRead);
        assert_eq!(EventType::ApprovalRequested.scope(), Scope::UsersRead);
    }
}
