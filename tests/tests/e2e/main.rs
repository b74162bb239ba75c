//! End-to-end tests: GraphQL over HTTP against the real app, each on a
//! database of its own.

mod account_pages;
mod accounts;
mod api_keys;
mod audit;
mod batches;
mod customers;
mod edge;
mod escalation;
mod external_ids;
mod fuzz;
mod hostile;
mod http;
mod idempotency;
mod jobs;
mod limits;
mod matrix;
mod operations;
mod permissions;
mod privacy;
mod processes;
mod schema;
mod secrets;
mod sessions;
mod smtp;
mod soak;
mod statements;
mod stored;
mod tree;
mod users;
mod webhooks;
