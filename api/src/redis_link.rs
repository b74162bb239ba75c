//! The process's one multiplexed Redis connection for requests (rate
//! limits, credential epochs): made on first use, remade by
//! `ConnectionManager` when it drops.

use std::time::Duration;

use redis::RedisResult;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

/// How long a request waits for Redis before going on without it.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

pub struct RedisLink {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
}

impl RedisLink {
    pub fn new(client: redis::Client) -> Self {
        Self {
            client,
            conn: OnceCell::new(),
        }
    }

    pub async fn conn(&self) -> RedisResult<ConnectionManager> {
        self.conn
            .get_or_try_init(|| ConnectionManager::new(self.client.clone()))
            .await
            .cloned()
    }
}
