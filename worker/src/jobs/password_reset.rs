//! PASSWORD_RESET: the link to choose a new password; moot for a
//! suspended user.

use serde_json::json;

use super::{Addressed, Link};
use canopy_core::lifecycle::UserStatus;

pub(crate) fn address(link: &Link) -> Addressed {
    if link.user.status == UserStatus::Suspended {
        return Err("the user is suspended".to_owned());
    }
    Ok((link.user.email.clone(), json!({})))
}
