//! DataLoaders, built per request (a shared cache would serve one caller's
//! rows to another). Keys carry the tenant, so a loader can never return
//! another tenant's rows whatever asks it. Each `load` is one statement per
//! distinct set of arguments, however many objects asked.

use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::dataloader::{DataLoader, Loader};
use sqlx::PgPool;
use tracing::Instrument;

use crate::error::ApiError;
use crate::pagination::Page;
use canopy_core::id::{CustomerId, TenantId, UserId};
use canopy_core::store::Search;
use canopy_core::store::api_keys::{self, ApiKeyRow};
use canopy_core::store::audit::{self, EntryRow};
use canopy_core::store::customers::{self, CustomerRow};
use canopy_core::store::entitlements::{self, EntitlementRow};
use canopy_core::store::sessions::{self, SessionRow};
use canopy_core::store::tokens::{self, InvitationRow};
use canopy_core::store::users::{self, UserRow};

/// A row of one tenant: `(tenant_id, id)`.
pub type Key<I> = (TenantId, I);

pub struct Loaders {
    pub customers: DataLoader<CustomerLoader>,
    pub users: DataLoader<UserLoader>,
    pub children: DataLoader<ChildrenLoader>,
    pub child_counts: DataLoader<ChildCountLoader>,
    pub administrators: DataLoader<AdministratorsLoader>,
    pub administered: DataLoader<AdministeredLoader>,
    pub entitlements: DataLoader<EntitlementsLoader>,
    pub invitations: DataLoader<InvitationLoader>,
    pub sessions: DataLoader<SessionLoader>,
    pub api_keys: DataLoader<ApiKeyLoader>,
    pub last_acts: DataLoader<LastActLoader>,
}

impl Loaders {
    pub fn new(pool: &PgPool) -> Self {
        fn loader<T: Loader<K>, K>(loader: T) -> DataLoader<T>
        where
            K: Send + Sync + Hash + Eq + Clone + 'static,
        {
            // Batches run in their own task; keep the request's span on them.
            DataLoader::new(loader, |future| tokio::spawn(future.in_current_span()))
        }
        let pool = pool.clone();
        Self {
            customers: loader(CustomerLoader(pool.clone())),
            users: loader(UserLoader(pool.clone())),
            children: loader(ChildrenLoader(pool.clone())),
            child_counts: loader(ChildCountLoader(pool.clone())),
            administrators: loader(AdministratorsLoader(pool.clone())),
            administered: loader(AdministeredLoader(pool.clone())),
            entitlements: loader(EntitlementsLoader(pool.clone())),
            invitations: loader(InvitationLoader(pool.clone())),
            sessions: loader(SessionLoader(pool.clone())),
            api_keys: loader(ApiKeyLoader(pool.clone())),
            last_acts: loader(LastActLoader(pool)),
        }
    }
}

/// Groups keys by a batch criterion (at least the tenant), so that each
/// group is one statement.
fn batches<K, G: Hash + Eq>(keys: &[K], group: impl Fn(&K) -> G) -> HashMap<G, Vec<&K>> {
    let mut map: HashMap<G, Vec<&K>> = HashMap::new();
    for key in keys {
        map.entry(group(key)).or_default().push(key);
    }
    map
}

fn ids_by_tenant<I: Copy>(keys: &[Key<I>]) -> HashMap<TenantId, Vec<I>> {
    batches(keys, |(tenant, _)| *tenant)
        .into_iter()
        .map(|(tenant, keys)| (tenant, keys.into_iter().map(|(_, id)| *id).collect()))
        .collect()
}

/// Runs `load` once per tenant and keys the answers by `(tenant, id)`.
async fn per_tenant<I, V, F, Fut>(keys: &[Key<I>], load: F) -> Result<HashMap<Key<I>, V>, ApiError>
where
    I: Copy + Hash + Eq,
    F: Fn(TenantId, Vec<I>) -> Fut,
    Fut: Future<Output = sqlx::Result<HashMap<I, V>>>,
{
    let mut out = HashMap::new();
    for (tenant, ids) in ids_by_tenant(keys) {
        for (id, value) in load(tenant, ids).await? {
            out.insert((tenant, id), value);
        }
    }
    Ok(out)
}

pub struct CustomerLoader(PgPool);

impl Loader<Key<CustomerId>> for CustomerLoader {
    type Value = CustomerRow;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[Key<CustomerId>],
    ) -> Result<HashMap<Key<CustomerId>, CustomerRow>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            let rows = customers::by_ids(&self.0, tenant, &ids).await?;
            Ok(rows.into_iter().map(|row| (row.id, row)).collect())
        })
        .await
    }
}

pub struct UserLoader(PgPool);

impl Loader<Key<UserId>> for UserLoader {
    type Value = UserRow;
    type Error = ApiError;

    async fn load(&self, keys: &[Key<UserId>]) -> Result<HashMap<Key<UserId>, UserRow>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            let rows = users::by_ids(&self.0, tenant, &ids).await?;
            Ok(rows.into_iter().map(|row| (row.id, row)).collect())
        })
        .await
    }
}

/// A page of a parent's inner customers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildrenKey {
    pub tenant_id: TenantId,
    pub parent_id: CustomerId,
    pub search: Option<Search>,
    pub page: Page,
}

pub struct ChildrenLoader(PgPool);

