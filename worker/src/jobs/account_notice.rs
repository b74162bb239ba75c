//! ACCOUNT_NOTICE: a person told about its own account: someone tried to
//! sign up with its address, its password or address changed, it became a
//! tenant administrator. Moot once the user is gone.

use canopy_core::jobs::{AccountNotice, Payload};
use serde_json::json;

use super::{Composed, Context};
use crate::ledger::Outcome;
use canopy_core::store::jobs::Claimed;

pub async fn compose(ctx: &Context, job: &Claimed, payload: Payload) -> Result<Composed, Outcome> {
    let Payload::Account {
        user_id,
        notice,
        address,
    } = payload
    else {
        return Err(Outcome::Permanent("not an account notice".to_owned()));
    };
    let Some(user) = super::recipient(&ctx.pool, job.tenant_id, user_id).await? else {
        return Ok(Composed::Moot("the user no longer exists".to_owned()));
    };
    let tenant = super::tenant(&ctx.pool, job.tenant_id).await?;
    let context = json!({
        "tenant": tenant.name,
        "name": user.greeting_name(),
        "portal": tenant.portal_url,
        // For an address change: the account's address now, and whether
        // this email goes to the address it left.
        "address": user.email,
        "to_old_address": notice == AccountNotice::EmailChanged
            && !address.eq_ignore_ascii_case(&user.email),
    });
    super::email(ctx, job, notice.template(), &address, &tenant, context).map(Composed::Send)
}
