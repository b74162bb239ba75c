//! Canopy's API: GraphQL over HTTP for customers, their inner customers and
//! their users.
//!
//! - `app` builds the router and runs the server (and, by default, the worker);
//! - `graphql_http` is GraphQL over HTTP: media types, status codes, GET;
//! - `graphiql` serves GraphiQL and its pinned assets (GET /graphql);
//! - `graphql` is the schema: queries, mutations, types and loaders; it
//!   decodes ids and inputs into the actions' commands;
//! - `actions` is what each mutation does, on plain commands, in one
//!   transaction (SQL is in `canopy_core::store`);
//! - `access` applies the authorization rules to rows, for actions and
//!   resolvers alike;
//! - `auth` turns a bearer secret into a `Caller`, remembering API keys
//!   while their tenant's credentials epoch in Redis stands;
//! - `idempotency` is the Idempotency-Key header's claim and kept answers;
//! - `ids` are the global ids, `limits` the rate limiter, `redis_link` the
//!   requests' Redis connection, `pagination` the cursors and `validation`
//!   the checks of input.

pub mod access;
pub mod account;
pub mod actions;
pub mod app;
pub mod auth;
pub mod console;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod graphql_http;
pub mod idempotency;
pub mod ids;
pub mod limits;
pub mod pagination;
pub mod redis_link;
pub mod validation;

pub use app::{AppState, app, run};
