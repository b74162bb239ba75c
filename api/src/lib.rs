//! Canopy's API: GraphQL over HTTP for customers, their inner customers and
//! their users.
//!
//! - `app` builds the router and runs the server (and, by default, the worker);
//! - `auth` turns a bearer secret into a `Caller`;
//! - `graphiql` serves GraphiQL and its pinned assets (GET /graphql);
//! - `graphql` is the schema: queries, mutations, types, loaders and guards;
//! - `graphql_http` is GraphQL over HTTP: media types, status codes, GET;
//! - `store` is every SQL statement, grouped by table;
//! - `tenants` creates a tenant with its first administrator (the CLI's job).

pub mod actions;
pub mod app;
pub mod auth;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod graphql_http;
pub mod ids;
pub mod limits;
pub mod pagination;
pub mod store;
pub mod tenants;
pub mod validation;

pub use app::{AppState, app, run};
