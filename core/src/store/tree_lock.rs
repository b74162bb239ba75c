//! The per-tenant lock that keeps the stored paths of the customer tree
//! consistent. A move, a delete or a re-sort rewrites a whole subtree in one
//! statement; a customer created under it at the same moment would otherwise
//! keep its parent's old path. Creations share the lock; statements that
//! rewrite subtrees hold it alone. Only this tenant's tree waits.

use sqlx::PgConnection;

use crate::id::TenantId;

/// The advisory lock class for customer trees.
const TREE_LOCK_CLASS: i32 = 0x7472_6565; // "tree"

fn key(tenant_id: TenantId) -> i32 {
    (tenant_id.0 % i64::from(i32::MAX)) as i32
}

/// Held by statements that add to the tree, until the transaction ends.
pub async fn shared(conn: &mut PgConnection, tenant_id: TenantId) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
        .bind(TREE_LOCK_CLASS)
        .bind(key(tenant_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Held by statements that rewrite paths or sort keys of a subtree.
pub async fn exclusive(conn: &mut PgConnection, tenant_id: TenantId) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(TREE_LOCK_CLASS)
        .bind(key(tenant_id))
        .execute(conn)
        .await?;
    Ok(())
}
