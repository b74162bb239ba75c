//! ADMIN_NOTIFICATION: one email to one administrator about something that
//! happened at a customer they manage. Moot once the recipient can no
//! longer act on it, or the customer is gone.

use canopy_core::id::{CustomerId, UserId};
use canopy_core::jobs::{Notice, Payload};
use canopy_core::lifecycle::UserStatus;
use canopy_core::store::{customers, users};
use serde_json::json;

use super::{Composed, Context};
use crate::ledger::Outcome;
use canopy_core::store::jobs::Claimed;

fn describe(notice: Notice, subject: &str) -> (&'static str, String) {
    match notice {
        Notice::ApprovalRequested => (
            "a user waits for approval",
            format!("{subject} has validated their email address and waits for your approval."),
        ),
        Notice::UserAdded => (
            "a user was added",
            format!("{subject} was added as a user."),
        ),
        Notice::UserSuspended => (
            "a user was suspended",
            format!("{subject} was suspended and can no longer sign in."),
        ),
        Notice::UserDeleted => ("a user was deleted", format!("{subject} was deleted.")),
        Notice::AdministratorAssigned => (
            "an administrator was assigned",
            format!("{subject} is now an administrator."),
        ),
        Notice::AdministratorRemoved => (
            "an administrator was removed",
            format!("{subject} is no longer an administrator."),
        ),
        Notice::TenantAdministratorAdded => (
            "a tenant administrator was added",
            format!(
                "{subject} was made a tenant administrator and may do everything in the tenant."
            ),
        ),
        Notice::ApiKeyCreated => (
            "an API key was created",
            format!("The API key {subject} was created. If you do not know why, revoke it."),
        ),
        Notice::WebhookDisabled => (
            "a webhook endpoint was disabled",
            format!(
                "The webhook endpoint {subject} failed too many times in a row and receives \
                 nothing until it is enabled again. Its events wait in the event log."
            ),
        ),
    }
}

pub async fn compose(ctx: &Context, job: &Claimed, payload: Payload) -> Result<Composed, Outcome> {
    let Payload::Notice {
        recipient_user_id,
        notice,
        customer_id,
        subject_label,
        subject_user_id,
    } = payload
    else {
        return Err(Outcome::Permanent("not a notice".to_owned()));
    };
    let Some(recipient) = super::recipient(&ctx.pool, job.tenant_id, recipient_user_id).await?
    else {
        return Ok(Composed::Moot(
            "the administrator no longer exists".to_owned(),
        ));
    };
    if recipient.status != UserStatus::Active {
        return Ok(Composed::Moot(
            "the administrator cannot sign in".to_owned(),
        ));
    }
    let customer = match customer_id {
        Some(customer_id) => {
            let title = customers::title(&ctx.pool, job.tenant_id, customer_id)
                .await
                .map_err(super::unavailable)?;
            match title {
                Some(title) => Some(title),
                None => return Ok(Composed::Moot("the customer was deleted".to_owned())),
            }
        }
        None => None,
    };
    if let Some(reason) = moot(
        ctx,
        job,
        notice,
        recipient_user_id,
        customer_id,
        subject_user_id,
    )
    .await?
    {
        return Ok(Composed::Moot(reason));
    }
    let tenant = super::tenant(&ctx.pool, job.tenant_id).await?;
    let (headline, sentence) = describe(notice, &subject_label);
    let context = json!({
        "tenant": tenant.name,
        "name": recipient.greeting_name(),
        "headline": headline,
        "sentence": sentence,
        "approval": notice == Notice::ApprovalRequested,
        "portal": tenant.portal_url,
        "customer": customer,
    });
    super::email(
        ctx,
        job,
        "admin_notification",
        &recipient.email,
        &tenant,
        context,
    )
    .map(Composed::Send)
}

/// Why the notice no longer matters, if it does not: an approval already
/// decided, or a recipient who no longer administers the customer.
async fn moot(
    ctx: &Context,
    job: &Claimed,
    notice: Notice,
    recipient: UserId,
    customer_id: Option<CustomerId>,
    subject: Option<UserId>,
) -> Result<Option<String>, Outcome> {
    if notice == Notice::ApprovalRequested {
        let waiting = match subject {
            Some(subject) => super::recipient(&ctx.pool, job.tenant_id, subject)
                .await?
                .is_some_and(|user| user.status == UserStatus::PendingApproval),
            None => false,
        };
        if !waiting {
            return Ok(Some("the request was already decided".to_owned()));
        }
    }
    // The administrator removed is told even though it no longer is one.
    let about_itself = notice == Notice::AdministratorRemoved && subject == Some(recipient);
    if let Some(customer_id) = customer_id
        && !about_itself
    {
        let still = users::still_administers(&ctx.pool, job.tenant_id, recipient, customer_id)
            .await
            .map_err(super::unavailable)?;
        if !still {
            return Ok(Some(
                "the recipient no longer administers the customer".to_owned(),
            ));
        }
    }
    Ok(None)
}
