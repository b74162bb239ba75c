use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::PageInfo;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, NodeKind};
use crate::pagination::{self, Page, PageInfoParts};
use crate::store::jobs::{self, JobRow};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    EmailValidation,
    Invitation,
    AdminNotification,
    PasswordReset,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
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

impl JobKind {
    fn parse(name: &str) -> Self {
        match name {
            "EMAIL_VALIDATION" => JobKind::EmailValidation,
            "INVITATION" => JobKind::Invitation,
            "PASSWORD_RESET" => JobKind::PasswordReset,
            _ => JobKind::AdminNotification,
        }
    }
}

impl JobState {
    fn parse(name: &str) -> Self {
        match name {
            "AWAITING_DISPATCH" => JobState::AwaitingDispatch,
            "PENDING" => JobState::Pending,
            "RUNNING" => JobState::Running,
            "DONE" => JobState::Done,
            "FAILED" => JobState::Failed,
            _ => JobState::Killed,
        }
    }
}

/// An email on its way: its state, attempts and last error.
pub struct Job(pub JobRow);

#[Object]
impl Job {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Job, self.0.id)
    }

    async fn kind(&self) -> JobKind {
        JobKind::parse(&self.0.kind)
    }

    async fn state(&self) -> JobState {
        JobState::parse(&self.0.state)
    }

    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }

    /// A short cause, such as the SMTP reply; never a secret.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// The recipient's address.
    async fn recipient(&self) -> Option<&str> {
        self.0.recipient.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(SimpleObject)]
pub struct JobEdge {
    pub cursor: String,
    pub node: Job,
}

/// Jobs, newest first.
pub struct JobConnection {
    rows: Vec<JobRow>,
    info: PageInfoParts,
    tenant_id: i64,
    user_id: i64,
}

impl JobConnection {
    /// The emails addressed to a user.
    pub async fn for_user(
        ctx: &Context<'_>,
        tenant_id: i64,
        user_id: i64,
        page: Page,
    ) -> ApiResult<Self> {
        let before = page
            .after
            .as_deref()
            .map(|a| a.parse::<i64>())
            .transpose()
            .map_err(|_| ApiError::bad_input("after", "after is not a cursor from this API"))?;
        let state = ctx.data_unchecked::<AppState>();
        let rows = jobs::for_user(&state.pool, tenant_id, user_id, before, page.limit()).await?;
        let (rows, info) = page.finish(rows);
        Ok(Self {
            rows,
            info,
            tenant_id,
            user_id,
        })
    }

    fn cursors(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|row| pagination::encode_cursor(&row.id.to_string()))
            .collect()
    }
}

#[Object]
impl JobConnection {
    async fn edges(&self) -> Vec<JobEdge> {
        self.rows
            .iter()
            .zip(self.cursors())
            .map(|(row, cursor)| JobEdge {
                cursor,
                node: Job(row.clone()),
            })
            .collect()
    }

    async fn nodes(&self) -> Vec<Job> {
        self.rows.iter().cloned().map(Job).collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo::new(self.info, &self.cursors())
    }

    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(jobs::count_for_user(&state.pool, self.tenant_id, self.user_id).await?)
    }
}
