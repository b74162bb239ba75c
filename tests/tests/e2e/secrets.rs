//! Server secrets: links made under the development secret that earlier
//! versions built into the binary stop working on upgrade, and a rotated
//! secret keeps the links already in flight.

use std::borrow::Cow;

use canopy_core::config::Secret;
use canopy_core::secrets::{Keyring, sha256};
use canopy_tests::{TestApp, TestDb};
use serde_json::json;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The first migration that knows which secret made a link.
const SECRETS_MIGRATION: i64 = 20261127000001;

/// The secret earlier versions used when CANOPY_SECRET was unset: public,
/// so every link made with it could be forged.
const OLD_BUILT_IN_SECRET: &str = "canopy-development-secret-do-not-use-in-production";

async fn insert_token(pool: &PgPool, tenant: i64, user: i64, keyring: &Keyring) -> i64 {
    let id: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('user_tokens', 'id'))")
        .fetch_one(pool)
        .await
        .unwrap();
    let (token, _) = keyring.issue(canopy_core::id::TenantId(tenant), id, "ACTIVATION");
    sqlx::query(
        "INSERT INTO user_tokens (tenant_id, id, user_id, purpose, token_hash, expires_at)
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, 'ACTIVATION', $4, now() + interval '1 day')",
    )
    .bind(tenant)
    .bind(id)
    .bind(user)
    .bind(sha256(token.as_bytes()))
    .execute(pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn links_made_under_the_old_built_in_secret_are_revoked_on_upgrade() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    let all = &canopy_core::db::MIGRATOR;
    let earlier = Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version < SECRETS_MIGRATION)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    earlier.run(&pool).await.unwrap();
    let tenant: i64 = sqlx::query_scalar(
        "INSERT INTO tenants (name, portal_url) VALUES ('Old', 'https://old.test') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO users (tenant_id, email, role, status)
         VALUES ($1, 'admin@old.test', 'TENANT_ADMIN', 'PENDING_EMAIL_VALIDATION') RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&pool)
    .await
    .unwrap();
    let built_in = Keyring::new(Secret::new(OLD_BUILT_IN_SECRET), vec![]);
    let configured = Keyring::new(
        Secret::new("an operator's own secret, long enough to keep"),
        vec![],
    );
    let forgeable = insert_token(&pool, tenant, user, &built_in).await;
    let kept = insert_token(&pool, tenant, user, &configured).await;

    all.run(&pool).await.unwrap();

    let revoked: Vec<(i64, bool)> =
        sqlx::query_as("SELECT id, revoked_at IS NOT NULL FROM user_tokens ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(revoked, [(forgeable, true), (kept, false)]);
}

/// Starts `app`'s worker under `secret`, with `previous` as
/// CANOPY_SECRET_PREVIOUS.
fn start_worker_with(app: &mut TestApp, secret: &str, previous: Option<&str>) {
    let mut config = (*app.config).clone();
    config.secret = Some(Secret::new(secret));
    config.previous_secret = previous.map(Secret::new);
    app.start_worker_with(config);
}

async fn invite(app: &TestApp, email: &str) {
    let customer = app.customer("Globex", None).await;
    app.data(
        "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
        json!({ "input": { "customerId": customer, "email": email, "activation": "SEND_ACTIVATION_EMAIL" } }),
    )
    .await;
}

const NEXT_SECRET: &str = "the next canopy secret, 256 bits or more";

#[tokio::test]
async fn a_rotated_secret_still_sends_the_links_the_old_one_made() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut app = TestApp::spawn_with_mail_stopped(pool).await;
    invite(&app, "ann@globex.test").await;
    // The link was made under the test secret; the worker now runs under a
    // new one, keeping the old as previous.
    start_worker_with(&mut app, NEXT_SECRET, Some(canopy_tests::TEST_SECRET));
    let email = app
        .mail()
        .wait_for("ann@globex.test", "set up your account")
        .await;
    // The worker records the job after the SMTP server accepted it.
    app.jobs_settled().await;
    let data = app
        .data_as(
            &app.tenant.api_key,
            "{ jobQueue { jobs(first: 1) { nodes { state } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["jobQueue"]["jobs"]["nodes"][0]["state"], "DONE");
    let body = app
        .post(
            None,
            "mutation($t: String!) { activateAccount(token: $t, password: \"a long password\") { user { status } } }",
            json!({ "t": email.token() }),
        )
        .await;
    assert_eq!(
        canopy_tests::data_of(body)["activateAccount"]["user"]["status"],
        "ACTIVE"
    );
}

#[tokio::test]
async fn a_link_whose_secret_is_unknown_is_retried_not_sent_with_a_wrong_token() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut app = TestApp::spawn_with_mail_stopped(pool).await;
    invite(&app, "ann@globex.test").await;
    start_worker_with(&mut app, NEXT_SECRET, None);
    // Retried (another process may know the secret), never sent wrong; and
    // the secret stays unknown, so the retries go on after the test.
    app.expect_unfinished_jobs();
    let job = canopy_tests::eventually("the job to fail", async || {
        let data = app
            .data(
                "{ jobQueue { jobs(first: 1) { nodes { state lastError } } } }",
                json!({}),
            )
            .await;
        let job = data["jobQueue"]["jobs"]["nodes"][0].clone();
        if job["state"] == "FAILED" {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await;
    assert!(
        job["lastError"]
            .as_str()
            .unwrap()
            .contains("CANOPY_SECRET_PREVIOUS"),
        "{job}"
    );
    assert!(app.mail().messages_to("ann@globex.test").is_empty());
}
