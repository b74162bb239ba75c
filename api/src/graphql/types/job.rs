use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::actor::Actor;
use super::connection::{Connection, Total};
use crate::AppState;
use crate::actions::jobs::KIND;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::graphql::loaders::{LastAct, Loaders};
use crate::ids::{self};
use crate::pagination::{self, Page};
use crate::validation;
use canopy_core::authz::{Actor as CoreActor, Scope as CoreScope};
use canopy_core::id::{TenantId, UserId};
use canopy_core::jobs::{JobKind as CoreKind, JobState as CoreState};
use canopy_core::store::jobs::{self, JobFilter as CoreFilter, JobRow, Pause};
use canopy_core::store::{Count, audit};

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

    /// The last thing an operator did to it (cancel, retry), by whom and
    /// when; null when no one has.
    /// null when no one has, or when its entry in the audit log, where
    /// who and when are read, was pruned.
    async fn last_action(&self, ctx: &Context<'_>) -> ApiResult<Option<JobActionRecord>> {
        let row = &self.0;
        let Some(action) = row.action else {
            return Ok(None);
        };
        let entry = ctx
            .data_unchecked::<Loaders>()
            .last_acts
            .load_one(LastAct {
                tenant_id: row.tenant_id,
                operations: ACTS_ON_A_JOB,
                object: ids::reference_of(row.id),
            })
            .await?;
        Ok(entry.map(|entry| JobActionRecord {
            action: action.into(),
            at: entry.at,
            by: Actor {
                tenant_id: row.tenant_id,
                actor: entry.actor(),
            },
        }))
    }
}

/// The mutations whose audit entries say who last acted on a job.
const ACTS_ON_A_JOB: &[&str] = &["cancelJob", "retryJob", "retryJobs"];

// The GraphQL face of `canopy_core::store::jobs::JobAction`.
/// What an operator did to a job.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "JobActionKind", remote = "canopy_core::store::jobs::JobAction")]
pub enum JobAction {
    Cancelled,
    Retried,
}

/// A worker process, as its heartbeat (every second) shows it.
#[derive(SimpleObject)]
pub struct WorkerProcess {
    /// Its process id and a random suffix, as its logs name it.
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    /// Heard from within the last 10 seconds; a worker silent for longer
    /// is taken for dead and its running jobs go to others.
    pub active: bool,
}

/// What one `retryJobs` did.
#[derive(SimpleObject)]
pub struct RetryJobsPayload {
    /// How many jobs it put back in the queue.
    pub retried: i64,
    /// Whether more jobs match, for another call.
    pub more: bool,
}

/// An operator's action on a job.
#[derive(SimpleObject)]
#[graphql(name = "JobAction")]
pub struct JobActionRecord {
    pub action: JobAction,
    pub at: DateTime<Utc>,
    pub by: Actor,
}

/// Which of the tenant's jobs: every condition given must hold.
#[derive(InputObject, Default)]
pub struct JobFilter {
    pub kind: Option<JobKind>,
    pub state: Option<JobState>,
    /// The recipient's whole address, in any case.
    pub recipient: Option<String>,
    /// The user the job is addressed to.
    pub user_id: Option<ID>,
    /// The customer the job concerns: a notice's customer, else the
    /// addressed user's.
    pub customer_id: Option<ID>,
}

impl JobFilter {
    /// The filter the ledger understands; `field` names the argument in
    /// errors (`filter`, or empty for the arguments of `jobs`). Finding
    /// jobs by user or customer needs the scope that reads them: the
    /// answer says which exist.
    pub fn decode(self, caller: &Caller, field: &str) -> ApiResult<CoreFilter> {
        for (given, scope) in [
            (self.user_id.is_some(), CoreScope::UsersRead),
            (self.customer_id.is_some(), CoreScope::CustomersRead),
        ] {
            if given && !caller.has(scope) {
                return Err(ApiError::Forbidden(format!(
                    "finding jobs by {} needs the {} scope",
                    if scope == CoreScope::UsersRead {
                        "user"
                    } else {
                        "customer"
                    },
                    scope.as_str()
                )));
            }
        }
        let name = |part: &str| {
            if field.is_empty() {
                part.to_owned()
            } else {
                format!("{field}.{part}")
            }
        };
        let recipient = self
            .recipient
            .map(|r| validation::lookup_email(&name("recipient"), &r))
            .transpose()?;
        Ok(CoreFilter {
            kind: self.kind.map(CoreKind::from),
            state: self.state.map(CoreState::from),
            recipient,
            user_id: self
                .user_id
                .map(|id| ids::expect_id(&id, &name("userId")))
                .transpose()?,
            customer_id: self
                .customer_id
                .map(|id| ids::expect_id(&id, &name("customerId")))
                .transpose()?,
        })
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
        filter: CoreFilter,
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

    /// The tenant's jobs that `filter` names.
    pub async fn for_queue(
        ctx: &Context<'_>,
        tenant_id: TenantId,
        filter: CoreFilter,
        page: Page,
    ) -> ApiResult<Self> {
        let state = ctx.data_unchecked::<AppState>();
        let rows = jobs::list(
            &state.pool,
            tenant_id,
            &filter,
            before(&page)?,
            page.limit(),
        )
        .await?;
        let set = JobSet::Queue { tenant_id, filter };
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
        match self {
            JobSet::User { tenant_id, user_id } => Ok(Count::exact(
                jobs::count_for_user(&state.pool, *tenant_id, *user_id).await?,
            )),
            JobSet::Queue { tenant_id, filter } => {
                Ok(jobs::count(&state.pool, *tenant_id, filter).await?)
            }
        }
    }
}

/// How many jobs of one kind are in each state, whether the kind is
/// paused, and how many ended in each minute of the last hour.
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
    /// Set while the kind is paused: its jobs wait (AWAITING_DISPATCH or
    /// PENDING) and none is sent until it is resumed.
    pub paused: Option<JobPause>,
    /// The last 60 minutes, oldest first, the current minute last: how
    /// many jobs of this kind were sent (or found moot), retried after a
    /// failed attempt, and killed in each. Empty unless asked for.
    pub throughput: Vec<JobMinute>,
}

