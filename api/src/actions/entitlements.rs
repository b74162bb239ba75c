use async_graphql::ID;
use sqlx::PgPool;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::graphql::types::EntitlementKind;
use crate::ids::{self, NodeKind};
use crate::validation::{self, MAX_REFERENCE_CHARS};
use canopy_core::authz::{self, Decision};
use canopy_core::store::entitlements::{self, EntitlementRow};
use canopy_core::store::{customers, tree_lock};

pub async fn attach(
    pool: &PgPool,
    caller: &Caller,
    customer_id: &ID,
    kind: EntitlementKind,
    reference: &str,
) -> ApiResult<EntitlementRow> {
    let tenant_id = caller.tenant_id;
    let customer_id = ids::expect(customer_id, NodeKind::Customer, "customerId")?;
    let reference = validation::required("reference", reference, MAX_REFERENCE_CHARS)?;
    let mut tx = pool.begin().await?;
    // A deletion holds the tree lock alone: what it counted stays true.
    tree_lock::shared(&mut tx, tenant_id).await?;
    let customer = customers::by_id(&mut tx, tenant_id, customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    guards::must_manage_customer(caller, &customer)?;
    let id = entitlements::attach(
        &mut tx,
        tenant_id,
        customer.id,
        &customer.number,
        kind.into(),
        &reference,
    )
    .await
    .map_err(|e| {
        ApiError::on_constraint(
            e,
            "entitlements_reference_key",
            "reference",
            "an entitlement of this kind with this reference already exists",
        )
    })?;
    let row = entitlements::by_id(&mut tx, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("entitlement"))?;
    tx.commit().await?;
    Ok(row)
}

pub async fn detach(pool: &PgPool, caller: &Caller, id: &ID) -> ApiResult<EntitlementRow> {
    let tenant_id = caller.tenant_id;
    let id = ids::expect(id, NodeKind::Entitlement, "id")?;
    let mut tx = pool.begin().await?;
    let current = entitlements::by_id(&mut tx, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("entitlement"))?;
    let holder = match current.customer_id {
        Some(customer_id) => customers::by_id(&mut tx, tenant_id, customer_id).await?,
        None => None,
    };
    // Held out of reach answers as a missing entitlement does.
    let decision = match &holder {
        Some(customer) => authz::change_customer(caller, customer.id, &customer.path),
        None if caller.limits().is_some() => Decision::Hidden,
        None => Decision::Allowed,
    };
    guards::enforce(decision, "entitlement")?;
    if current.customer_id.is_none() {
        return Err(ApiError::precondition(
            "the entitlement is already detached",
        ));
    }
    entitlements::detach(&mut tx, tenant_id, id).await?;
    let row = entitlements::by_id(&mut tx, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("entitlement"))?;
    tx.commit().await?;
    Ok(row)
}
