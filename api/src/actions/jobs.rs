//! What operators do to jobs: retry, cancel, retry many at once, pause and
//! resume a kind. Who did each, and when, is in the audit log.

use super::change::{Record, Writer};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use canopy_core::config::Config;
use canopy_core::id::JobId;
use canopy_core::jobs::JobKind;
use canopy_core::store::jobs::{self, JobFilter, JobRow, Pause};

/// The most jobs one `retryJobs` retries; the answer says when more remain.
pub const RETRY_AT_ONCE: i64 = 1000;

/// Puts a FAILED or KILLED job back in the queue with another
/// `CANOPY_JOB_MAX_ATTEMPTS` attempts.
pub async fn retry(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    id: JobId,
) -> ApiResult<JobRow> {
    let mut tx = db.begin().await?;
    if let Some(row) = jobs::retry(&mut tx, caller.tenant_id, id, config.job_max_attempts).await? {
        tx.commit(record(&row)).await?;
        return Ok(row);
    }
    drop(tx);
    let row = jobs::by_id(db.pool, caller.tenant_id, id).await?;
    Err(refusal(row, "only FAILED or KILLED jobs are retried"))
}

/// The jobs that tell a person about changes to its own account (a new
/// password, a new address) are its safeguard against a takeover: only a
/// caller holding every scope (a tenant administrator) may cancel or pause
/// them.
fn guards_notices(caller: &Caller, kind: JobKind) -> ApiResult<()> {
    if kind == JobKind::AccountNotice && !caller.holds_every_scope() {
        return Err(ApiError::Forbidden(
            "ACCOUNT_NOTICE jobs tell people of changes to their own account; \
             only a caller holding every scope stops them"
                .into(),
        ));
    }
    Ok(())
}

/// Cancels a job not yet running: it ends KILLED, saying who cancelled it,
/// and is never sent.
pub async fn cancel(db: &Writer<'_>, caller: &Caller, id: JobId) -> ApiResult<JobRow> {
    let cause = format!("cancelled by {}", who(caller));
    let mut tx = db.begin().await?;
    let notices_too = caller.holds_every_scope();
    if let Some(row) = jobs::cancel(&mut tx, caller.tenant_id, id, &cause, notices_too).await? {
        // Its job.killed event is written by a trigger, as for every kill.
        tx.commit(record(&row)).await?;
        return Ok(row);
    }
    drop(tx);
    let row = jobs::by_id(db.pool, caller.tenant_id, id).await?;
    if let Some(row) = &row {
        guards_notices(caller, row.kind)?;
    }
    Err(refusal(
        row,
        "only jobs not yet running (AWAITING_DISPATCH, PENDING or FAILED) are cancelled",
    ))
}

/// How many jobs one `retryJobs` retried, and whether more match.
pub struct Retried {
    pub count: u64,
    pub more: bool,
}

/// Retries up to [`RETRY_AT_ONCE`] of the FAILED or KILLED jobs `filter`
/// names, oldest first.
pub async fn retry_matching(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    filter: JobFilter,
) -> ApiResult<Retried> {
    if let Some(state) = filter.state
        && !jobs::RETRIED_FROM.contains(&state)
    {
        return Err(ApiError::bad_input(
            "filter.state",
            format!("only FAILED or KILLED jobs are retried; filter.state names {state} jobs"),
        ));
    }
    let mut tx = db.begin().await?;
    let (retried, more) = jobs::retry_matching(
        &mut tx,
        caller.tenant_id,
        &filter,
        config.job_max_attempts,
        RETRY_AT_ONCE,
    )
    .await?;
    let count = retried.len() as u64;
    tx.commit(Record::tenant(caller.tenant_id).objects(retried))
        .await?;
    Ok(Retried { count, more })
}

/// Pauses a kind for the caller's tenant: none of its jobs is sent until
/// it is resumed.
pub async fn pause(db: &Writer<'_>, caller: &Caller, kind: JobKind) -> ApiResult<Pause> {
    guards_notices(caller, kind)?;
    let mut tx = db.begin().await?;
    let pause = jobs::pause(&mut tx, caller.tenant_id, kind)
        .await?
        .ok_or_else(|| ApiError::precondition(format!("{kind} jobs are already paused")))?;
    tx.commit(Record::tenant(caller.tenant_id).detail(KIND, kind.as_str()))
        .await?;
    Ok(pause)
}

/// Resumes a paused kind: its waiting jobs go out at once.
pub async fn resume(db: &Writer<'_>, caller: &Caller, kind: JobKind) -> ApiResult<()> {
    let mut tx = db.begin().await?;
    if jobs::resume(&mut tx, caller.tenant_id, kind).await? {
        tx.commit(Record::tenant(caller.tenant_id).detail(KIND, kind.as_str()))
            .await?;
        Ok(())
    } else {
        Err(ApiError::precondition(format!(
            "{kind} jobs are not paused"
        )))
    }
}

/// The audit entry's detail naming a paused or resumed kind; who paused a
/// kind is read from it.
pub const KIND: &str = "kind";

/// What an action on one job records: the job, and its customer.
fn record(row: &JobRow) -> Record {
    let record = Record::tenant(row.tenant_id).object(row.id);
    match row.customer_id {
        Some(id) => record.object(id),
        None => record,
    }
}

/// The refusal of an action the job's state does not allow, or NOT_FOUND.
fn refusal(row: Option<JobRow>, rule: &str) -> ApiError {
    match row {
        Some(row) => ApiError::precondition(format!("{rule}; this one is {}", row.state)),
        None => ApiError::not_found("job"),
    }
}

/// The caller as a job's last error names it: only what kind of caller.
/// The error is shown to whoever reads the job (the user it is addressed
/// to, too); which user or key it was is `lastAction.by`, shown only to
/// those who may read users or keys.
fn who(caller: &Caller) -> &'static str {
    if caller.user_id().is_some() {
        "a signed-in operator (see lastAction)"
    } else {
        "an API key (see lastAction)"
    }
}
