//! ADMIN_NOTIFICATION: one email to one administrator about something that
//! happened at a customer they manage. Moot once the recipient can no
//! longer act on it, or the customer is gone.

use canopy_core::jobs::{Notice, Payload};
use serde_json::json;

use super::{Composed, Context};
use crate::ledger::{Claimed, Outcome};

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
    }
}

pub async fn compose(ctx: &Context, job: &Claimed, payload: Payload) -> Result<Composed, Outcome> {
    let Payload::Notice {
        recipient_user_id,
        notice,
        customer_id,
        subject_label,
        ..
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
    if recipient.status != "ACTIVE" {
        return Ok(Composed::Moot(
            "the administrator cannot sign in".to_owned(),
        ));
    }
    let customer = match customer_id {
        Some(customer_id) => {
            let title: Option<String> =
                sqlx::query_scalar("SELECT title FROM customers WHERE tenant_id = $1 AND id = $2")
                    .bind(job.tenant_id)
                    .bind(customer_id)
                    .fetch_optional(&ctx.pool)
                    .await
                    .map_err(super::unavailable)?;
            match title {
                Some(title) => Some(title),
                None => return Ok(Composed::Moot("the customer was deleted".to_owned())),
            }
        }
        None => None,
    };
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
    super::email(ctx, job, "admin_notification", &recipient.email, context).map(Composed::Send)
}
