//! Counts the SQL statements the app runs for one request, to catch N+1
//! queries. sqlx reports each statement as a tracing event; the app runs
//! each GraphQL request (and its loaders' batches) inside a
//! `graphql_request` span carrying the request id, and this layer tallies
//! statements per request id.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};

use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

static STATEMENTS: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();

fn statements() -> &'static Mutex<HashMap<String, Vec<String>>> {
    STATEMENTS.get_or_init(Default::default)
}

/// Installs the counting layer as the process's subscriber (once).
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Errors the app logs show up in a failing test's output.
        let errors = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::filter::LevelFilter::ERROR);
        let _ = tracing_subscriber::registry()
            .with(StatementCounter)
            .with(errors)
            .try_init();
    });
}

/// The statements (their first words) run so far for requests sent with
/// `request_id`, in order.
pub fn recorded(request_id: &str) -> Vec<String> {
    statements()
        .lock()
        .unwrap()
        .get(request_id)
        .cloned()
        .unwrap_or_default()
}

struct RequestId(String);

struct StatementCounter;

struct IdVisitor(Option<String>);

/// Reads the statement's summary off a sqlx event.
struct SummaryVisitor(String);

impl Visit for SummaryVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            self.0 = value.to_owned();
        }
    }
}

impl Visit for IdVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(value.to_owned());
        }
    }
}

impl<S> Layer<S> for StatementCounter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "graphql_request" {
            return;
        }
        let mut visitor = IdVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(request_id), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("sqlx::query") {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(RequestId(request_id)) = span.extensions().get::<RequestId>() {
                let mut summary = SummaryVisitor(String::new());
                event.record(&mut summary);
                statements()
                    .lock()
                    .unwrap()
                    .entry(request_id.clone())
                    .or_default()
                    .push(summary.0);
                return;
            }
        }
    }
}
