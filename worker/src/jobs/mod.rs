//! One module per job kind. Each reloads what it needs from Postgres,
//! decides whether the job is moot (the user is gone, already active, the
//! customer deleted) and otherwise writes the email.

pub mod account_notice;
pub mod admin_notification;
pub mod email_validation;
pub mod invitation;
pub mod password_reset;

use std::sync::Arc;

use canopy_core::config::Config;
use canopy_core::id::{TenantId, UserId};
use canopy_core::jobs::{JobKind, Payload};
use canopy_core::links;
use canopy_core::secrets::Keyring;
use canopy_core::store::tenants::{self, TenantRow};
use canopy_core::store::tokens::{self, TokenRow, Unusable};
use canopy_core::store::users::{self, Recipient};
use lettre::message::Mailbox;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ledger::Outcome;
use crate::mail::templates::{Brand, Templates, in_words};
use crate::mail::{Email, Mailer, Reachability};
use canopy_core::store::jobs::Claimed;

/// What every job handler may use.
pub struct Context {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub keyring: Arc<Keyring>,
    pub mailer: Arc<Mailer>,
    /// This worker process: whom its claims name, and whether its
    /// heartbeat is recent enough to start a send.
    pub worker: crate::heartbeat::Worker,
    /// Whether the mail server answers; while it does not, no job is claimed.
    pub reachability: Reachability,
    /// The worker's shutdown, ending any wait for the mail server.
    pub stop: CancellationToken,
    /// The attempts running, each a task of its own (see `consumer::handle`),
    /// awaited before the worker stops.
    pub attempts: TaskTracker,
    /// One permit per attempt running: the configured concurrency holds
    /// even across apalis workers that lost Redis and were replaced.
    pub slots: Arc<Semaphore>,
    pub templates: Templates,
    pub from: Mailbox,
}

/// What a handler decided.
pub enum Composed {
    Send(Email),
    Moot(String),
}

/// A kind of link email: the page its link opens, its templates, and who
/// it goes to (or why it is moot).
pub(crate) struct LinkKind {
    page: &'static str,
    template: &'static str,
    address: fn(&Link) -> Addressed,
}

/// The link email a kind sends; `None` for kinds that carry no link.
fn link_kind(kind: JobKind) -> Option<LinkKind> {
    let (page, template, address): (_, _, fn(&Link) -> Addressed) = match kind {
        JobKind::Invitation => (links::ACTIVATE, "invitation", invitation::address),
        JobKind::EmailValidation => (
            links::VALIDATE_EMAIL,
            "email_validation",
            email_validation::address,
        ),
        JobKind::PasswordReset => (
            links::RESET_PASSWORD,
            "password_reset",
            password_reset::address,
        ),
        JobKind::AdminNotification | JobKind::AccountNotice => return None,
    };
    Some(LinkKind {
        page,
        template,
        address,
    })
}

pub async fn compose(ctx: &Context, job: &Claimed) -> Result<Composed, Outcome> {
    let payload: Payload = serde_json::from_value(job.payload.0.clone())
        .map_err(|e| Outcome::Permanent(format!("unreadable payload: {e}")))?;
    match (job.kind, payload) {
        (kind, Payload::Link { user_id, token_id }) => match link_kind(kind) {
            Some(link_kind) => link_email(ctx, job, (user_id, token_id), link_kind).await,
            None => Err(mismatch(job)),
        },
        (JobKind::AdminNotification, payload @ Payload::Notice { .. }) => {
            admin_notification::compose(ctx, job, payload).await
        }
        (JobKind::AccountNotice, payload @ Payload::Account { .. }) => {
            account_notice::compose(ctx, job, payload).await
        }
        _ => Err(mismatch(job)),
    }
}

fn mismatch(job: &Claimed) -> Outcome {
    Outcome::Permanent(format!("a {} job cannot carry this payload", job.kind))
}

/// A database error while composing: the job is tried again later.
pub(crate) fn unavailable(error: sqlx::Error) -> Outcome {
    tracing::warn!(%error, "database error while composing an email");
    Outcome::Transient("the database was unavailable".to_owned())
}

pub(crate) async fn recipient(
    pool: &PgPool,
    tenant_id: TenantId,
    user_id: UserId,
) -> Result<Option<Recipient>, Outcome> {
    users::recipient(pool, tenant_id, user_id)
        .await
        .map_err(unavailable)
}

