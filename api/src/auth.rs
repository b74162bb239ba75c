//! Who is calling: `Authorization: Bearer <secret>` turned into a `Caller`.

use sqlx::PgPool;

use canopy_core::secrets::{self, SecretKind};
use canopy_core::store::{api_keys, sessions, users};

pub use canopy_core::authz::{Caller, CustomerReach, Principal, Reach, Role, Scope, UserFacts};

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
                    scopes: key.scopes.clone(),
                    rate_limit: key.rate_limit(),
                },
            }))
        }
        SecretKind::Session => {
            let session = sessions::find_live(pool, tenant_id, &hash)
                .await
                .map_err(AuthError::Database)?
                .ok_or(AuthError::Invalid)?;
            let administered = if session.user.role == Role::TenantAdmin {
                Vec::new()
            } else {
                users::administered_paths(pool, tenant_id, session.user.id)
                    .await
                    .map_err(AuthError::Database)?
            };
            let powers = session.user.facts(administered).powers();
            Ok(Some(Caller {
                tenant_id,
                principal: Principal::User {
                    id: session.user.id,
                    session_id: session.session_id,
                    powers,
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
