//! Code both Canopy binaries share: configuration, the database, domain types
//! and secrets. Keeping it in one crate means the API and the worker cannot
//! drift apart on what a row or a token means.

pub mod authz;
pub mod config;
pub mod db;
pub mod id;
pub mod jobs;
pub mod lifecycle;
pub mod links;
pub mod listen;
pub mod metrics;
pub mod passwords;
pub mod path;
pub mod purge;
pub mod readiness;
pub mod secrets;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod text_enum;
