//! Signing in: activation links, login, logout, and sessions that stop.

use canopy_tests::{PASSWORD, TestApp, TestDb, error_of, global_id_number, link_token};
use serde_json::{Value, json};

const ACTIVATE: &str = "mutation($token: String!, $password: String!) {
  activateAccount(token: $token, password: $password) { token expiresAt user { id status emailVerified lastLoginAt } }
}";

const LOGIN: &str = "mutation($tenant: ID!, $email: String!, $password: String!) {
  login(tenantId: $tenant, email: $email, password: $password) { token expiresAt user { id email } }
}";

#[tokio::test]
async fn the_first_admin_activates_signs_in_and_out() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let token = link_token(&app.tenant.activation_link);

    // A password outside the policy is refused and the link still works.
    for bad in ["short", &"x".repeat(129)] {
        let error = app
            .error_as(None, ACTIVATE, json!({ "token": token, "password": bad }))
            .await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("password"))
        );
    }
    let body = app
        .post(
            None,
            ACTIVATE,
            json!({ "token": token, "password": PASSWORD }),
        )
        .await;
    let payload = canopy_tests::data_of(body)["activateAccount"].clone();
    assert_eq!(payload["user"]["id"], app.tenant.admin_user_id);
    assert_eq!(payload["user"]["status"], "ACTIVE");
    assert_eq!(payload["user"]["emailVerified"], true);
    assert!(payload["user"]["lastLoginAt"].is_string());
    let session = payload["token"].as_str().unwrap().to_owned();

    // The session is a tenant administrator's: every scope, the user itself.
    let data = app
        .data_as(
            &session,
            "{ viewer { scopes user { email role } apiKey { id } } customers { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["scopes"].as_array().unwrap().len(), 7);
    assert_eq!(data["viewer"]["user"]["email"], "admin@acme.test");
    assert_eq!(data["viewer"]["user"]["role"], "TENANT_ADMIN");
    assert_eq!(data["viewer"]["apiKey"], Value::Null);

    // The link works once.
    let error = error_of(app.try_activate(&token, PASSWORD).await);
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
    assert!(
        error.message.contains("already been used"),
        "{}",
        error.message
    );

    // Sign in again with the password; only a hash of it is stored.
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(global_id_number(&app.tenant.admin_user_id))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(PASSWORD));
    let data = canopy_tests::data_of(app.login("ADMIN@acme.test", PASSWORD).await);
    let second = data["login"]["token"].as_str().unwrap().to_owned();
    assert_ne!(second, session);

    // Logging out ends that session only.
    let data = app.data_as(&second, "mutation { logout }", json!({})).await;
    assert_eq!(data["logout"], true);
    assert_eq!(app.viewer_status(&second).await, 401);
    assert_eq!(app.viewer_status(&session).await, 200);
    // An API key has no session to end.
    assert_eq!(
        app.data("mutation { logout }", json!({})).await["logout"],
        false
    );
    let error = app.error_as(None, "mutation { logout }", json!({})).await;
    assert_eq!(error.code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn every_refused_login_looks_the_same() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    app.activate_admin().await;
    let customer = app.customer("Acme", None).await;
    // A suspended user with the right password.
    let suspended = app
        .insert_user("suspended@acme.test", Some(&customer))
        .await;
    sqlx::query("UPDATE users SET status = 'SUSPENDED', password_hash = (SELECT password_hash FROM users WHERE email = 'admin@acme.test') WHERE id = $1")
        .bind(global_id_number(&suspended))
        .execute(&app.pool)
        .await
        .unwrap();
    // A user still pending: it exists but may not sign in.
    app.insert_user("pending@acme.test", Some(&customer)).await;
    sqlx::query("UPDATE users SET status = 'PENDING_EMAIL_VALIDATION', password_hash = (SELECT password_hash FROM users WHERE email = 'admin@acme.test') WHERE email = 'pending@acme.test'")
        .execute(&app.pool)
        .await
        .unwrap();
    let other = app.create_tenant("Other");
    let other = other.await;

    let tenant = app.tenant.tenant_id.clone();
    let attempts = [
        json!({ "tenant": tenant, "email": "admin@acme.test", "password": "wrong password" }),
        json!({ "tenant": tenant, "email": "nobody@acme.test", "password": PASSWORD }),
        json!({ "tenant": tenant, "email": "pending@acme.test", "password": PASSWORD }),
        json!({ "tenant": tenant, "email": "suspended@acme.test", "password": PASSWORD }),
        json!({ "tenant": other.tenant_id, "email": "admin@acme.test", "password": PASSWORD }),
        json!({ "tenant": "not-a-tenant", "email": "admin@acme.test", "password": PASSWORD }),
        json!({ "tenant": tenant, "email": "admin@acme.test", "password": "x".repeat(500) }),
    ];
    let mut messages = Vec::new();
    for attempt in attempts {
        let error = app.error_as(None, LOGIN, attempt.clone()).await;
        assert_eq!(error.code, "UNAUTHENTICATED", "{attempt}");
        assert_eq!(error.field, None);
        messages.push(error.message);
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "one message for every refusal: {messages:?}"
    );
    assert!(!messages[0].contains("exist"));
}

#[tokio::test]
async fn a_suspended_user_is_signed_out_at_once() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let session = app.activate_admin().await;
    assert_eq!(app.viewer_status(&session).await, 200);
    sqlx::query("UPDATE users SET status = 'SUSPENDED' WHERE id = $1")
        .bind(global_id_number(&app.tenant.admin_user_id))
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.viewer_status(&session).await, 401);
    app.assert_login_refused("admin@acme.test", PASSWORD).await;
}

#[tokio::test]
async fn expired_replaced_and_forged_links_are_refused() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let first = link_token(&app.tenant.activation_link);
    let tenant = global_id_number(&app.tenant.tenant_id);
    let user = global_id_number(&app.tenant.admin_user_id);

    // A newer link replaces the older one.
    let mut conn = app.pool.acquire().await.unwrap();
    let newer = canopy_core::store::tokens::issue(
        &mut conn,
        &app.keyring,
        canopy_core::store::tokens::TokenRequest {
            tenant_id: canopy_core::id::TenantId(tenant),
            user_id: canopy_core::id::UserId(user),
            purpose: canopy_core::store::tokens::Purpose::Activation,
            ttl: chrono::Duration::hours(1),
            method: None,
            email: None,
        },
    )
    .await
    .unwrap();
    drop(conn);
    let before = app.snapshot().await;
    let error = error_of(app.try_activate(&first, PASSWORD).await);
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
    assert!(error.message.contains("replaced"), "{}", error.message);

    // Expired.
    sqlx::query(
        "UPDATE user_tokens SET expires_at = now() - interval '1 second' WHERE revoked_at IS NULL",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let before_expired = app.snapshot().await;
    let error = error_of(app.try_activate(&newer.token, PASSWORD).await);
    assert!(error.message.contains("expired"), "{}", error.message);

    // Forged: right shape, wrong secret; and garbage.
    for forged in [
        format!("{tenant}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "junk".to_owned(),
    ] {
        let error = error_of(app.try_activate(&forged, PASSWORD).await);
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("token"))
        );
    }
    assert_eq!(app.snapshot().await, before_expired);
    assert_ne!(before, before_expired, "only the expiry changed");
}
