//! A Redis prefix of the test's own (`CANOPY_QUEUE`), so parallel tests
//! never share a queue; its keys are deleted when the test ends.

use canopy_worker::queue::APALIS_QUEUES;

/// The Redis the tests use unless told another: `REDIS_URL`, or the local one.
pub fn default_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A fresh queue prefix on one Redis; on drop, every key under it, and its
/// entry in apalis' list of queues (which is outside the prefix), are
/// deleted.
pub struct RedisNamespace {
    name: String,
    redis_url: String,
}

impl RedisNamespace {
    /// `{label}-<random>` on the tests' Redis.
    pub fn new(label: &str) -> Self {
        Self::on(&default_url(), label)
    }

    /// `{label}-<random>` on the Redis at `redis_url`.
    pub fn on(redis_url: &str, label: &str) -> Self {
        Self {
            name: format!("{label}-{}", crate::random_hex()),
            redis_url: redis_url.to_owned(),
        }
    }

    /// The prefix, as `CANOPY_QUEUE`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    fn delete(&self) -> redis::RedisResult<()> {
        let mut conn = redis::Client::open(self.redis_url.as_str())?.get_connection()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.name))
            .query(&mut conn)?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query::<()>(&mut conn)?;
        }
        redis::cmd("ZREM")
            .arg(APALIS_QUEUES)
            .arg(format!("{}:jobs:workers", self.name))
            .query::<()>(&mut conn)
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        // A Redis the test ran and stopped has nothing left to delete.
        let _ = self.delete();
    }
}