impl Loader<ChildrenKey> for ChildrenLoader {
    type Value = Vec<CustomerRow>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[ChildrenKey],
    ) -> Result<HashMap<ChildrenKey, Vec<CustomerRow>>, ApiError> {
        let mut out = HashMap::new();
        for ((tenant, search, page), group) in
            batches(keys, |k| (k.tenant_id, k.search.clone(), k.page.clone()))
        {
            let parents: Vec<CustomerId> = group.iter().map(|k| k.parent_id).collect();
            let mut pages =
                customers::children_pages(&self.0, tenant, &parents, search.as_ref(), &page)
                    .await?;
            for key in group {
                let rows = pages.remove(&key.parent_id).unwrap_or_default();
                out.insert(key.clone(), rows);
            }
        }
        Ok(out)
    }
}

/// How many inner customers a parent has (matching a search).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildCountKey {
    pub tenant_id: TenantId,
    pub parent_id: CustomerId,
    pub search: Option<Search>,
}

pub struct ChildCountLoader(PgPool);

impl Loader<ChildCountKey> for ChildCountLoader {
    type Value = i64;
    type Error = ApiError;

    async fn load(&self, keys: &[ChildCountKey]) -> Result<HashMap<ChildCountKey, i64>, ApiError> {
        let mut out = HashMap::new();
        for ((tenant, search), group) in batches(keys, |k| (k.tenant_id, k.search.clone())) {
            let parents: Vec<CustomerId> = group.iter().map(|k| k.parent_id).collect();
            let counts =
                customers::child_counts(&self.0, tenant, &parents, search.as_ref()).await?;
            for key in group {
                out.insert(
                    key.clone(),
                    counts.get(&key.parent_id).copied().unwrap_or(0),
                );
            }
        }
        Ok(out)
    }
}

/// The administrators of a customer.
pub struct AdministratorsLoader(PgPool);

impl Loader<Key<CustomerId>> for AdministratorsLoader {
    type Value = Vec<UserRow>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[Key<CustomerId>],
    ) -> Result<HashMap<Key<CustomerId>, Vec<UserRow>>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            users::administrators(&self.0, tenant, &ids).await
        })
        .await
    }
}

/// The ids of the customers a user administers.
pub struct AdministeredLoader(PgPool);

impl Loader<Key<UserId>> for AdministeredLoader {
    type Value = Vec<CustomerId>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[Key<UserId>],
    ) -> Result<HashMap<Key<UserId>, Vec<CustomerId>>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            users::administered_customer_ids(&self.0, tenant, &ids).await
        })
        .await
    }
}

/// The entitlements a customer holds.
pub struct EntitlementsLoader(PgPool);

impl Loader<Key<CustomerId>> for EntitlementsLoader {
    type Value = Vec<EntitlementRow>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[Key<CustomerId>],
    ) -> Result<HashMap<Key<CustomerId>, Vec<EntitlementRow>>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            entitlements::by_customers(&self.0, tenant, &ids).await
        })
        .await
    }
}

/// The latest activation link of a user.
pub struct InvitationLoader(PgPool);

impl Loader<Key<UserId>> for InvitationLoader {
    type Value = InvitationRow;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[Key<UserId>],
    ) -> Result<HashMap<Key<UserId>, InvitationRow>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            tokens::latest_invitations(&self.0, tenant, &ids).await
        })
        .await
    }
}

/// The live sessions of a user.
pub struct SessionLoader(PgPool);

impl Loader<Key<UserId>> for SessionLoader {
    type Value = Vec<SessionRow>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[Key<UserId>],
    ) -> Result<HashMap<Key<UserId>, Vec<SessionRow>>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            sessions::live_for_users(&self.0, tenant, &ids).await
        })
        .await
    }
}

/// API keys by id (who made a key).
pub struct ApiKeyLoader(PgPool);

impl Loader<Key<i64>> for ApiKeyLoader {
    type Value = ApiKeyRow;
    type Error = ApiError;

    async fn load(&self, keys: &[Key<i64>]) -> Result<HashMap<Key<i64>, ApiKeyRow>, ApiError> {
        per_tenant(keys, |tenant, ids| async move {
            api_keys::by_ids(&self.0, tenant, &ids).await
        })
        .await
    }
}

/// The last act of some operations on an object: its audit entry, for
/// reading who did it (who created a key, who last cancelled or retried a
/// job).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LastAct {
    pub tenant_id: TenantId,
    pub operations: &'static [&'static str],
    /// The object, as the audit log names it (`Job:12`).
    pub object: String,
}

pub struct LastActLoader(PgPool);

impl Loader<LastAct> for LastActLoader {
    type Value = EntryRow;
    type Error = ApiError;

    async fn load(&self, keys: &[LastAct]) -> Result<HashMap<LastAct, EntryRow>, ApiError> {
        let mut out = HashMap::new();
        for ((tenant, operations), keys) in batches(keys, |k| (k.tenant_id, k.operations)) {
            let objects: Vec<String> = keys.iter().map(|k| k.object.clone()).collect();
            for (object, row) in
                audit::latest_for_objects(&self.0, tenant, operations, &objects).await?
            {
                let key = LastAct {
                    tenant_id: tenant,
                    operations,
                    object,
                };
                out.insert(key, row);
            }
        }
        Ok(out)
    }
}
