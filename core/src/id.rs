//! Row ids as types of their own, so a user's id cannot be passed where a
//! customer's is expected, nor a tenant's where a user's is. They read and
//! write as the bigint they are in Postgres and the number they are in
//! JSON payloads.

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            sqlx::Type, serde::Serialize, serde::Deserialize,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant: one customer of Canopy, with its own tree and users.
    TenantId
);
id_type!(
    /// A customer in a tenant's tree.
    CustomerId
);
id_type!(
    /// A user of a tenant.
    UserId
);
id_type!(
    /// A job of the outbox.
    JobId
);

/// The global id the API shows for row `number` of a node type `name`
/// (`Customer`): `Customer:42` in URL-safe base64. Opaque to callers;
/// written here so the worker names objects as the API does.
pub fn global(name: &str, number: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{name}:{number}"))
}
