//! A customer's place in its tenant's tree: the ids of the customers from
//! the root down to it, as Postgres keeps them in an ltree column
//! (`12.40.57`). Depth, ancestors and containment are read off the path, so
//! no rule needs a query to know what lies above or below a customer.

use std::fmt;

use crate::id::CustomerId;

/// Only `parse`, `root` and `child` make one, so every path is ids joined
/// by dots, whether it came from the database or from code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(String);

impl Path {
    /// The path of a root customer.
    pub fn root(id: CustomerId) -> Self {
        Path(id.to_string())
    }

    /// The path of a child of the customer at `self`.
    pub fn child(&self, id: CustomerId) -> Self {
        Path(format!("{}.{id}", self.0))
    }

    /// Reads a stored path; `None` unless it is ids joined by dots.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text
            .split('.')
            .all(|label| label.bytes().all(|b| b.is_ascii_digit()) && label.parse::<i64>().is_ok());
        valid.then(|| Path(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The customer the path leads to: its last label.
    pub fn id(&self) -> CustomerId {
        let last = self.0.rsplit('.').next().unwrap_or_default();
        CustomerId(last.parse().unwrap_or_default())
    }

    /// How many customers lie above: 0 for a root.
    pub fn depth(&self) -> i32 {
        self.0.matches('.').count() as i32
    }

    /// The customers above, from the root down.
    pub fn ancestors(&self) -> Vec<CustomerId> {
        let mut ids: Vec<CustomerId> = self.ids().collect();
        ids.pop();
        ids
    }

    /// The paths of the customers above, from the root down.
    pub fn ancestor_paths(&self) -> Vec<Path> {
        self.0
            .match_indices('.')
            .map(|(end, _)| Path(self.0[..end].to_owned()))
            .collect()
    }

    /// Whether `self` is `root` or lies below it, label by label (what
    /// Postgres's `<@` answers).
    pub fn within(&self, root: &Path) -> bool {
        self.0 == root.0 || (self.0.starts_with(&root.0) && self.0[root.0.len()..].starts_with('.'))
    }

    fn ids(&self) -> impl Iterator<Item = CustomerId> + '_ {
        self.0
            .split('.')
            .filter_map(|label| label.parse().ok().map(CustomerId))
    }
}

impl sqlx::Type<sqlx::Postgres> for Path {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Postgres> for Path {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Path {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Path::parse(text).ok_or_else(|| format!("{text:?} is not a customer path").into())
    }
}

impl sqlx::postgres::PgHasArrayType for Path {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn depth_ancestors_and_the_customer_itself() {
        let p = path("12.40.57");
        assert_eq!(p.depth(), 2);
        assert_eq!(p.id(), CustomerId(57));
        assert_eq!(p.ancestors(), vec![CustomerId(12), CustomerId(40)]);
        assert_eq!(p.ancestor_paths(), vec![path("12"), path("12.40")]);
        assert_eq!(
            Path::root(CustomerId(12)).child(CustomerId(40)),
            path("12.40")
        );
        assert_eq!(path("7").depth(), 0);
        assert!(path("7").ancestors().is_empty());
    }

    #[test]
    fn containment_goes_label_by_label() {
        assert!(path("1.2.3").within(&path("1.2")));
        assert!(path("1.2").within(&path("1.2")));
        // A shared prefix of digits is not a subtree.
        assert!(!path("1.23").within(&path("1.2")));
        assert!(!path("1.2").within(&path("1.2.3")));
    }

    #[test]
    fn only_ids_joined_by_dots_are_paths() {
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1..2",
            "a.b",
            "1.-2",
            "1.99999999999999999999",
        ] {
            assert_eq!(Path::parse(bad), None, "{bad:?}");
        }
    }
}
