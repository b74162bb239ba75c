//! Attaching entitlements to customers and detaching them.

use super::change::{Record, Writer};
use crate::access;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ids::NodeKind;
use crate::validation::{self, MAX_REFERENCE_CHARS};
use canopy_core::authz::{self, Decision};
use canopy_core::id::CustomerId;
use canopy_core::store::entitlements::{self, EntitlementKind, EntitlementRow};
use canopy_core::store::{customers, tree_lock};

pub async fn attach(
    db: &Writer<'_>,
    caller: &Caller,
    customer_id: CustomerId,
    kind: EntitlementKind,
    reference: &str,
) -> ApiResult<EntitlementRow> {
    let tenant_id = caller.tenant_id;
    let reference = validation::required("reference", reference, MAX_REFERENCE_CHARS)?;
    let mut tx = db.begin().await?;
    // A deletion holds the tree lock alone: what it counted stays true.
    tree_lock::shared(&mut tx, tenant_id).await?;
    let customer = customers::by_id(&mut tx, tenant_id, customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    access::must_manage_customer(caller, &customer)?;
    let id = entitlements::attach(
        &mut tx,
        tenant_id,
        customer.id,
        &customer.number,
        kind,
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
    tx.commit(
        Record::tenant(tenant_id)
            .customer(Some(&customer.path))
            .object(customer.id)
            .object_of(NodeKind::Entitlement, id),
    )
    .await?;
    Ok(row)
}

pub async fn detach(db: &Writer<'_>, caller: &Caller, id: i64) -> ApiResult<EntitlementRow> {
    let tenant_id = caller.tenant_id;
    let mut tx = db.begin().await?;
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
    access::enforce(decision, "entitlement")?;
    if current.customer_id.is_none() {
        return Err(ApiError::precondition(
            "the entitlement is already detached",
        ));
    }
    entitlements::detach(&mut tx, tenant_id, id).await?;
    let row = entitlements::by_id(&mut tx, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("entitlement"))?;
    let mut record = Record::tenant(tenant_id).object_of(NodeKind::Entitlement, id);
    if let Some(customer) = &holder {
        record = record.customer(Some(&customer.path)).object(customer.id);
    }
    tx.commit(record).await?;
    Ok(row)
}
