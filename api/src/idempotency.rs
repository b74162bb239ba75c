//! The `Idempotency-Key` header: a mutation sent with one runs once per
//! tenant, caller and key; a repeat within 24 hours with the same
//! operation answers what the first answered, without running again.
//!
//! The first request claims the key before it runs; its change marks the
//! claim in its own transaction (`actions::change`), and its answer is
//! kept once it is written. So a repeat that finds the key
//! - answered: gets the kept answer (`Idempotent-Replayed: true`), or
//!   CONFLICT naming what was made when that answer held a secret;
//! - still running: CONFLICT with `retryAfter`;
//! - abandoned by a run that died before committing anything: runs.
//!
//! A run that failed having changed nothing releases its key, so a repeat
//! runs again.

use axum::http::HeaderMap;

use crate::auth::{Caller, Principal};
use canopy_core::store::idempotency::{Held, KeyOf};

pub use canopy_core::store::idempotency::{Answer, Claim};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_CHARS: usize = 255;

/// The header's key, if sent: 1 to 255 visible ASCII characters.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("send one Idempotency-Key");
    }
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_KEY_CHARS).contains(&key.len()))
        .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or("an Idempotency-Key is 1 to 255 visible ASCII characters")?;
    Ok(Some(key.to_owned()))
}

/// What a repeat must match: the operation, as the request names it.
pub fn request_hash(request: &async_graphql::Request) -> Vec<u8> {
    let operation = serde_json::json!({
        "query": request.query,
        "operationName": request.operation_name,
        "variables": request.variables,
    });
    canopy_core::secrets::sha256(operation.to_string().as_bytes())
}

/// The key of `caller` in its tenant: a user's whatever session it uses.
pub fn key_for(caller: &Caller, key: String) -> KeyOf {
    let caller_name = match &caller.principal {
        Principal::ApiKey { id, .. } => format!("key:{id}"),
        Principal::User { id, .. } => format!("user:{id}"),
    };
    KeyOf {
        tenant_id: caller.tenant_id,
        caller: caller_name,
        key,
    }
}

/// What a repeat is answered instead of running.
#[derive(Debug)]
pub enum Kept {
    /// The first request's answer.
    Answer { status: u16, body: String },
    /// The first answer held a secret, shown once: what it made.
    Secret { id: String },
    /// The first request is still running (or writing its answer).
    Running,
    /// The first request changed something but its answer was lost.
    Lost,
    /// The key was used with another operation.
    Mismatch,
}

impl Kept {
    pub fn of(held: Held, request_hash: &[u8]) -> Self {
        if held.request_hash != request_hash {
            return Kept::Mismatch;
        }
        match (held.state.as_str(), held.secret_of, held.status, held.body) {
            ("DONE", Some(id), ..) => Kept::Secret { id },
            ("DONE", None, Some(status), Some(body)) => Kept::Answer {
                status: u16::try_from(status).unwrap_or(200),
                body,
            },
            ("COMMITTED", ..) if held.held_until < chrono::Utc::now() => Kept::Lost,
            _ => Kept::Running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(HEADER, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn keys_are_short_visible_ascii_and_one_per_request() {
        assert_eq!(key_of(&headers(&[])), Ok(None));
        assert_eq!(
            key_of(&headers(&["order-42/retry"])),
            Ok(Some("order-42/retry".into()))
        );
        assert!(key_of(&headers(&["a b"])).is_err());
        assert!(key_of(&headers(&[&"k".repeat(256)])).is_err());
        assert!(key_of(&headers(&["one", "two"])).is_err());
    }

    #[test]
    fn the_hash_is_of_the_whole_operation() {
        let request = |variables: serde_json::Value| {
            async_graphql::Request::new("mutation($t: String!) { x(t: $t) }")
                .variables(async_graphql::Variables::from_json(variables))
        };
        let a = request_hash(&request(serde_json::json!({ "t": "a" })));
        assert_eq!(a, request_hash(&request(serde_json::json!({ "t": "a" }))));
        assert_ne!(a, request_hash(&request(serde_json::json!({ "t": "b" }))));
    }
}
