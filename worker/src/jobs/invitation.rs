//! INVITATION: the activation link for a user an administrator created.

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
    let link = match super::link(ctx, job, user_id, token_id, links::ACTIVATE).await? {
        Ok(link) => link,
        Err(reason) => return Ok(Composed::Moot(reason)),
    };
    if link.user.status != UserStatus::PendingEmailValidation {
        return Ok(Composed::Moot("the user is already activated".to_owned()));
    }
    let context = json!({
        "tenant": link.tenant.name,
        "name": link.user.greeting_name(),
        "link": link.url,
        "expires_in": link.expires_in,
    });
    super::email(ctx, job, "invitation", &link.user.email, context).map(Composed::Send)
}
