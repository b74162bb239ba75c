//! Every SQL statement, one module per concept, shared by the API and the
//! worker. Each statement about a tenant's rows filters by tenant and none
//! joins across tenants; only the relay's, the worker's and retention's
//! statements on jobs, heartbeats and expired rows work across tenants.

pub mod api_keys;
pub mod audit;
pub mod customers;
pub mod entitlements;
pub mod idempotency;
pub mod jobs;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod tree_lock;
pub mod users;
pub mod webhooks;

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

/// A search term, matched case-insensitively anywhere in a name. The API
/// validates it (trimmed, long enough, no control characters) first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Search {
    term: String,
}

impl Search {
    pub fn new(term: impl Into<String>) -> Self {
        Self { term: term.into() }
    }

    pub fn term(&self) -> &str {
        &self.term
    }

    /// An ILIKE pattern matching the term anywhere, its wildcards escaped.
    pub fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.term.len() + 2);
        pattern.push('%');
        for c in self.term.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// A count that may have stopped early: `exact` is false when the list
/// holds at least `value` rows, and maybe more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub value: i64,
    pub exact: bool,
}

impl Count {
    pub fn exact(value: i64) -> Self {
        Self { value, exact: true }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PageInfoParts {
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

#[cfg(test)]
mod tests {
    use super::Search;

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(Search::new("50%_a\\").pattern(), "%50\\%\\_a\\\\%");
        assert_eq!(Search::new("Acme").pattern(), "%Acme%");
    }
}
