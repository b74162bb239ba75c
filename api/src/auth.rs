//! Who is calling: `Authorization: Bearer <secret>` turned into a `Caller`.

use async_graphql::Enum;
use sqlx::PgPool;

use crate::store::{api_keys, sessions, users};
use canopy_core::secrets::{self, SecretKind};

/// What an API key may do. A tenant administrator holds every scope.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    CustomersRead,
    CustomersWrite,
    UsersRead,
    UsersWrite,
    JobsRead,
    JobsWrite,
    ApiKeysWrite,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::ApiKeysWrite,
    ];

    /// The stored name, the same as the GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CustomersRead => "CUSTOMERS_READ",
            Scope::CustomersWrite => "CUSTOMERS_WRITE",
            Scope::UsersRead => "USERS_READ",
            Scope::UsersWrite => "USERS_WRITE",
            Scope::JobsRead => "JOBS_READ",
            Scope::JobsWrite => "JOBS_WRITE",
            Scope::ApiKeysWrite => "API_KEYS_WRITE",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// An authenticated caller, always inside one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant_id: i64,
    pub principal: Principal,
}

#[derive(Clone, Debug)]
pub enum Principal {
    ApiKey {
        id: i64,
        scopes: Vec<Scope>,
    },
    /// A signed-in user. A tenant administrator holds every scope and
    /// reaches the whole tenant; a customer user reads and writes customers
    /// and users, but only within its reach.
    User {
        id: i64,
        session_id: i64,
        scopes: Vec<Scope>,
        reach: Reach,
    },
}

/// The part of a tenant a caller may see and change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// API keys (by scope) and tenant administrators.
    Tenant,
    /// A customer user: itself, its own customer, and the subtrees of the
    /// customers it administers.
    Customer(CustomerReach),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomerReach {
    pub user_id: i64,
    pub own_customer: Option<i64>,
    /// Paths of the customers it administers (their subtrees are in reach).
    pub administered: Vec<String>,
}

impl CustomerReach {
    /// Whether `path` lies in an administered subtree.
    pub fn manages_path(&self, path: &str) -> bool {
        self.administered.iter().any(|root| {
            path == root || (path.starts_with(root.as_str()) && path[root.len()..].starts_with('.'))
        })
    }
}

impl Caller {
    pub fn scopes(&self) -> &[Scope] {
        match &self.principal {
            Principal::ApiKey { scopes, .. } | Principal::User { scopes, .. } => scopes,
        }
    }

    pub fn reach(&self) -> &Reach {
        const TENANT: &Reach = &Reach::Tenant;
        match &self.principal {
            Principal::ApiKey { .. } => TENANT,
            Principal::User { reach, .. } => reach,
        }
    }

    /// The signed-in user, if the caller is one.
    pub fn user_id(&self) -> Option<i64> {
        match self.principal {
            Principal::User { id, .. } => Some(id),
            Principal::ApiKey { .. } => None,
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes().contains(&scope)
    }
}

/// Resolves the `Authorization` header. No header is an anonymous call; a
/// header that names no live credential is refused outright, so a caller
/// with a stale secret learns it at once.
pub async fn authenticate(
    pool: &PgPool,
    authorization: Option<&str>,
) -> Result<Option<Caller>, AuthError> {
    let Some(header) = authorization else {
        return Ok(None);
    };
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(AuthError::Invalid)?;
    let (kind, tenant_id) = secrets::parse(secret).ok_or(AuthError::Invalid)?;
    let hash = secrets::sha256(secret.as_bytes());
    match kind {
        SecretKind::ApiKey => {
            let key = api_keys::find_live_by_hash(pool, tenant_id, &hash)
                .await
                .map_err(AuthError::Database)?
                .filter(|key| secrets::hashes_match(&key.secret_hash, &hash))
                .ok_or(AuthError::Invalid)?;
            api_keys::touch(pool, &key)
                .await
                .map_err(AuthError::Database)?;
            Ok(Some(Caller {
                tenant_id,
                principal: Principal::ApiKey {
                    id: key.id,
                    scopes: key.scopes(),
                },
            }))
        }
        SecretKind::Session => {
            let session = sessions::find_live(pool, tenant_id, &hash)
                .await
                .map_err(AuthError::Database)?
                .ok_or(AuthError::Invalid)?;
            let (scopes, reach) = if session.user.role == "TENANT_ADMIN" {
                (Scope::ALL.to_vec(), Reach::Tenant)
            } else {
                let administered = users::administered_paths(pool, tenant_id, session.user.id)
                    .await
                    .map_err(AuthError::Database)?;
                let scopes = vec![
                    Scope::CustomersRead,
                    Scope::CustomersWrite,
                    Scope::UsersRead,
                    Scope::UsersWrite,
                ];
                let reach = Reach::Customer(CustomerReach {
                    user_id: session.user.id,
                    own_customer: session.user.customer_id,
                    administered,
                });
                (scopes, reach)
            };
            Ok(Some(Caller {
                tenant_id,
                principal: Principal::User {
                    id: session.user.id,
                    session_id: session.session_id,
                    scopes,
                    reach,
                },
            }))
        }
    }
}

#[derive(Debug)]
pub enum AuthError {
    Invalid,
    Database(sqlx::Error),
}
