//! Who may do what, in one place (DESIGN "Who may do what"). Resolvers and
//! actions ask here before they read or change anything.
//!
//! - API keys: what their scopes allow, in the whole tenant;
//! - tenant administrators: everything in the tenant;
//! - a customer user: itself and its own customer to read; the subtrees of
//!   the customers it administers to read and change; its own names and
//!   phone to change.
//!
//! Something out of reach answers exactly as something that does not exist.

use async_graphql::Context;

use crate::auth::{Caller, CustomerReach, Reach, Scope};
use crate::error::{ApiError, ApiResult};
use crate::store::customers::CustomerRow;
use crate::store::users::UserRow;

/// The authenticated caller, or UNAUTHENTICATED.
pub fn caller<'a>(ctx: &Context<'a>) -> ApiResult<&'a Caller> {
    ctx.data_opt::<Caller>().ok_or(ApiError::Unauthenticated)
}

/// The caller, if it holds `scope`; else UNAUTHENTICATED or FORBIDDEN.
pub fn require<'a>(ctx: &Context<'a>, scope: Scope) -> ApiResult<&'a Caller> {
    let caller = caller(ctx)?;
    if caller.has(scope) {
        Ok(caller)
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs the {} scope",
            scope.as_str()
        )))
    }
}

/// A new API key may hold only scopes its creator holds.
pub fn may_grant(caller: &Caller, scopes: &[Scope]) -> ApiResult<()> {
    match scopes.iter().find(|s| !caller.has(**s)) {
        None => Ok(()),
        Some(scope) => Err(ApiError::Forbidden(format!(
            "cannot grant {} without holding it",
            scope.as_str()
        ))),
    }
}

/// The limits of a customer user's reach, for list queries; `None` for
/// callers who reach the whole tenant.
pub fn limits(caller: &Caller) -> Option<&CustomerReach> {
    match caller.reach() {
        Reach::Tenant => None,
        Reach::Customer(reach) => Some(reach),
    }
}

pub fn sees_customer(caller: &Caller, customer: &CustomerRow) -> bool {
    match limits(caller) {
        None => true,
        Some(reach) => {
            reach.own_customer == Some(customer.id) || reach.manages_path(&customer.path)
        }
    }
}

pub fn manages_customer(caller: &Caller, customer: &CustomerRow) -> bool {
    limits(caller).is_none_or(|reach| reach.manages_path(&customer.path))
}

/// Whether the caller may change the customer's place in the tree (move or
/// delete it): a customer administrator may not move the customer it was
/// given itself, only what lies below.
pub fn restructures_customer(caller: &Caller, customer: &CustomerRow) -> bool {
    limits(caller).is_none_or(|reach| {
        reach.manages_path(&customer.path) && !reach.administered.contains(&customer.path)
    })
}

pub fn sees_user(caller: &Caller, user: &UserRow) -> bool {
    match limits(caller) {
        None => true,
        Some(reach) => reach.user_id == user.id || manages_user_in(reach, user),
    }
}

pub fn manages_user(caller: &Caller, user: &UserRow) -> bool {
    limits(caller).is_none_or(|reach| manages_user_in(reach, user))
}

fn manages_user_in(reach: &CustomerReach, user: &UserRow) -> bool {
    user.customer_path
        .as_deref()
        .is_some_and(|path| reach.manages_path(path))
}

/// NOT_FOUND when the customer is out of sight, FORBIDDEN when it may be
/// seen but not changed.
pub fn must_manage_customer(caller: &Caller, customer: &CustomerRow) -> ApiResult<()> {
    if manages_customer(caller, customer) {
        Ok(())
    } else if sees_customer(caller, customer) {
        Err(ApiError::Forbidden(
            "you may not change this customer".into(),
        ))
    } else {
        Err(ApiError::not_found("customer"))
    }
}

/// As `must_manage_customer`, for moving or deleting it.
pub fn must_restructure_customer(caller: &Caller, customer: &CustomerRow) -> ApiResult<()> {
    must_manage_customer(caller, customer)?;
    if restructures_customer(caller, customer) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only what lies below the customers you administer may be moved or deleted".into(),
        ))
    }
}

/// NOT_FOUND when the user is out of sight, FORBIDDEN when it may be seen
/// but not managed.
pub fn must_manage_user(caller: &Caller, user: &UserRow) -> ApiResult<()> {
    if manages_user(caller, user) {
        Ok(())
    } else if sees_user(caller, user) {
        Err(ApiError::Forbidden("you may not manage this user".into()))
    } else {
        Err(ApiError::not_found("user"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    fn customer_user(administered: &[&str], own: Option<i64>) -> Caller {
        Caller {
            tenant_id: 1,
            principal: Principal::User {
                id: 7,
                session_id: 1,
                scopes: vec![],
                reach: Reach::Customer(CustomerReach {
                    user_id: 7,
                    own_customer: own,
                    administered: administered.iter().map(|p| p.to_string()).collect(),
                }),
            },
        }
    }

    #[test]
    fn subtrees_are_matched_by_whole_labels() {
        let reach = CustomerReach {
            user_id: 1,
            own_customer: None,
            administered: vec!["1.2".into()],
        };
        assert!(reach.manages_path("1.2"));
        assert!(reach.manages_path("1.2.5"));
        assert!(!reach.manages_path("1.22"), "a sibling sharing digits");
        assert!(!reach.manages_path("1"), "the parent");
        let caller = customer_user(&["1.2"], Some(9));
        assert!(limits(&caller).is_some());
    }
}
