//! Per-request bookkeeping around every GraphQL operation: metrics by
//! operation name, and the error policy: every error leaves with an
//! `extensions.code`, and nothing internal leaves at all.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Response, ServerError, ServerResult, Variables};

use canopy_core::metrics;

pub struct Observability;

impl ExtensionFactory for Observability {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestObserver::default())
    }
}

#[derive(Default)]
struct RequestObserver {
    /// The operation's name, learnt from the request or the document.
    operation: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for RequestObserver {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let mut response = next.run(ctx).await;
        // Whatever failed before execution (syntax, validation, limits) is
        // the caller's request being unacceptable.
        for error in &mut response.errors {
            ensure_code(error, "BAD_USER_INPUT");
        }
        let operation = self.operation.lock().ok().and_then(|name| name.clone());
        metrics::record_operation(operation.as_deref(), response.is_ok(), started.elapsed());
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let DocumentOperations::Multiple(operations) = &document.operations
            && operations.len() == 1
            && let (Ok(mut slot), Some(name)) = (self.operation.lock(), operations.keys().next())
        {
            *slot = Some(name.to_string());
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let (Some(name), Ok(mut slot)) = (operation_name, self.operation.lock()) {
            *slot = Some(name.to_owned());
        }
        let mut response = next.run(ctx, operation_name).await;
        // During execution every deliberate error carries a code (ApiError).
        // An uncoded one with a Rust error behind it is an unexpected
        // failure whose text may say too much; one without is async-graphql
        // refusing an argument value, which is the caller's input.
        for error in &mut response.errors {
            if error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .is_some()
            {
                continue;
            }
            if error.source.is_some() {
                tracing::error!(message = %error.message, path = ?error.path, "uncoded resolver error");
                error.message = "internal error".to_owned();
                ensure_code(error, "INTERNAL");
            } else {
                ensure_code(error, "BAD_USER_INPUT");
            }
        }
        response
    }
}

fn ensure_code(error: &mut ServerError, code: &str) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}
