//! Code both Canopy binaries share, so the API and the worker cannot drift
//! apart on what a row, a status or a token means. From the bottom up:
//!
//! - `id`, `path`, `text_enum`: typed ids, the tree path, stored enums;
//! - `authz` (who may do what, pure rules), `events` (what partners
//!   learn of changes), `lifecycle` (a user's status
//!   and its moves), `jobs` (job kinds, states and payloads), `secrets`,
//!   `passwords` and `links`;
//! - `store`: every SQL statement, one module per concept, taking and
//!   returning the types above; `purge` runs the account purges;
//! - `config`, `db`, `listen`, `metrics`, `readiness`, `shutdown` and
//!   `telemetry`: what running a binary needs.

pub mod authz;
pub mod config;
pub mod db;
pub mod events;
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
