//! The GraphQL schema. `query` and `mutation` are thin: they check access
//! through `guards` and delegate to `crate::actions` or the `store`; `types`
//! are the objects callers see, resolved through the per-request `loaders`.

pub mod extensions;
pub mod guards;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod throttle;
pub mod types;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{EmptySubscription, Positioned, Schema, SchemaBuilder};

pub use mutation::Mutation;
pub use query::Query;

pub type CanopySchema = Schema<Query, Mutation, EmptySubscription>;

/// The deepest selection accepted.
pub const MAX_DEPTH: usize = 16;
/// The largest query cost accepted; a connection costs its children once per
/// row it may return (`first`, or the default page size).
pub const MAX_COMPLEXITY: usize = 50_000;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(64)
        .limit_directives(16)
}

/// The schema served over HTTP; `introspection` off hides the schema from
/// callers (`CANOPY_INTROSPECTION`).
pub fn schema(introspection: bool) -> CanopySchema {
    let builder = builder()
        .extension(extensions::Observability)
        .extension(extensions::Preparation::default())
        .extension(throttle::CallerBudget);
    if introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The operation a request for `name` runs in `document`, as execution
/// picks it: by name, or the only one; `None` when that names none.
pub fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        _ => None,
    }
}
