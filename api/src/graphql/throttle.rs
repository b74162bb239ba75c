//! Rate limits applied to GraphQL: the public account flows per client
//! address and per target address, checked before any work; and every
//! authenticated caller's operations weighed by their cost (the validated
//! complexity), reported back in `extensions.cost` and in the RateLimit
//! headers.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextRequest, NextValidation,
};
use async_graphql::{Context, ErrorExtensionValues, Response, ServerError, ValidationResult};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::AppState;
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult, retry_after_seconds};
use crate::limits::{Limit, Verdict, client_key};
use canopy_core::config::Quota;

/// Public account mutations one operation may carry: one is all a client
/// needs, and aliases must not multiply guesses.
pub const MAX_PUBLIC_PER_OPERATION: u32 = 1;

/// What a request knows of its client, and what it has spent.
#[derive(Default)]
pub struct RequestBudget {
    /// The client's address (`limits::client_address`).
    pub client: Option<IpAddr>,
    public_calls: AtomicU32,
    /// The caller's budget after this operation, for the headers.
    pub report: Mutex<Option<Verdict>>,
}

impl RequestBudget {
    pub fn new(client: Option<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            client,
            ..Self::default()
        })
    }
}

/// A public account flow, for its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Login,
    /// signUp and requestPasswordReset: each may email the address.
    Emailing,
    /// validateEmail, activateAccount, resetPassword: a link's token.
    Link,
}

/// Counts a public flow against its limits before it does any work:
/// one per operation; per client address; for sign-in per client and
/// address and per address; for flows that email, per address. `address`
/// is the target email address (with its tenant), when there is one.
pub async fn public(ctx: &Context<'_>, flow: Flow, address: Option<(&str, &str)>) -> ApiResult<()> {
    let budget = ctx.data_unchecked::<Arc<RequestBudget>>();
    if budget.public_calls.fetch_add(1, Ordering::SeqCst) >= MAX_PUBLIC_PER_OPERATION {
        return Err(ApiError::RateLimited {
            message: format!(
                "an operation may carry at most {MAX_PUBLIC_PER_OPERATION} sign-in, sign-up, \
                 reset or link mutation"
            ),
            retry_after: std::time::Duration::ZERO,
        });
    }
    let client = client_key(budget.client);
    // The tenant as its number (every spelling of one id is one tenant)
    // and the address as a short digest, so keys stay small and one
    // account has one key whatever was typed.
    let address = address.map(|(tenant, email)| {
        let tenant = match crate::ids::decode(tenant) {
            Some((crate::ids::NodeKind::Tenant, number)) => number.to_string(),
            _ => "none".to_owned(),
        };
        let digest = canopy_core::secrets::sha256(
            format!("{tenant}:{}", email.trim().to_lowercase()).as_bytes(),
        );
        URL_SAFE_NO_PAD.encode(&digest[..16])
    });
    let mut checks = vec![(Limit::PublicClient, client.clone())];
    match (flow, &address) {
        (Flow::Login, Some(address)) => {
            checks.push((Limit::LoginClientAddress, format!("{client}:{address}")));
            checks.push((Limit::LoginAddress, address.clone()));
        }
        (Flow::Emailing, Some(address)) => checks.push((Limit::EmailAddress, address.clone())),
        _ => {}
    }
    let limiter = &ctx.data_unchecked::<AppState>().limiter;
    for (limit, key) in checks {
        let verdict = limiter.check(limit, &key, 1).await;
        if !verdict.allowed {
            return Err(ApiError::RateLimited {
                message: "too many attempts; try again later".into(),
                retry_after: verdict.retry_after,
            });
        }
    }
    Ok(())
}

/// Weighs each authenticated operation by its cost against the caller's
/// budget, refuses it whole when the budget is spent, and reports the cost
/// in `extensions.cost`.
pub struct CallerBudget;

impl ExtensionFactory for CallerBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostKeeper::default())
    }
}

#[derive(Default)]
struct CostKeeper {
    cost: Mutex<Option<usize>>,
}

#[async_trait::async_trait]
impl Extension for CostKeeper {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        if let Some(cost) = *self.cost.lock().expect("cost") {
            response
                .extensions
                .insert("cost".into(), async_graphql::Value::from(cost as u64));
        }
        response
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        *self.cost.lock().expect("cost") = Some(result.complexity);
        let (Ok(state), Ok(budget)) = (ctx.data::<AppState>(), ctx.data::<Arc<RequestBudget>>())
        else {
            return Ok(result);
        };
        // Anonymous operations spend a budget per client address.
        let (key, own) = match ctx
            .data_opt::<Caller>()
            .map(|caller| (caller, &caller.principal))
        {
            Some((caller, Principal::ApiKey { id, rate_limit, .. })) => {
                (format!("{}:key:{id}", caller.tenant_id), *rate_limit)
            }
            // Per user, not per session: signing in again brings no new budget.
            Some((caller, Principal::User { id, .. })) => {
                (format!("{}:user:{id}", caller.tenant_id), None)
            }
            None => (format!("anonymous:{}", client_key(budget.client)), None),
        };
        let quota = own.map_or_else(
            || state.limiter.quota(Limit::Caller),
            |per_minute| Quota {
                burst: per_minute,
                period: std::time::Duration::from_secs(60),
            },
        );
        let cost = u32::try_from(result.complexity).unwrap_or(u32::MAX);
        let verdict = state
            .limiter
            .check_with(Limit::Caller, quota, &key, cost)
            .await;
        *budget.report.lock().expect("report") = Some(verdict);
        if verdict.allowed {
            return Ok(result);
        }
        let error = ServerError::new(
            format!(
                "this caller's budget of {} per {} s is spent; try again in {} s",
                verdict.quota.burst,
                verdict.quota.period.as_secs(),
                retry_after_seconds(verdict.retry_after)
            ),
            None,
        );
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", "RATE_LIMITED");
        extensions.set("retryAfter", retry_after_seconds(verdict.retry_after));
        let mut error = error;
        error.extensions = Some(extensions);
        Err(vec![error])
    }
}
