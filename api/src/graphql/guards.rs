//! Who may do what, in one place. Resolvers ask here before they read or
//! change anything; nothing else decides access.

use async_graphql::Context;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};

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
