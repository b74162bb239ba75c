//! The email a change calls for, queued as job rows in the change's own
//! transaction: link emails, notices to administrators and notices to a
//! user about its own account.

use sqlx::PgConnection;

use crate::auth::Caller;
use crate::error::ApiResult;
use canopy_core::config::Config;
use canopy_core::id::{TenantId, UserId};
use canopy_core::jobs::{AccountNotice, JobKind, Notice, Payload};
use canopy_core::secrets::Keyring;
use canopy_core::store::jobs::{self, NewJob, Notification, notify_administrators};
use canopy_core::store::tokens::{self, IssuedToken, Purpose, TokenRequest};
use canopy_core::store::users::{self, UserRow};
use chrono::Duration;

/// A link email to send: what the link does, how long it works, where
/// it goes, and (for an address change) the address it proves.
pub(super) struct LinkEmail<'a> {
    pub purpose: Purpose,
    pub ttl: Duration,
    pub to: &'a str,
    pub new_address: Option<&'a str>,
}

/// Issues a link for `user` (the user's unused links of the same purpose
/// stop working) and queues the email that carries it.
pub(super) async fn send_link(
    conn: &mut PgConnection,
    config: &Config,
    keyring: &Keyring,
    user: &UserRow,
    email: LinkEmail<'_>,
) -> ApiResult<IssuedToken> {
    let token = tokens::issue(
        conn,
        keyring,
        TokenRequest {
            tenant_id: user.tenant_id,
            user_id: user.id,
            purpose: email.purpose,
            ttl: email.ttl,
            method: None,
            email: email.new_address,
        },
    )
    .await?;
    let kind = match email.purpose {
        Purpose::EmailValidation => JobKind::EmailValidation,
        Purpose::Activation => JobKind::Invitation,
        Purpose::PasswordReset => JobKind::PasswordReset,
    };
    queue_link(conn, config, kind, user, email.to, &token).await?;
    Ok(token)
}

/// A link email: the job names the user and the token row, so the worker
/// rebuilds the same link on every attempt.
pub(super) async fn queue_link(
    conn: &mut PgConnection,
    config: &Config,
    kind: JobKind,
    user: &UserRow,
    to: &str,
    token: &IssuedToken,
) -> ApiResult<()> {
    jobs::enqueue(
        conn,
        NewJob {
            tenant_id: user.tenant_id,
            kind,
            payload: Payload::Link {
                user_id: user.id,
                token_id: token.id,
            },
            recipient: to,
            user_id: Some(user.id),
            customer_id: user.customer_id,
            max_attempts: config.job_max_attempts,
        },
    )
    .await?;
    Ok(())
}

pub(super) async fn notify(
    conn: &mut PgConnection,
    config: &Config,
    caller: Option<&Caller>,
    user: &UserRow,
    notice: Notice,
) -> ApiResult<()> {
    notify_administrators(
        conn,
        Notification {
            tenant_id: user.tenant_id,
            customer_id: user.customer_id,
            notice,
            subject_user_id: Some(user.id),
            subject_label: &user.email,
            actor_user_id: caller.and_then(Caller::user_id),
            fall_back_to_tenant_admins: notice == Notice::ApprovalRequested,
            max_attempts: config.job_max_attempts,
        },
    )
    .await?;
    Ok(())
}

/// Queues an ACCOUNT_NOTICE to `address` about the user's own account.
pub(super) async fn tell(
    conn: &mut PgConnection,
    config: &Config,
    tenant_id: TenantId,
    user_id: UserId,
    notice: AccountNotice,
    address: &str,
) -> ApiResult<()> {
    jobs::enqueue(
        conn,
        NewJob {
            tenant_id,
            kind: JobKind::AccountNotice,
            payload: Payload::Account {
                user_id,
                notice,
                address: address.to_owned(),
            },
            recipient: address,
            user_id: Some(user_id),
            customer_id: None,
            max_attempts: config.job_max_attempts,
        },
    )
    .await?;
    Ok(())
}

/// Tells whoever holds or reserves `address` that someone tried to sign up
/// with it.
pub(super) async fn tell_the_address_owner(
    conn: &mut PgConnection,
    config: &Config,
    tenant_id: TenantId,
    address: &str,
) -> ApiResult<()> {
    let Some((owner, address)) = users::address_owner(&mut *conn, tenant_id, address).await? else {
        return Ok(());
    };
    tell(
        conn,
        config,
        tenant_id,
        owner,
        AccountNotice::SignUpAttempted,
        &address,
    )
    .await
}
