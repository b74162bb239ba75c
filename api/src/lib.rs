//! Canopy's API: GraphQL over HTTP for customers, their inner customers and
//! their users.
//!
//! - `app` builds the router and runs the server (and, by default, the worker);
//! - `auth` turns a bearer secret into a `Caller`;
//! - `graphiql` serves GraphiQL and its pinned assets (GET /graphql);
//! - `graphql` is the schema: queries, mutations, types, loaders and guards;

pub mod access;
pub mod actions;
pub mod app;
pub mod auth;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod ids;
pub mod limits;
pub mod pagination;
pub mod validation;

pub use app::{AppState, app, run};
