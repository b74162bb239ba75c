//! Retrying a failed or killed job.

use sqlx::PgPool;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use canopy_core::config::Config;
use canopy_core::id::JobId;
use canopy_core::store::jobs::{self, JobRow};

/// Puts a FAILED or KILLED job back in the queue with another
/// `CANOPY_JOB_MAX_ATTEMPTS` attempts.
pub async fn retry(
    pool: &PgPool,
    config: &Config,
    caller: &Caller,
    id: JobId,
) -> ApiResult<JobRow> {
    if let Some(row) = jobs::retry(pool, caller.tenant_id, id, config.job_max_attempts).await? {
        return Ok(row);
    }
    match jobs::by_id(pool, caller.tenant_id, id).await? {
        Some(row) => Err(ApiError::precondition(format!(
            "only FAILED or KILLED jobs are retried; this one is {}",
            row.state
        ))),
        None => Err(ApiError::not_found("job")),
    }
}
