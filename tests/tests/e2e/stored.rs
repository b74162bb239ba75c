//! What the database holds and how Canopy talks to it: the names Rust
//! stores for its enums are exactly the names Postgres's CHECK constraints
//! accept (a name only one side knows would be refused on write or fail to
//! decode on read), and connections carry Canopy's settings.

use std::collections::BTreeSet;

use canopy_core::authz::{Role, Scope};
use canopy_core::jobs::{JobKind, JobState};
use canopy_core::lifecycle::UserStatus;
use canopy_core::store::entitlements::EntitlementKind;
use canopy_core::store::tokens::{ActivationMethod, Purpose};
use canopy_tests::TestDb;

/// The quoted names a CHECK constraint lists.
async fn names_in(pool: &sqlx::PgPool, constraint: &str) -> BTreeSet<String> {
    let definition: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
    )
    .bind(constraint)
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("no constraint {constraint}: {e}"));
    definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn names(all: impl IntoIterator<Item = &'static str>) -> BTreeSet<String> {
    all.into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn every_stored_enum_has_exactly_the_names_its_column_accepts() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let expected = [
        (
            "users_status_check",
            names(UserStatus::ALL.map(UserStatus::as_str)),
        ),
        ("users_role_check", names(Role::ALL.map(Role::as_str))),
        (
            "api_keys_scopes_check",
            names(Scope::ALL.map(Scope::as_str)),
        ),
        ("jobs_kind_check", names(JobKind::ALL.map(JobKind::as_str))),
        (
            "jobs_state_check",
            names(JobState::ALL.map(JobState::as_str)),
        ),
        (
            "user_tokens_purpose_check",
            names(Purpose::ALL.map(Purpose::as_str)),
        ),
        (
            "user_tokens_method_check",
            names(ActivationMethod::ALL.map(ActivationMethod::as_str)),
        ),
        (
            "entitlements_kind_check",
            names(EntitlementKind::ALL.map(EntitlementKind::as_str)),
        ),
    ];
    for (constraint, rust) in expected {
        assert_eq!(names_in(&pool, constraint).await, rust, "{constraint}");
    }
}

#[tokio::test]
async fn a_key_with_a_scope_no_one_knows_is_refused_by_the_database() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let tenant: i64 = sqlx::query_scalar(
        "INSERT INTO tenants (name, portal_url) VALUES ('T', 'https://t.test') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let refused = sqlx::query(
        "INSERT INTO api_keys (tenant_id, name, scopes, prefix, secret_hash)
         VALUES ($1, 'k', ARRAY['USERS_READ', 'EVERYTHING'], 'p', '\\x00')",
    )
    .bind(tenant)
    .execute(&pool)
    .await
    .unwrap_err();
    let constraint = refused
        .as_database_error()
        .and_then(|e| e.constraint())
        .map(str::to_owned);
    assert_eq!(constraint.as_deref(), Some("api_keys_scopes_check"));
}

#[tokio::test]
async fn connections_run_without_jit() {
    // Canopy's statements are short; compiling one costs more than it runs.
    let db = TestDb::new().await;
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&db.pool())
        .await
        .unwrap();
    assert_eq!(jit, "off");
}
