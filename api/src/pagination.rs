//! Relay cursor pagination: opaque cursors over a unique sort key, a default
//! page size and a maximum.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use canopy_core::store::{Page, PageInfoParts};

use canopy_core::store::Search;

use crate::error::{ApiError, ApiResult};

/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// The largest `first` accepted; more is refused, not silently cut.
pub const MAX_PAGE_SIZE: i32 = 100;

/// A page request from a connection's arguments: `first` within bounds and
/// `after` a cursor this API issued.
pub fn page(first: Option<i32>, after: Option<String>) -> ApiResult<Page> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("first must be between 0 and {MAX_PAGE_SIZE}"),
        ));
    }
    let after = after.map(|cursor| decode_cursor(&cursor)).transpose()?;
    Ok(Page {
        first: i64::from(first),
        after,
    })
}

/// The complexity of a connection field: its children cost once per row.
pub fn connection_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE) as usize;
    rows.saturating_mul(child_complexity).saturating_add(1)
}

/// What a search adds to a connection's cost: finding and counting the
/// matches reads many more rows than the page shows (up to
/// `SEARCH_COUNT_LIMIT` to count a tenant's customers, every match of a
/// users' search or within a reach).
pub const SEARCH_COST: usize = 500;

/// `connection_cost`, plus `SEARCH_COST` when the connection searches.
pub fn search_cost(first: Option<i32>, search: &Option<String>, child_complexity: usize) -> usize {
    let searching = search.as_deref().is_some_and(|s| !s.trim().is_empty());
    connection_cost(first, child_complexity).saturating_add(if searching { SEARCH_COST } else { 0 })
}

pub fn encode_cursor(sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k:{sort_key}"))
}

fn decode_cursor(cursor: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("k:").map(str::to_owned))
        .ok_or_else(|| ApiError::bad_input("after", "after is not a cursor from this API"))
}

/// A search term, validated; a blank term means no search. A term
/// shorter than `MIN_SEARCH_CHARS` is refused: it has no trigram to narrow
/// the match, so it would read every row.
pub fn search(search: Option<&str>) -> ApiResult<Option<Search>> {
    let Some(term) = search.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let term = crate::validation::required("search", term, crate::validation::MAX_SEARCH_CHARS)?;
    if term.chars().count() < crate::validation::MIN_SEARCH_CHARS {
        return Err(ApiError::bad_input(
            "search",
            format!(
                "search needs at least {} characters",
                crate::validation::MIN_SEARCH_CHARS
            ),
        ));
    }
    Ok(Some(Search::new(term)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_have_a_default_and_a_maximum() {
        assert_eq!(page(None, None).unwrap().first, 20);
        assert_eq!(page(Some(100), None).unwrap().first, 100);
        for bad in [-1, 101] {
            let error = page(Some(bad), None).unwrap_err();
            assert!(matches!(error, ApiError::BadInput { ref field, .. } if field == "first"));
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let request = page(Some(5), Some(encode_cursor("acme\u{1f}C-1"))).unwrap();
        assert_eq!(request.after.as_deref(), Some("acme\u{1f}C-1"));
        assert!(page(None, Some("garbage!".into())).is_err());
    }

    #[test]
    fn searches_are_trimmed_and_blank_is_none() {
        assert_eq!(search(Some("  ")).unwrap(), None);
        assert_eq!(search(Some(" acme ")).unwrap().unwrap().term(), "acme");
        let error = search(Some("ab")).unwrap_err();
        assert!(matches!(error, ApiError::BadInput { ref field, .. } if field == "search"));
    }
}
