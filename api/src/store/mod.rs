//! Every SQL statement, grouped by the table it is about. Each query filters
//! by tenant; none joins across tenants.

pub mod api_keys;
pub mod customers;
pub mod entitlements;
pub mod jobs;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod tree_lock;
pub mod users;

use std::collections::HashMap;

/// A row loaded for one of several keys at once (see the DataLoaders).
#[derive(Debug, sqlx::FromRow)]
pub struct Grouped<T> {
    pub group_id: i64,
    #[sqlx(flatten)]
    pub row: T,
}

/// Splits grouped rows into lists per key, keeping their order.
pub fn by_group<T>(rows: Vec<Grouped<T>>) -> HashMap<i64, Vec<T>> {
    let mut map: HashMap<i64, Vec<T>> = HashMap::new();
    for Grouped { group_id, row } in rows {
        map.entry(group_id).or_default().push(row);
    }
    map
}
