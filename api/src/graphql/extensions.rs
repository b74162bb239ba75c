//! Per-request bookkeeping around every GraphQL operation: metrics by
//! operation name, whether execution began, parsed documents kept and
//! required variables checked before it, and the error policy: every
//! error leaves with an `extensions.code`, and nothing internal leaves at
//! all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::ValidationResult;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Request, Response, ServerError, ServerResult, Value, Variables};

use canopy_core::metrics;

/// Whether a request reached execution, for its HTTP answer: one that did
/// not (unparsable, invalid, an unknown operation, variables of the wrong
/// type, a spent budget) is a request error, whose answer has no `data`.
/// Give it to a request as `Arc<Execution>`.
#[derive(Default)]
pub struct Execution {
    began: AtomicBool,
    /// The global id of what a mutation made whose answer holds a secret
    /// (a key, a link, a session): an answer never kept for a repeat.
    secret_of: Mutex<Option<String>>,
}

impl Execution {
    pub fn began(&self) -> bool {
        self.began.load(Ordering::SeqCst)
    }

    /// Marks the answer as holding a secret of what `id` names.
    pub fn holds_secret_of(&self, id: String) {
        if let Ok(mut slot) = self.secret_of.lock() {
            *slot = Some(id);
        }
    }

    pub fn secret_of(&self) -> Option<String> {
        self.secret_of.lock().ok().and_then(|slot| slot.clone())
    }
}

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
        if let Some(execution) = ctx.data_opt::<Arc<Execution>>() {
            execution.began.store(true, Ordering::SeqCst);
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

/// The longest query text whose parsed document is kept, and how much
/// query text the kept documents may stand for in all, each counted with
/// 64 bytes more: the operations a frontend or an integration sends over
/// and over fit many times over, and a caller sending ever new queries
/// only turns the oldest out. Only documents that passed validation are
/// kept (a valid document holds at most some tens of bytes per byte of
/// its text, so the store stays within about 20 MiB).
const MAX_KEPT_QUERY_BYTES: usize = 4 * 1024;
const KEPT_QUERY_BYTES: u64 = 512 * 1024;

type Documents = moka::sync::Cache<String, ExecutableDocument>;

/// Prepares each request before async-graphql runs it, in one extension
/// (every extension costs each field of each response a step):
///
/// - a document parsed before is taken from the process's store instead
///   of parsed again (validation, limits and execution run every time);
/// - an operation whose non-null variable (with no default) is missing or
///   null is refused before execution: async-graphql would otherwise run
///   it and fail only the fields that use the variable, while GraphQL
///   coerces every variable first and runs nothing when one cannot be.
pub struct Preparation(Arc<Documents>);

impl Default for Preparation {
    fn default() -> Self {
        Self(Arc::new(
            Documents::builder()
                .weigher(|query: &String, _| u32::try_from(query.len() + 64).unwrap_or(u32::MAX))
                .max_capacity(KEPT_QUERY_BYTES)
                .build(),
        ))
    }
}

impl ExtensionFactory for Preparation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Preparer {
            documents: self.0.clone(),
            parsed: Mutex::new(None),
        })
    }
}

/// One request's preparation.
struct Preparer {
    documents: Arc<Documents>,
    /// A document parsed for this request, kept once it validates.
    parsed: Mutex<Option<(String, ExecutableDocument)>>,
}

#[async_trait::async_trait]
impl Extension for Preparer {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if request.query.len() <= MAX_KEPT_QUERY_BYTES {
            if let Some(document) = self.documents.get(&request.query) {
                request.set_parsed_query(document);
            } else {
                let query = request.query.clone();
                if let Ok(document) = request.parsed_query() {
                    *self.parsed.lock().expect("parsed") = Some((query, document.clone()));
                }
            }
        }
        let name = request.operation_name.clone();
        let variables = request.variables.clone();
        // A document that does not parse is refused as such further on.
        if let Ok(document) = request.parsed_query()
            && let Some(operation) = super::operation(document, name.as_deref())
        {
            for definition in &operation.node.variable_definitions {
                let definition = &definition.node;
                let given = variables
                    .get(&definition.name.node)
                    .is_some_and(|value| *value != Value::Null);
                if !definition.var_type.node.nullable
                    && definition.default_value.is_none()
                    && !given
                {
                    return Err(ServerError::new(
                        format!(
                            "variable ${} of type {} is required",
                            definition.name.node, definition.var_type.node
                        ),
                        Some(definition.name.pos),
                    ));
                }
            }
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some((query, document)) = self.parsed.lock().expect("parsed").take() {
            self.documents.insert(query, document);
        }
        Ok(result)
    }
}
