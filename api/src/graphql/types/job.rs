use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::connection::{Connection, Total};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self};
use crate::pagination::{self, Page};
use canopy_core::id::{TenantId, UserId};
use canopy_core::jobs::{JobKind as CoreKind, JobState as CoreState};
use canopy_core::store::Count;
use canopy_core::store::jobs::{self, JobRow};

// The GraphQL face of `canopy_core::jobs::JobKind`.
/// What a job sends.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::jobs::JobKind")]
pub enum JobKind {
    EmailValidation,
    Invitation,
    AdminNotification,
    PasswordReset,
    /// A notice to a user about its own account.
    AccountNotice,
}

// The GraphQL face of `canopy_core::jobs::JobState`.
/// Where a job is: written with its change, handed to the queue, running, finished.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "canopy_core::jobs::JobState")]
pub enum JobState {
    /// Committed but not yet handed to the queue.
    AwaitingDispatch,
    Pending,
    Running,
    Done,
    /// Failed its last attempt so far; will be retried.
    Failed,
    /// Out of attempts, or discarded.
    Killed,
}

/// An email on its way: its state, attempts and last error.
#[derive(Clone)]
pub struct Job(pub JobRow);

#[Object]
impl Job {
    pub async fn id(&self) -> ID {
        ids::of(self.0.id).into()
    }

    async fn kind(&self) -> JobKind {
        self.0.kind.into()
    }

    async fn state(&self) -> JobState {
        self.0.state.into()
    }

    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }

    /// A short cause, such as the SMTP reply; never a secret. On a DONE job
    /// it says why nothing was sent (`not sent: …`), or what failed before
    /// the email went out (`sent on attempt N; before it: …`).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// The recipient's address.
    async fn recipient(&self) -> Option<&str> {
        self.0.recipient.as_deref()
    }

    /// The X-Request-Id of the request that wrote the job, to follow an
    /// email back to the call that caused it.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Jobs, newest first.
pub type JobConnection = Connection<Job, JobSet>;

/// Which jobs a connection pages through, for its totalCount.
pub enum JobSet {
    User {
        tenant_id: TenantId,
        user_id: UserId,
    },
    Queue {
        tenant_id: TenantId,
        kind: Option<CoreKind>,
        state: Option<CoreState>,
    },
}

fn before(page: &Page) -> ApiResult<Option<i64>> {
    page.after
        .as_deref()
        .map(|a| a.parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::bad_input("after", "after is not a cursor from this API"))
}

impl JobConnection {
    /// The emails addressed to a user.
    pub async fn for_user(
        ctx: &Context<'_>,
        tenant_id: TenantId,
        user_id: UserId,
        page: Page,
    ) -> ApiResult<Self> {
        let state = ctx.data_unchecked::<AppState>();
        let rows = jobs::for_user(
            &state.pool,
            tenant_id,
            user_id,
            before(&page)?,
            page.limit(),
        )
        .await?;
        let set = JobSet::User { tenant_id, user_id };
        Ok(Connection::new(
            &page,
            rows,
            |row| row.id.to_string(),
            Job,
            set,
        ))
    }

    /// The tenant's jobs of a kind and state.
    pub async fn for_queue(
        ctx: &Context<'_>,
        tenant_id: TenantId,
        kind: Option<JobKind>,
        job_state: Option<JobState>,
        page: Page,
    ) -> ApiResult<Self> {
        let state = ctx.data_unchecked::<AppState>();
        let kind = kind.map(CoreKind::from);
        let job_state = job_state.map(CoreState::from);
        let rows = jobs::list(
            &state.pool,
            tenant_id,
            kind,
            job_state,
            before(&page)?,
            page.limit(),
        )
        .await?;
        let set = JobSet::Queue {
            tenant_id,
            kind,
            state: job_state,
        };
        Ok(Connection::new(
            &page,
            rows,
            |row| row.id.to_string(),
            Job,
            set,
        ))
    }
}

impl Total for JobSet {
    async fn count(&self, ctx: &Context<'_>) -> ApiResult<Count> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(Count::exact(match *self {
            JobSet::User { tenant_id, user_id } => {
                jobs::count_for_user(&state.pool, tenant_id, user_id).await?
            }
            JobSet::Queue {
                tenant_id,
                kind,
                state: job_state,
            } => jobs::count(&state.pool, tenant_id, kind, job_state).await?,
        }))
    }
}

/// How many jobs of one kind are in each state.
#[derive(SimpleObject)]
#[graphql(name = "JobKindStats")]
pub struct JobKindRow {
    pub kind: JobKind,
    pub awaiting_dispatch: i64,
    pub pending: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub killed: i64,
}

/// The job queue as operators see it, read from the ledger.
pub struct JobQueue {
    pub tenant_id: TenantId,
}

#[Object]
impl JobQueue {
    /// Per kind, how many jobs are in each state.
    async fn kinds(&self, ctx: &Context<'_>) -> ApiResult<Vec<JobKindRow>> {
        let state = ctx.data_unchecked::<AppState>();
        let counts = jobs::counts(&state.pool, self.tenant_id).await?;
        Ok(CoreKind::ALL
            .into_iter()
            .map(|kind| {
                let mut row = JobKindRow {
                    kind: kind.into(),
                    ..JobKindRow::default()
                };
                for &(k, s, n) in &counts {
                    if k == kind {
                        row.add(s.into(), n);
                    }
                }
                row
            })
            .collect())
    }

    /// Workers that sent a heartbeat recently (within 30 seconds).
    async fn active_workers(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(jobs::active_workers(&state.pool).await?)
    }

    /// The tenant's jobs, newest first. `first` defaults to 20 and may be at most 100.
    #[graphql(complexity = "pagination::connection_cost(first, child_complexity)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        kind: Option<JobKind>,
        state: Option<JobState>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<JobConnection> {
        JobConnection::for_queue(
            ctx,
            self.tenant_id,
            kind,
            state,
            pagination::page(first, after)?,
        )
        .await
    }
}

impl Default for JobKindRow {
    fn default() -> Self {
        Self {
            kind: JobKind::Invitation,
            awaiting_dispatch: 0,
            pending: 0,
            running: 0,
            done: 0,
            failed: 0,
            killed: 0,
        }
    }
}

impl JobKindRow {
    fn add(&mut self, state: JobState, count: i64) {
        let slot = match state {
            JobState::AwaitingDispatch => &mut self.awaiting_dispatch,
            JobState::Pending => &mut self.pending,
            JobState::Running => &mut self.running,
            JobState::Done => &mut self.done,
            JobState::Failed => &mut self.failed,
            JobState::Killed => &mut self.killed,
        };
        *slot += count;
    }
}
