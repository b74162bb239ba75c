//! EMAIL_VALIDATION: the link that proves an address, after a sign-up or
//! for an address change (then it goes to the new address).

use serde_json::json;

use super::{Addressed, Link};
use canopy_core::lifecycle::UserStatus;

/// To the new address for an address change still wanted; to the user's
/// own address for a sign-up not yet validated.
pub(crate) fn address(link: &Link) -> Addressed {
    let (address, change) = match &link.token.email {
        Some(new) => {
            let still_wanted = link
                .user
                .pending_email
                .as_deref()
                .is_some_and(|pending| pending.eq_ignore_ascii_case(new));
            if !still_wanted {
                return Err("the address change was withdrawn".to_owned());
            }
            (new.clone(), true)
        }
        None if link.user.status != UserStatus::PendingEmailValidation => {
            return Err("the address is already validated".to_owned());
        }
        None => (link.user.email.clone(), false),
    };
    Ok((
        address.clone(),
        json!({ "address": address, "change": change }),
    ))
}
