//! INVITATION: the activation link for a user an administrator created;
//! moot once the user is active.

use serde_json::json;

use super::{Addressed, Link};
use canopy_core::lifecycle::UserStatus;

pub(crate) fn address(link: &Link) -> Addressed {
    if link.user.status != UserStatus::PendingEmailValidation {
        return Err("the user is already activated".to_owned());
    }
    Ok((link.user.email.clone(), json!({})))
}
