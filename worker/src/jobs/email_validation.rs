//! EMAIL_VALIDATION: the link that proves an address, after a sign-up or
//! for an address change (then it goes to the new address).

use serde_json::json;

use super::{Composed, Context};
use crate::ledger::Outcome;
use canopy_core::id::UserId;
use canopy_core::lifecycle::UserStatus;
use canopy_core::links;
use canopy_core::store::jobs::Claimed;

pub async fn compose(
    ctx: &Context,
    job: &Claimed,
    user_id: UserId,
    token_id: i64,
) -> Result<Composed, Outcome> {
    let link = match super::link(ctx, job, user_id, token_id, links::VALIDATE_EMAIL).await? {
        Ok(link) => link,
        Err(reason) => return Ok(Composed::Moot(reason)),
    };
    let (address, change) = match &link.token.email {
        Some(new) => {
            let still_wanted = link
                .user
                .pending_email
                .as_deref()
                .is_some_and(|pending| pending.eq_ignore_ascii_case(new));
            if !still_wanted {
                return Ok(Composed::Moot(
                    "the address change was withdrawn".to_owned(),
                ));
            }
            (new.clone(), true)
        }
        None if link.user.status != UserStatus::PendingEmailValidation => {
            return Ok(Composed::Moot(
                "the address is already validated".to_owned(),
            ));
        }
        None => (link.user.email.clone(), false),
    };
    let context = json!({
        "tenant": link.tenant.name,
        "name": link.user.greeting_name(),
        "link": link.url,
        "expires_in": link.expires_in,
        "address": address,
        "change": change,
    });
    super::email(ctx, job, "email_validation", &address, context).map(Composed::Send)
}