pub(crate) async fn tenant(pool: &PgPool, tenant_id: TenantId) -> Result<TenantRow, Outcome> {
    tenants::by_id(pool, tenant_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Outcome::Permanent("the tenant no longer exists".to_owned()))
}

/// The user a link email goes to and its token, or why it is moot.
pub(crate) struct Link {
    pub user: Recipient,
    pub token: TokenRow,
    pub tenant: TenantRow,
    pub url: String,
    pub expires_in: String,
}

/// Loads a link email's user, token and tenant and rebuilds the link from
/// the token row's id; `Err(Ok(reason))` when the email is moot.
pub(crate) async fn link(
    ctx: &Context,
    job: &Claimed,
    user_id: UserId,
    token_id: i64,
    page: &str,
) -> Result<Result<Link, String>, Outcome> {
    let Some(user) = recipient(&ctx.pool, job.tenant_id, user_id).await? else {
        return Ok(Err("the user no longer exists".to_owned()));
    };
    let token = tokens::by_id(&ctx.pool, job.tenant_id, token_id)
        .await
        .map_err(unavailable)?;
    let Some(token) = token else {
        return Ok(Err("the link no longer exists".to_owned()));
    };
    match token.unusable() {
        Some(Unusable::Used) => return Ok(Err("the link was already used".to_owned())),
        Some(Unusable::Revoked) => return Ok(Err("the link was replaced or revoked".to_owned())),
        Some(Unusable::Expired) => {
            return Ok(Err("the link expired before it could be sent".to_owned()));
        }
        None => {}
    }
    let tenant = tenant(&ctx.pool, job.tenant_id).await?;
    let portal = url::Url::parse(&tenant.portal_url)
        .map_err(|e| Outcome::Permanent(format!("the tenant's portal URL is invalid: {e}")))?;
    let secret = ctx
        .keyring
        .rebuild(
            token.secret_id.as_deref(),
            job.tenant_id,
            token_id,
            token.purpose.as_str(),
        )
        .ok_or_else(|| {
            // Transient: during a rolling rotation another process may
            // know the secret; after the attempts run out the job is KILLED.
            Outcome::Transient(
                "this process does not know the server secret that made the link \
                 (keep it in CANOPY_SECRET_PREVIOUS until its links expire)"
                    .to_owned(),
            )
        })?;
    let url = links::link(&portal, page, &secret);
    let expires_in = in_words(token.expires_at - token.created_at);
    Ok(Ok(Link {
        user,
        token,
        tenant,
        url,
        expires_in,
    }))
}

/// Where a link email goes and what else its template needs, or why it
/// is moot.
pub(crate) type Addressed = Result<(String, serde_json::Value), String>;

/// Composes a link email: loads the user, the token and the tenant
/// (`link`), lets the kind decide where it goes (or that it is moot), and
/// renders its templates with the link and what the kind added.
pub(crate) async fn link_email(
    ctx: &Context,
    job: &Claimed,
    ids: (UserId, i64),
    kind: LinkKind,
) -> Result<Composed, Outcome> {
    let (user_id, token_id) = ids;
    let link = match link(ctx, job, user_id, token_id, kind.page).await? {
        Ok(link) => link,
        Err(reason) => return Ok(Composed::Moot(reason)),
    };
    let (to, extra) = match (kind.address)(&link) {
        Ok(addressed) => addressed,
        Err(reason) => return Ok(Composed::Moot(reason)),
    };
    let mut context = serde_json::json!({
        "tenant": link.tenant.name,
        "name": link.user.greeting_name(),
        "link": link.url,
        "expires_in": link.expires_in,
    });
    if let (Some(context), serde_json::Value::Object(extra)) = (context.as_object_mut(), extra) {
        context.extend(extra);
    }
    email(ctx, job, kind.template, &to, &link.tenant, context).map(Composed::Send)
}

/// Renders `kind`'s templates into an email for `to`, in the tenant's
/// brand, with the job's stable Message-ID.
pub(crate) fn email(
    ctx: &Context,
    job: &Claimed,
    kind: &str,
    to: &str,
    tenant: &TenantRow,
    context: impl Serialize,
) -> Result<Email, Outcome> {
    let rendered = ctx
        .templates
        .render(kind, context, &Brand::of(tenant))
        .map_err(|e| Outcome::Permanent(format!("template error: {e}")))?;
    let domain = ctx.from.email.domain().to_owned();
    Ok(Email {
        to: to.to_owned(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        message_id: format!("canopy-job-{}-{}@{domain}", job.tenant_id, job.id),
    })
}
