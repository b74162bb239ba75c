//! Jobs: what the API queues and the worker executes. A job is written in
//! the transaction of the change that causes it (the outbox, see
//! `store::jobs`); its payload names rows by id and never carries a secret.

use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, UserId};

/// Attempts before a job is KILLED, unless configured otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;

crate::text_enum! {
    /// What a job sends.
    pub enum JobKind {
        EmailValidation = "EMAIL_VALIDATION",
        Invitation = "INVITATION",
        AdminNotification = "ADMIN_NOTIFICATION",
        PasswordReset = "PASSWORD_RESET",
        AccountNotice = "ACCOUNT_NOTICE",
    }
}

crate::text_enum! {
    /// Where a job is in its life: written with its change, handed to
    /// Redis, running, and finished one way or another.
    pub enum JobState {
        /// Committed; the relay has not handed it to Redis yet.
        AwaitingDispatch = "AWAITING_DISPATCH",
        /// In Redis, waiting for a worker.
        Pending = "PENDING",
        Running = "RUNNING",
        Done = "DONE",
        /// An attempt failed; another follows after a backoff.
        Failed = "FAILED",
        /// Given up: attempts used up, a permanent failure, or cancelled.
        Killed = "KILLED",
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
    /// To the tenant's administrators: a webhook endpoint failed too often
    /// in a row and was disabled.
    WebhookDisabled,
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
    Link { user_id: UserId, token_id: i64 },
    /// A notice to one administrator about a user or customer.
    #[serde(rename_all = "camelCase")]
    Notice {
        recipient_user_id: UserId,
        notice: Notice,
        subject_user_id: Option<UserId>,
        customer_id: Option<CustomerId>,
        /// What the notice names, kept because the subject may be gone
        /// (a deleted user) when the email is written. An address or a
        /// title, never a secret.
        subject_label: String,
    },
    /// A notice to a user about its own account, sent to `address` (which
    /// may be an address the user no longer holds).
    #[serde(rename_all = "camelCase")]
    Account {
        user_id: UserId,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_ids_in_json() {
        let payload = Payload::Link {
            user_id: UserId(5),
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
