//! What each mutation does: validate, then change the database in one
//! transaction, so a failed mutation changes nothing.

pub mod accounts;
pub mod api_keys;
pub mod batches;
pub mod change;
pub mod customers;
pub mod emails;
pub mod entitlements;
pub mod jobs;
pub mod sessions;
pub mod tenants;
pub mod users;
pub mod webhooks;

/// One field of an update as the caller gave it: left out, cleared, or set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }
}
