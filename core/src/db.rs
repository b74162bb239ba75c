//! The Postgres pool: the database is created when missing and `migrations/`
//! applied at start, by whichever process comes up first.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects to `database_url`, creating the database if it does not exist,
/// and applies pending migrations.
pub async fn connect_and_migrate(database_url: &str) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .with_context(|| "DATABASE_URL is not a Postgres URL")?;
    create_database_if_missing(&options).await?;
    let pool = connect(options, 20)
        .await
        .context("cannot connect to Postgres")?;
    MIGRATOR
        .run(&pool)
        .await
        .context("cannot apply migrations")?;
    Ok(pool)
}

/// A pool of at most `max` connections to an existing database, with the
/// settings every Canopy pool has.
pub async fn connect(options: PgConnectOptions, max: u32) -> sqlx::Result<PgPool> {
    pool_options(max).connect_with(tuned(options)).await
}

/// A pool of its own to the same database, of at most `max` connections,
/// so that one part of a process (the embedded worker) cannot take the
/// connections another (the API) needs.
pub fn separate_pool(pool: &PgPool, max: u32) -> PgPool {
    pool_options(max).connect_lazy_with(tuned((*pool.connect_options()).clone()))
}

/// The API's pool to the same database: no statement runs, and no
/// transaction idles, longer than `limit` (a request's time), so a request
/// cut off by its timeout cannot keep working in Postgres.
pub fn bounded_pool(pool: &PgPool, max: u32, limit: Duration) -> PgPool {
    let ms = limit.as_millis().to_string();
    let options = (*pool.connect_options()).clone().options([
        ("statement_timeout", ms.as_str()),
        ("idle_in_transaction_session_timeout", ms.as_str()),
    ]);
    pool_options(max).connect_lazy_with(tuned(options))
}

/// Every pool's settings. A connection is not pinged before each use (a
/// round trip per checkout, a third of a small request's time): one that
/// broke fails its statement once and is replaced.
fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
}

/// Every connection's settings. No JIT: Canopy's statements are short, and
/// a row estimate that crosses the JIT threshold (a subtree count, say)
/// would spend milliseconds compiling what runs in microseconds.
fn tuned(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("jit", "off")])
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<()> {
    let name = options
        .get_database()
        .context("DATABASE_URL names no database")?
        .to_owned();
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .context("cannot connect to Postgres")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another process created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("cannot create the database"),
        }
    }
    admin.close().await?;
    Ok(())
}
