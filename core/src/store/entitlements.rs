//! Entitlements held by customers: attached, detached (keeping the last
//! holder's number), and loaded per customer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::id::{CustomerId, TenantId};

crate::text_enum! {
    /// What an entitlement is; it decides what a customer's deletion does
    /// with it.
    pub enum EntitlementKind {
        /// Survives the customer's deletion, detached.
        AuthorizationCode = "AUTHORIZATION_CODE",
        /// Survives the customer's deletion, detached.
        ActivationKey = "ACTIVATION_KEY",
        /// Blocks the customer's deletion while attached.
        CloudAccount = "CLOUD_ACCOUNT",
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EntitlementRow {
    pub tenant_id: TenantId,
    pub id: i64,
    pub kind: EntitlementKind,
    pub reference: String,
    pub customer_id: Option<CustomerId>,
    /// The holder's current number while attached, else the last holder's.
    pub customer_number: Option<String>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT e.tenant_id, e.id, e.kind, e.reference, e.customer_id,
        coalesce(c.number, e.customer_number) AS customer_number, e.created_at
    FROM entitlements e
    LEFT JOIN customers c ON c.tenant_id = e.tenant_id AND c.id = e.customer_id";

pub async fn by_id(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: i64,
) -> sqlx::Result<Option<EntitlementRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE e.tenant_id = $1 AND e.id = $2"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The entitlements of each customer, oldest first.
pub async fn by_customers(
    pool: &PgPool,
    tenant_id: TenantId,
    customer_ids: &[CustomerId],
) -> sqlx::Result<HashMap<CustomerId, Vec<EntitlementRow>>> {
    let rows: Vec<EntitlementRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE e.tenant_id = $1 AND e.customer_id = ANY($2) ORDER BY e.created_at, e.id"
    ))
    .bind(tenant_id)
    .bind(customer_ids)
    .fetch_all(pool)
    .await?;
    let mut map: HashMap<CustomerId, Vec<EntitlementRow>> = HashMap::new();
    for row in rows {
        if let Some(customer_id) = row.customer_id {
            map.entry(customer_id).or_default().push(row);
        }
    }
    Ok(map)
}

/// Attaches a new entitlement; a reference already recorded for this kind
/// fails on `entitlements_reference_key`.
pub async fn attach(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    customer_id: CustomerId,
    customer_number: &str,
    kind: EntitlementKind,
    reference: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO entitlements (tenant_id, customer_id, customer_number, kind, reference)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(customer_number)
    .bind(kind)
    .bind(reference)
    .fetch_one(conn)
    .await
}

/// Detaches it, remembering the number of the customer that held it.
pub async fn detach(conn: &mut PgConnection, tenant_id: TenantId, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE entitlements e SET customer_id = NULL,
             customer_number = coalesce(
                 (SELECT c.number FROM customers c
                  WHERE c.tenant_id = e.tenant_id AND c.id = e.customer_id),
                 e.customer_number)
         WHERE e.tenant_id = $1 AND e.id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
