//! What each mutation does: validate, then change the database in one
//! transaction, so a failed mutation changes nothing.

pub mod api_keys;
pub mod customers;
pub mod entitlements;
pub mod jobs;
pub mod sessions;
pub mod users;
