//! Prometheus metrics for both processes. The recorder is process-wide;
//! each process's `/metrics` renders it. What every metric means is in
//! README "Operating Canopy".

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Operation names are chosen by callers; past this many distinct names,
/// new ones are counted as `other` so the metrics cannot grow without bound.
const MAX_OPERATION_NAMES: usize = 500;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static OPERATION_NAMES: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // A test process may build several apps; the first install wins.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "canopy_jobs_enqueued_total",
        "Job attempts handed to the queue by a relay, by kind"
    );
    metrics::describe_counter!(
        "canopy_jobs_succeeded_total",
        "Jobs finished: email accepted by the SMTP server (or written), or moot, by kind"
    );
    metrics::describe_counter!(
        "canopy_jobs_retried_total",
        "Attempts that failed and will be retried, by kind"
    );
    metrics::describe_counter!(
        "canopy_jobs_killed_total",
        "Jobs given up: a permanent failure or out of attempts, by kind"
    );
    metrics::describe_gauge!(
        "canopy_jobs_queue_depth",
        "Jobs not yet finished, by state, across tenants (sampled by workers)"
    );
    metrics::describe_histogram!(
        "canopy_job_delivery_seconds",
        metrics::Unit::Seconds,
        "Time from the job's commit to the SMTP server's acceptance, by kind"
    );
    metrics::describe_counter!(
        "canopy_graphql_requests_total",
        "GraphQL operations served, by operation name and outcome (ok or error)"
    );
    metrics::describe_histogram!(
        "canopy_graphql_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a GraphQL operation, by operation name"
    );
}

/// Operation names longer than this are counted as `other`.
const MAX_OPERATION_NAME_CHARS: usize = 64;

fn operation_label(name: Option<&str>) -> String {
    let Some(name) = name else {
        return "anonymous".to_owned();
    };
    // Labels stay short and few, whatever callers send.
    let plain = name.len() <= MAX_OPERATION_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return "other".to_owned();
    }
    let names = OPERATION_NAMES.get_or_init(Default::default);
    let Ok(mut names) = names.lock() else {
        return "other".to_owned();
    };
    if names.contains(name) || names.len() < MAX_OPERATION_NAMES {
        names.insert(name.to_owned());
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

pub fn record_operation(name: Option<&str>, ok: bool, elapsed: Duration) {
    let operation = operation_label(name);
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!(
        "canopy_graphql_requests_total",
        "operation" => operation.clone(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!(
        "canopy_graphql_request_duration_seconds",
        "operation" => operation
    )
    .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_stay_short_and_plain() {
        assert_eq!(operation_label(None), "anonymous");
        assert_eq!(operation_label(Some("TreePage")), "TreePage");
        assert_eq!(operation_label(Some(&"x".repeat(65))), "other");
        assert_eq!(operation_label(Some("drop table\n")), "other");
    }
}
