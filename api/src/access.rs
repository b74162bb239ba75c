//! The rules of `canopy_core::authz`, applied to the rows the API holds,
//! and their decisions turned into errors: hidden answers NOT_FOUND (as if
//! absent), forbidden answers FORBIDDEN. Actions and resolvers both ask
//! here, so a field and a mutation cannot disagree on who may see a row.

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use canopy_core::authz::{self, Decision};
use canopy_core::id::TenantId;
use canopy_core::path::Path;
use canopy_core::store::customers::CustomerRow;
use canopy_core::store::users::UserRow;

/// A decision as a result; `what` names the thing a hidden one answers
/// NOT_FOUND for.
pub fn enforce(decision: Decision, what: &str) -> ApiResult<()> {
    match decision {
        Decision::Allowed => Ok(()),
        Decision::Forbidden(reason) => Err(ApiError::Forbidden(reason)),
        Decision::Hidden => Err(ApiError::not_found(what)),
    }
}

/// Partners' own ids are set by tenant-wide callers only: a customer
/// administrator naming a customer or user with an id a partner will look
/// up would steer the partner's later writes into its own subtree.
pub fn may_set_external_id(caller: &Caller) -> ApiResult<()> {
    if caller.limits().is_some() {
        return Err(ApiError::Forbidden(
            "externalId is set by API keys and tenant administrators".into(),
        ));
    }
    Ok(())
}

/// Which audit entries the caller reads, or FORBIDDEN.
pub fn enforce_audit_sight(caller: &Caller) -> ApiResult<authz::AuditSight> {
    authz::audit_sight(caller).map_err(|decision| {
        enforce(decision, "audit log")
            .err()
            .unwrap_or_else(|| ApiError::Forbidden("the audit log is not yours to read".into()))
    })
}

/// Whether the row belongs to the caller's tenant. Rows of another tenant
/// reach a resolver only through the public mutations (a sign-up names
/// its tenant), and are never the caller's to read further.
pub fn in_tenant(caller: &Caller, tenant_id: TenantId) -> bool {
    caller.tenant_id == tenant_id
}

pub fn sees_customer(caller: &Caller, customer: &CustomerRow) -> bool {
    in_tenant(caller, customer.tenant_id)
        && authz::sees_customer(caller, customer.id, &customer.path)
}

pub fn manages_customer(caller: &Caller, customer: &CustomerRow) -> bool {
    in_tenant(caller, customer.tenant_id) && authz::manages_customer(caller, &customer.path)
}

/// Whether the caller sees the user (who administers what does not matter
/// for seeing).
pub fn sees_user(caller: &Caller, user: &UserRow) -> bool {
    in_tenant(caller, user.tenant_id) && authz::sees_user(caller, &user.facts(Vec::new()))
}

/// Whether the caller reaches the user's account as a manager: the user
/// belongs to a customer it manages (or it reaches the whole tenant).
pub fn reaches_user(caller: &Caller, user: &UserRow) -> bool {
    in_tenant(caller, user.tenant_id)
        && caller.limits().is_none_or(|reach| {
            user.customer_path
                .as_ref()
                .is_some_and(|path| reach.manages_path(path))
        })
}

/// NOT_FOUND when the customer is out of sight, FORBIDDEN when it may be
/// seen but not changed.
pub fn must_manage_customer(caller: &Caller, customer: &CustomerRow) -> ApiResult<()> {
    enforce(
        authz::change_customer(caller, customer.id, &customer.path),
        "customer",
    )
}

/// As `must_manage_customer`, for moving or deleting it.
pub fn must_restructure_customer(caller: &Caller, customer: &CustomerRow) -> ApiResult<()> {
    enforce(
        authz::restructure_customer(caller, customer.id, &customer.path),
        "customer",
    )
}

/// Managing `user`, given the paths of the customers it administers:
/// NOT_FOUND out of sight, FORBIDDEN when seen but not managed or when it
/// holds a power the caller does not.
pub fn must_manage_user(caller: &Caller, user: &UserRow, administered: Vec<Path>) -> ApiResult<()> {
    enforce(
        authz::manage_user(caller, &user.facts(administered)),
        "user",
    )
}

/// A new API key may hold only scopes its creator holds.
pub fn may_grant(caller: &Caller, scopes: &[Scope]) -> ApiResult<()> {
    enforce(authz::grant_scopes(caller, scopes), "api key")
}
