//! Jobs: what the API queues and the worker executes. A job is written in
//! the transaction of the change that causes it (the outbox); its payload
//! names rows by id and never carries a secret.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

/// Attempts before a job is KILLED, unless configured otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobKind {
    EmailValidation,
    Invitation,
    AdminNotification,
    PasswordReset,
    AccountNotice,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::EmailValidation,
        JobKind::Invitation,
        JobKind::AdminNotification,
        JobKind::PasswordReset,
        JobKind::AccountNotice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::EmailValidation => "EMAIL_VALIDATION",
            JobKind::Invitation => "INVITATION",
            JobKind::AdminNotification => "ADMIN_NOTIFICATION",
            JobKind::PasswordReset => "PASSWORD_RESET",
            JobKind::AccountNotice => "ACCOUNT_NOTICE",
        }
    }

    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What happened that administrators are told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Notice {
    ApprovalRequested,
    UserAdded,
    UserSuspended,
    UserDeleted,
    AdministratorAssigned,
    AdministratorRemoved,
    /// To the tenant's administrators: a new tenant administrator.
    TenantAdministratorAdded,
    /// To the tenant's administrators: a new API key.
    ApiKeyCreated,
}

/// What a person is told about its own account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountNotice {
    /// Someone tried to sign up with an address that already has an
    /// account; the answer to them did not say so, the owner is told.
    SignUpAttempted,
    /// Its password was changed (sent to its address).
    PasswordChanged,
    /// Its address was changed (sent to the old and the new address).
    EmailChanged,
    /// It was made a tenant administrator.
    BecameTenantAdministrator,
}

impl AccountNotice {
    /// The folder of its templates, below `worker/templates/`.
    pub fn template(self) -> &'static str {
        match self {
            AccountNotice::SignUpAttempted => "account/sign_up_attempted",
            AccountNotice::PasswordChanged => "account/password_changed",
            AccountNotice::EmailChanged => "account/email_changed",
            AccountNotice::BecameTenantAdministrator => "account/tenant_administrator",
        }
    }
}

/// The payload of a job: ids only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Payload {
    /// An email carrying a link: validation, invitation or reset. The link's
    /// token is rebuilt from the token row's id under the server secret.
    #[serde(rename_all = "camelCase")]
    Link { user_id: i64, token_id: i64 },
    /// A notice to one administrator about a user or customer.
    #[serde(rename_all = "camelCase")]
    Notice {
        recipient_user_id: i64,
        notice: Notice,
        subject_user_id: Option<i64>,
        customer_id: Option<i64>,
        /// What the notice names, kept because the subject may be gone
        /// (a deleted user) when the email is written. An address or a
        /// title, never a secret.
        subject_label: String,
    },
    /// A notice to a user about its own account, sent to `address` (which
    /// may be an address the user no longer holds).
    #[serde(rename_all = "camelCase")]
    Account {
        user_id: i64,
        notice: AccountNotice,
        address: String,
    },
}

tokio::task_local! {
    /// The id of the request being served, for the jobs it writes.
    pub static REQUEST_ID: String;
}

/// The id of the request this task serves, if it serves one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A job to queue with the change that causes it.
pub struct NewJob<'a> {
    pub tenant_id: i64,
    pub kind: JobKind,
    pub payload: Payload,
    pub recipient: &'a str,
    pub user_id: Option<i64>,
    pub max_attempts: i32,
}

/// Writes the job row on `conn`, inside the caller's transaction: a
/// rolled-back change leaves no job, a committed one always has its job.
pub async fn enqueue(conn: &mut PgConnection, job: NewJob<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO jobs (tenant_id, kind, payload, recipient, user_id, max_attempts, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(job.tenant_id)
    .bind(job.kind.as_str())
    .bind(sqlx::types::Json(&job.payload))
    .bind(job.recipient)
    .bind(job.user_id)
    .bind(job.max_attempts)
    .bind(current_request_id())
    .fetch_one(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_ids_in_json() {
        let payload = Payload::Link {
            user_id: 5,
            token_id: 9,
        };
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "type": "link", "userId": 5, "tokenId": 9 })
        );
        assert_eq!(serde_json::from_value::<Payload>(json).unwrap(), payload);
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
    }
}
