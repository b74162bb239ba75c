//! What /readyz of either process reports: whether Postgres and Redis
//! answer, each within a short timeout.

use std::time::Duration;

use sqlx::PgPool;

const TIMEOUT: Duration = Duration::from_secs(2);

pub struct Readiness {
    pub postgres: bool,
    pub redis: bool,
}

impl Readiness {
    pub async fn check(pool: &PgPool, redis: &redis::Client) -> Self {
        let postgres = tokio::time::timeout(TIMEOUT, sqlx::query("SELECT 1").execute(pool))
            .await
            .is_ok_and(|r| r.is_ok());
        let redis = tokio::time::timeout(TIMEOUT, async {
            let mut conn = redis.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .is_ok_and(|r| r.is_ok());
        Self { postgres, redis }
    }

    pub fn ready(&self) -> bool {
        self.postgres && self.redis
    }

    /// `{"postgres": "ok" | "unavailable", "redis": …}`
    pub fn report(&self) -> serde_json::Value {
        let word = |ok: bool| if ok { "ok" } else { "unavailable" };
        serde_json::json!({ "postgres": word(self.postgres), "redis": word(self.redis) })
    }
}
