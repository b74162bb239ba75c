//! The caller of a GraphQL request, from its context: the only part of
//! access control that needs the request (the rules are in `access`).

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