/// A kind paused for the tenant: since when, and by whom.
pub struct JobPause(Pause);

#[Object]
impl JobPause {
    async fn at(&self) -> DateTime<Utc> {
        self.0.paused_at
    }

    /// Read from the audit log: neither user nor key once the entry of the
    /// pause was pruned.
    async fn by(&self, ctx: &Context<'_>) -> ApiResult<Actor> {
        let pool = &ctx.data_unchecked::<AppState>().pool;
        let pause = &self.0;
        let kind = pause.kind.as_str();
        let entry =
            audit::latest_with_detail(pool, pause.tenant_id, "pauseJobKind", KIND, kind).await?;
        Ok(Actor {
            tenant_id: pause.tenant_id,
            actor: entry.map_or(CoreActor::NOBODY, |entry| entry.actor()),
        })
    }
}

impl From<Pause> for JobPause {
    fn from(pause: Pause) -> Self {
        JobPause(pause)
    }
}

/// Jobs of one kind that ended in one minute.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct JobMinute {
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// Ended DONE: sent, or found moot.
    pub done: i64,
    /// An attempt failed; another follows.
    pub retried: i64,
    /// Given up: out of attempts, failed for good, or cancelled.
    pub killed: i64,
}

/// The job queue as operators see it, read from the ledger.
pub struct JobQueue {
    pub tenant_id: TenantId,
}

#[Object]
impl JobQueue {
    /// Per kind, how many jobs are in each state, whether it is paused,
    /// and its throughput over the last hour.
    async fn kinds(&self, ctx: &Context<'_>) -> ApiResult<Vec<JobKindRow>> {
        JobKindRow::all(ctx, self.tenant_id, &CoreKind::ALL).await
    }

    /// Worker processes that sent a heartbeat recently (within 10 seconds).
    async fn active_workers(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(jobs::active_workers(&state.pool).await?)
    }

    /// The worker processes heard from in the last day (they serve every
    /// tenant), latest heartbeat first, at most 100.
    async fn workers(&self, ctx: &Context<'_>) -> ApiResult<Vec<WorkerProcess>> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(jobs::workers(&state.pool, 100)
            .await?
            .into_iter()
            .map(|beat| WorkerProcess {
                id: beat.worker_id,
                started_at: beat.started_at,
                last_heartbeat_at: beat.last_seen,
                active: beat.active,
            })
            .collect())
    }

    /// The tenant's jobs, newest first, of a kind and state, or found by
    /// their recipient's whole address (in any case), the user they are
    /// addressed to, or the customer they concern (a notice's customer,
    /// else the addressed user's). `first` defaults to 20 and may be at
    /// most 100. Filtered by recipient, user or customer, `totalCount`
    /// stops at 10,000 (`totalCountIsExact` false). Finding by user needs
    /// USERS_READ, by customer CUSTOMERS_READ.
    #[graphql(complexity = "pagination::connection_cost(first, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        kind: Option<JobKind>,
        state: Option<JobState>,
        recipient: Option<String>,
        user_id: Option<ID>,
        customer_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<JobConnection> {
        let filter = JobFilter {
            kind,
            state,
            recipient,
            user_id,
            customer_id,
        }
        .decode(guards::caller(ctx)?, "")?;
        JobConnection::for_queue(ctx, self.tenant_id, filter, pagination::page(first, after)?).await
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
            paused: None,
            throughput: Vec::new(),
        }
    }
}

impl JobKindRow {
    /// The row of each of `kinds`, with its throughput when the selection
    /// asks for it.
    async fn all(
        ctx: &Context<'_>,
        tenant_id: TenantId,
        kinds: &[CoreKind],
    ) -> ApiResult<Vec<JobKindRow>> {
        let state = ctx.data_unchecked::<AppState>();
        let (counts, mut pauses) = tokio::try_join!(
            jobs::counts(&state.pool, tenant_id),
            jobs::pauses(&state.pool, tenant_id),
        )?;
        let asked = ctx.look_ahead().field("throughput").exists();
        let minutes = if asked {
            jobs::throughput(&state.pool, tenant_id, kinds).await?
        } else {
            Vec::new()
        };
        Ok(kinds
            .iter()
            .map(|&kind| {
                let mut row = JobKindRow {
                    kind: kind.into(),
                    paused: pauses
                        .iter()
                        .position(|p| p.kind == kind)
                        .map(|at| pauses.swap_remove(at).into()),
                    throughput: minutes
                        .iter()
                        .filter(|m| m.kind == kind)
                        .map(|m| JobMinute {
                            minute: m.minute,
                            done: m.done,
                            retried: m.retried,
                            killed: m.killed,
                        })
                        .collect(),
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

    /// The row of one kind.
    pub async fn of(ctx: &Context<'_>, tenant_id: TenantId, kind: JobKind) -> ApiResult<Self> {
        let mut rows = Self::all(ctx, tenant_id, &[kind.into()]).await?;
        Ok(rows.remove(0))
    }

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
