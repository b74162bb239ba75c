//! Who is calling: `Authorization: Bearer <secret>` turned into a `Caller`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::Utc;
use moka::sync::Cache;
use redis::AsyncCommands;
use sqlx::PgPool;

use canopy_core::config::Config;
use canopy_core::id::TenantId;
use canopy_core::secrets::{self, SecretKind};
use canopy_core::store::api_keys::{self, ApiKeyRow};
use canopy_core::store::{sessions, users};

use crate::redis_link::{REDIS_TIMEOUT, RedisLink};

pub use canopy_core::authz::{Caller, CustomerReach, Principal, Reach, Role, Scope, UserFacts};

/// API keys a process remembers at most, and for how long at most.
const MAX_KNOWN_KEYS: u64 = 10_000;
const KNOWN_KEY_LIFETIME: Duration = Duration::from_secs(60);

/// API keys recently authenticated, so that a busy integration is not
/// looked up in Postgres on every request.
///
/// Each tenant has a credentials epoch in Redis, a random value. A key is
/// remembered with the epoch read before it was loaded, and used only while
/// a request reads that same epoch. Revoking a key replaces the epoch after
/// the revocation commits and before the mutation answers, so from then on
/// every process loads the key again and finds it revoked. An epoch never
/// comes back: one lost with Redis's data is replaced by a new random one,
/// which matches nothing remembered. When Redis cannot be read, keys are
/// looked up every time.
pub struct Credentials {
    redis: Arc<RedisLink>,
    prefix: String,
    known: Cache<(TenantId, Vec<u8>), Known>,
}

#[derive(Clone)]
struct Known {
    key: ApiKeyRow,
    epoch: String,
}

/// The tenant's epoch, made (at random, by the caller) when missing.
static EPOCH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
return epoch
",
    )
});

fn new_epoch() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Credentials {
    pub fn new(config: &Config, redis: Arc<RedisLink>) -> Self {
        Self {
            redis,
            prefix: format!("{}:credentials", config.queue),
            known: Cache::builder()
                .max_capacity(MAX_KNOWN_KEYS)
                .time_to_live(KNOWN_KEY_LIFETIME)
                .build(),
        }
    }

    fn epoch_key(&self, tenant_id: TenantId) -> String {
        format!("{}:{}", self.prefix, tenant_id.0)
    }

    /// The tenant's epoch, or `None` when Redis does not answer in time.
    async fn epoch(&self, tenant_id: TenantId) -> Option<String> {
        let read = async {
            let mut conn = self.redis.conn().await?;
            EPOCH
                .key(self.epoch_key(tenant_id))
                .arg(new_epoch())
                .invoke_async::<String>(&mut conn)
                .await
        };
        match tokio::time::timeout(REDIS_TIMEOUT, read).await {
            Ok(Ok(epoch)) => Some(epoch),
            Ok(Err(error)) => {
                tracing::warn!(%error, "API keys are looked up in Postgres: Redis refused");
                None
            }
            Err(_) => {
                tracing::warn!("API keys are looked up in Postgres: Redis is slow");
                None
            }
        }
    }

    /// Ends what every process remembers of the tenant's keys. Called after
    /// a key stops working has committed, before the change is answered.
    pub async fn forget(&self, tenant_id: TenantId) -> redis::RedisResult<()> {
        let mut conn = self.redis.conn().await?;
        conn.set::<_, _, ()>(self.epoch_key(tenant_id), new_epoch())
            .await
    }

    /// The live key with this secret hash, remembered or loaded.
    async fn api_key(
        &self,
        pool: &PgPool,
        tenant_id: TenantId,
        hash: Vec<u8>,
    ) -> Result<ApiKeyRow, AuthError> {
        let epoch = self.epoch(tenant_id).await;
        let name = (tenant_id, hash);
        if let Some(epoch) = &epoch
            && let Some(known) = self.known.get(&name)
            && known.epoch == *epoch
            && known.key.expires_at.is_none_or(|at| at > Utc::now())
        {
            return Ok(known.key);
        }
        let (tenant_id, hash) = name;
        let key = api_keys::find_live_by_hash(pool, tenant_id, &hash)
            .await
            .map_err(AuthError::Database)?
            .filter(|key| secrets::hashes_match(&key.secret_hash, &hash))
            .ok_or(AuthError::Invalid)?;
        if let Some(epoch) = epoch {
            self.known.insert(
                (tenant_id, hash),
                Known {
                    key: key.clone(),
                    epoch,
                },
            );
        }
        Ok(key)
    }

    /// Records the key's use at most once a minute, and remembers it did.
    async fn touch(&self, pool: &PgPool, mut key: ApiKeyRow) -> Result<ApiKeyRow, AuthError> {
        if key.use_is_recorded() {
            return Ok(key);
        }
        api_keys::touch(pool, &key)
            .await
            .map_err(AuthError::Database)?;
        key.last_used_at = Some(Utc::now());
        let name = (key.tenant_id, key.secret_hash.clone());
        if let Some(mut known) = self.known.get(&name) {
            known.key.last_used_at = key.last_used_at;
            self.known.insert(name, known);
        }
        Ok(key)
    }
}

/// Resolves the `Authorization` header. No header is an anonymous call; a
/// header that names no live credential is refused outright, so a caller
/// with a stale secret learns it at once.
pub async fn authenticate(
    pool: &PgPool,
    credentials: &Credentials,
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
            let key = credentials.api_key(pool, tenant_id, hash).await?;
            let key = credentials.touch(pool, key).await?;
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
