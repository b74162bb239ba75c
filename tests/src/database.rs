//! A database of each test's own on the tests' Postgres server, dropped
//! when the test ends, whether it passed or panicked, so parallel tests
//! never share rows and a run leaves no database behind.
//!
//! The server is `CANOPY_TEST_POSTGRES` (default: the local server as the
//! `postgres` user); it reaches only the tests, never `canopy-api` or
//! `canopy-worker`, which keep their own `DATABASE_URL`.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// The Postgres server tests create their databases on, without a database.
pub fn server_url() -> String {
    std::env::var("CANOPY_TEST_POSTGRES")
        .unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Every test database's name starts with this, so a run that was killed
/// can be told from anything else on the server.
pub const PREFIX: &str = "canopy_test_";

/// A database named for one test; created by `TestDb::new`, or left for a
/// binary under test to create. Dropped on `Drop`.
pub struct TestDb {
    name: String,
    pool: Option<PgPool>,
}

impl TestDb {
    /// A new database with Canopy's migrations applied.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        canopy_core::db::MIGRATOR
            .run(&db.pool())
            .await
            .expect("migrate the test database");
        db
    }

    /// A new database with no tables, for tests that migrate it themselves.
    pub async fn empty() -> Self {
        let mut db = Self::named();
        let mut admin = admin().await;
        sqlx::query(&format!("CREATE DATABASE \"{}\"", db.name))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let options = PgConnectOptions::from_str(&db.url()).expect("test database URL");
        db.pool = Some(
            canopy_core::db::connect(options, 20)
                .await
                .expect("connect to the test database"),
        );
        db
    }

    /// A name only, for a binary that creates its database itself.
    pub fn named() -> Self {
        Self {
            name: format!("{PREFIX}{}", crate::random_hex()),
            pool: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL, as `DATABASE_URL` for a process under test.
    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// Whether the database is there (a binary under test may create it).
    pub async fn exists(&self) -> bool {
        let mut admin = admin().await;
        let exists =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&self.name)
                .fetch_one(&mut admin)
                .await
                .expect("look up the database");
        admin.close().await.ok();
        exists
    }

    pub fn pool(&self) -> PgPool {
        self.pool
            .clone()
            .expect("a database made by new() or empty()")
    }
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .expect("connect to the tests' Postgres server")
}

async fn drop_database(name: &str) -> sqlx::Result<()> {
    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url())).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be ending: a thread
        // with a runtime of its own drops the database (FORCE ends any
        // connection a server or worker under test still holds).
        let name = self.name.clone();
        let done = crate::background::run_apart(async move { drop_database(&name).await });
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {done:?}", self.name);
        }
    }
}
