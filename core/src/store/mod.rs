//! Every SQL statement, one module per concept, shared by the API and the
//! worker. Each statement about a tenant's rows filters by tenant and none
//! joins across tenants; only the relay's, the worker's and retention's
//! statements on jobs, heartbeats and expired rows work across tenants.

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
use std::hash::Hash;

/// A row loaded for one of several keys at once (see the DataLoaders).
#[derive(Debug, sqlx::FromRow)]
pub struct Grouped<K, T> {
    pub group_id: K,
    #[sqlx(flatten)]
    pub row: T,
}

/// Splits grouped rows into lists per key, keeping their order.
pub fn by_group<K: Eq + Hash, T>(rows: Vec<Grouped<K, T>>) -> HashMap<K, Vec<T>> {
    let mut map: HashMap<K, Vec<T>> = HashMap::new();
    for Grouped { group_id, row } in rows {
        map.entry(group_id).or_default().push(row);
    }
    map
}

/// A validated page request: how many rows, after which sort key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Page {
    pub first: i64,
    pub after: Option<String>,
}

impl Page {
    /// Rows to fetch: one more than the page, to learn whether more follow.
    pub fn limit(&self) -> i64 {
        self.first + 1
    }

    /// Cuts the extra row off and reports whether there was one.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> (Vec<T>, PageInfoParts) {
        let has_next_page = rows.len() as i64 > self.first;
        rows.truncate(self.first as usize);
        (
            rows,
            PageInfoParts {
                has_next_page,
                has_previous_page: self.after.is_some(),
            },
        )
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PageInfoParts {
    pub has_next_page: bool,
    pub has_previous_page: bool,
}
