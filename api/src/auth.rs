//! Who is calling: `Authorization: Bearer <secret>` turned into a `Caller`.

use async_graphql::Enum;
use sqlx::PgPool;

use crate::store::{api_keys, sessions};
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
    /// A signed-in user. A tenant administrator holds every scope. Customer
    /// users hold none yet: what they may reach (their own customer, what
    /// they administer) is granted field by field, never by scope.
    User {
        id: i64,
        session_id: i64,
        scopes: Vec<Scope>,
    },
}

impl Caller {
    pub fn scopes(&self) -> &[Scope] {
        match &self.principal {
            Principal::ApiKey { scopes, .. } | Principal::User { scopes, .. } => scopes,
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
            let scopes = if session.user.role == "TENANT_ADMIN" {
                Scope::ALL.to_vec()
            } else {
                Vec::new()
            };
            Ok(Some(Caller {
                tenant_id,
                principal: Principal::User {
                    id: session.user.id,
                    session_id: session.session_id,
                    scopes,
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
