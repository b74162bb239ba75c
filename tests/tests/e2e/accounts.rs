//! People are told about their accounts, sessions can be listed and ended,
//! API keys record their maker and may expire, and account data past its
//! use is purged.

use canopy_tests::{PASSWORD, TestApp, TestDb, data_of, eventually};
use serde_json::{Value, json};

const SESSIONS: &str =
    "query($id: ID!) { user(id: $id) { sessions { current createdAt expiresAt } } }";

const REVOKE: &str =
    "mutation($id: ID!, $keep: Boolean) { revokeSessions(userId: $id, keepCurrent: $keep) }";

/// A customer user of a new customer, activated; returns (id, session).
async fn active_user(app: &TestApp, email: &str) -> (String, String) {
    let customer = app.customer(&format!("{email} Inc"), None).await;
    app.member(&customer, email).await
}

/// A new session of `email`'s, signed in with the password.
async fn login(app: &TestApp, email: &str) -> String {
    data_of(app.login(email, PASSWORD).await)["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn signed_in(app: &TestApp, session: &str) -> bool {
    app.post(Some(session), "{ viewer { scopes } }", json!({}))
        .await
        .get("errors")
        .is_none()
}

#[tokio::test]
async fn a_user_lists_and_ends_its_sessions_and_managers_may_too() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let (id, first) = active_user(&app, "pat@globex.test").await;
    let second = login(&app, "pat@globex.test").await;
    let data = app.data_as(&second, SESSIONS, json!({ "id": id })).await;
    let sessions = data["user"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["current"], true, "newest first: {data}");
    assert_eq!(sessions[1]["current"], false);

    // The user ends the others and keeps its own.
    let data = app
        .data_as(&second, REVOKE, json!({ "id": id, "keep": true }))
        .await;
    assert_eq!(data["revokeSessions"], 1);
    assert!(!signed_in(&app, &first).await);
    assert!(signed_in(&app, &second).await);

    // Someone else in the tenant who may not manage the user sees none and
    // ends none.
    let (_, other) = active_user(&app, "lee@globex.test").await;
    let data = app.data_as(&other, SESSIONS, json!({ "id": id })).await;
    assert_eq!(data["user"], Value::Null, "out of reach");
    let narrow = app.key_with(&["USERS_READ", "USERS_WRITE"]).await;
    let before = app.snapshot().await;
    let error = app
        .error_as(Some(&other), REVOKE, json!({ "id": id }))
        .await;
    assert_eq!(error.code, "NOT_FOUND", "{error:?}");
    // A key that does not hold what the user holds may not either.
    let error = app
        .error_as(Some(&narrow), REVOKE, json!({ "id": id }))
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    // An id that is not one names the argument it came in.
    let error = app.error(REVOKE, json!({ "id": "not an id" })).await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    assert_eq!(error.field.as_deref(), Some("userId"));
    assert_eq!(app.snapshot().await, before);

    // The tenant's key lists them and ends them all.
    let data = app.data(SESSIONS, json!({ "id": id })).await;
    assert_eq!(data["user"]["sessions"][0]["current"], false);
    let data = app.data(REVOKE, json!({ "id": id })).await;
    assert_eq!(data["revokeSessions"], 1);
    assert!(!signed_in(&app, &second).await);
    let data = app.data(SESSIONS, json!({ "id": id })).await;
    assert_eq!(data["user"]["sessions"], json!([]));
}

#[tokio::test]
async fn a_changed_password_or_address_is_told_and_ends_sessions() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let (id, session) = active_user(&app, "kim@globex.test").await;

    // A new address: both addresses are told, and every session ends.
    app.data(
        "mutation($id: ID!) { updateUser(id: $id, input: { email: \"kim@new.test\" }) { user { id } } }",
        json!({ "id": id }),
    )
    .await;
    let confirm = app.mail().wait_for("kim@new.test", "confirm").await;
    data_of(
        app.post(
            None,
            "mutation($t: String!) { validateEmail(token: $t) { user { email } } }",
            json!({ "t": confirm.token() }),
        )
        .await,
    );
    assert!(!signed_in(&app, &session).await);
    let old = app.mail().wait_for("kim@globex.test", "was changed").await;
    assert!(
        old.text.contains("no longer uses this address"),
        "{}",
        old.text
    );
    assert!(old.text.contains("kim@new.test"), "{}", old.text);
    let new = app.mail().wait_for("kim@new.test", "was changed").await;
    assert!(new.text.contains("now uses this address"), "{}", new.text);

    // A reset password: told, and signed out everywhere.
    let session = login(&app, "kim@new.test").await;
    app.post(
        None,
        "mutation($t: ID!) { requestPasswordReset(tenantId: $t, email: \"kim@new.test\") }",
        json!({ "t": app.tenant.tenant_id }),
    )
    .await;
    let reset = app.mail().wait_for("kim@new.test", "reset").await;
    data_of(
        app.post(
            None,
            "mutation($t: String!) { resetPassword(token: $t, password: \"another long password\") }",
            json!({ "t": reset.token() }),
        )
        .await,
    );
    assert!(!signed_in(&app, &session).await);
    let told = app
        .mail()
        .wait_for("kim@new.test", "your password was changed")
        .await;
    assert!(told.text.contains("signed out"), "{}", told.text);
}

#[tokio::test]
async fn tenant_administrators_hear_of_new_administrators_and_keys() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let admin = app.activate_admin().await;

    // A key makes a new tenant administrator: the new one and the existing
    // one are told.
    app.data(
        "mutation { createUser(input: { role: TENANT_ADMIN, email: \"second@acme.test\",
           activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({}),
    )
    .await;
    let told = app
        .mail()
        .wait_for("admin@acme.test", "a tenant administrator was added")
        .await;
    assert!(told.text.contains("second@acme.test"), "{}", told.text);
    app.mail()
        .wait_for("second@acme.test", "you are now a tenant administrator")
        .await;

    // The administrator makes a key that expires; it records its maker,
    // and the administrators (but not the maker) hear of it.
    let data = app
        .data_as(
            &admin,
            "mutation($at: DateTime!) { createApiKey(name: \"Partner\", scopes: [CUSTOMERS_READ], expiresAt: $at) {
               secret apiKey { id expiresAt createdByUser { email } createdByKey { id } } } }",
            json!({ "at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339() }),
        )
        .await;
    let key = &data["createApiKey"]["apiKey"];
    assert_eq!(key["createdByUser"]["email"], "admin@acme.test");
    assert_eq!(key["createdByKey"], Value::Null);
    assert!(key["expiresAt"].is_string());
    let partner = data["createApiKey"]["secret"].as_str().unwrap().to_owned();
    // A key made by a key records that key.
    let data = app
        .data(
            "mutation { createApiKey(name: \"Child\", scopes: [JOBS_READ]) { apiKey { prefix createdByKey { name } createdByUser { email } } } }",
            json!({}),
        )
        .await;
    let child = data["createApiKey"]["apiKey"].clone();
    let child_prefix = child["prefix"].as_str().unwrap().to_owned();
    assert_eq!(child["createdByKey"], json!({ "name": "Initial key" }));
    assert_eq!(child["createdByUser"], Value::Null);
    app.jobs_settled().await;
    let about_keys: Vec<String> = app
        .mail()
        .messages_to("admin@acme.test")
        .into_iter()
        .map(|m| m.text)
        .filter(|text| text.contains("API key"))
        .collect();
    assert_eq!(
        about_keys.len(),
        1,
        "only the key it did not make: {about_keys:?}"
    );
    assert!(about_keys[0].contains(&child_prefix), "{about_keys:?}");
    assert!(
        !about_keys[0].contains("Child"),
        "no caller-chosen text in the email: {about_keys:?}"
    );

    data_of(
        app.post(Some(&partner), "{ viewer { scopes } }", json!({}))
            .await,
    );
    // Once expired, a key stops working, even in a process that
    // remembers it.
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let brief = app
        .data(
            "mutation($at: DateTime!) { createApiKey(name: \"Brief\", scopes: [CUSTOMERS_READ], expiresAt: $at) { secret } }",
            json!({ "at": at.to_rfc3339() }),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    data_of(
        app.post(Some(&brief), "{ viewer { scopes } }", json!({}))
            .await,
    );
    eventually("the brief key to expire", async || {
        let body = app
            .post(Some(&brief), "{ viewer { scopes } }", json!({}))
            .await;
        let code = body["errors"][0]["extensions"]["code"].clone();
        if code == "UNAUTHENTICATED" {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await;
    assert!(chrono::Utc::now() >= at, "refused only once expired");

    // An expiry in the past, or too far ahead, is refused with nothing made.
    let before = app.snapshot().await;
    for at in [
        chrono::Utc::now() - chrono::Duration::hours(1),
        chrono::Utc::now() + chrono::Duration::days(4000),
    ] {
        let error = app
            .error(
                "mutation($at: DateTime!) { createApiKey(name: \"x\", scopes: [JOBS_READ], expiresAt: $at) { secret } }",
                json!({ "at": at.to_rfc3339() }),
            )
            .await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("expiresAt"))
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_key_that_expires_makes_no_key_that_outlives_it() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let expiry = chrono::Utc::now() + chrono::Duration::days(1);
    let temporary = app
        .data(
            "mutation($at: DateTime!) { createApiKey(name: \"Temporary\", scopes: [API_KEYS_WRITE, JOBS_READ], expiresAt: $at) { secret } }",
            json!({ "at": expiry.to_rfc3339() }),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = "mutation($at: DateTime) { createApiKey(name: \"Child\", scopes: [JOBS_READ], expiresAt: $at) {
        apiKey { expiresAt createdByKey { name } } } }";
    // Later than its maker: refused, nothing made.
    let before = app.snapshot().await;
    let later = (expiry + chrono::Duration::days(1)).to_rfc3339();
    let error = app
        .error_as(Some(&temporary), create, json!({ "at": later }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("expiresAt"))
    );
    assert_eq!(app.snapshot().await, before);
    // None given: it expires with its maker.
    let data = app.data_as(&temporary, create, json!({})).await;
    let made = &data["createApiKey"]["apiKey"];
    let made_expiry: chrono::DateTime<chrono::Utc> =
        made["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!((made_expiry - expiry).num_seconds().abs() <= 1, "{made}");
    assert_eq!(made["createdByKey"]["name"], "Temporary");

    // A key that may not read keys does not learn who made it.
    let reader = app.key_with(&["JOBS_READ"]).await;
    let data = app
        .data_as(
            &reader,
            "{ viewer { apiKey { name createdByKey { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["viewer"]["apiKey"],
        json!({ "name": "test", "createdByKey": null })
    );
}

#[tokio::test]
async fn stale_sign_ups_sessions_and_links_are_purged() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let sign_up =
        "mutation($input: SignUpInput!) { signUp(input: $input) { user { id } customer { id } } }";
    let input = |email: &str, title: &str| {
        json!({ "input": { "tenantId": app.tenant.tenant_id, "customerTitle": title,
                           "email": email, "password": PASSWORD } })
    };
    let stale = data_of(
        app.post(None, sign_up, input("stale@x.test", "Stale"))
            .await,
    );
    let crowded = data_of(
        app.post(None, sign_up, input("crowded@x.test", "Crowded"))
            .await,
    );
    let fresh = data_of(
        app.post(None, sign_up, input("fresh@x.test", "Fresh"))
            .await,
    );
    // Someone joined the crowded sign-up's customer: it stays.
    let crowded_customer = crowded["signUp"]["customer"]["id"].as_str().unwrap();
    app.data(
        "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"joined@x.test\",
           activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
        json!({ "c": crowded_customer }),
    )
    .await;
    // An invited user, never activated, whose invitation expired long ago.
    let (_, session) = active_user(&app, "old@globex.test").await;
    let invited = app
        .data(
            "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"late@x.test\",
               activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
            json!({ "c": crowded_customer }),
        )
        .await["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // It asked for a password reset before activating: it has a password,
    // yet it is no sign-up.
    sqlx::query("UPDATE users SET password_hash = 'x' WHERE email = 'late@x.test'")
        .execute(&app.pool)
        .await
        .unwrap();
    // A stale sign-up whose customer was given an administrator: the user
    // goes, the customer stays.
    let watched = data_of(
        app.post(None, sign_up, input("watched@x.test", "Watched"))
            .await,
    );
    let watched_customer = watched["signUp"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.administer(&watched_customer, "old@globex.test").await;

    // Time passes for all but the fresh sign-up.
    let fresh_user =
        canopy_tests::global_id_number(fresh["signUp"]["user"]["id"].as_str().unwrap());
    sqlx::query("UPDATE users SET created_at = now() - interval '40 days' WHERE id <> $1")
        .bind(fresh_user)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE user_tokens SET expires_at = now() - interval '30 days' WHERE user_id <> $1",
    )
    .bind(fresh_user)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();

    let purged = canopy_core::purge::run(&app.pool).await.unwrap();
    assert_eq!(purged.sign_ups, 3, "{purged:?}");
    assert_eq!(purged.sessions, 1, "{purged:?}");
    assert!(!signed_in(&app, &session).await);

    let data = app
        .data(
            "query($s: ID!, $sc: ID!, $c: ID!, $cu: ID!, $f: ID!, $i: ID!, $w: ID!) {
               s: user(id: $s) { id } sc: customer(id: $sc) { id }
               c: customer(id: $c) { id } cu: user(id: $cu) { id }
               f: user(id: $f) { status } i: user(id: $i) { invitation { state } }
               w: customer(id: $w) { administrators { email } } }",
            json!({ "s": stale["signUp"]["user"]["id"], "sc": stale["signUp"]["customer"]["id"],
                    "c": crowded_customer, "cu": crowded["signUp"]["user"]["id"],
                    "f": fresh["signUp"]["user"]["id"], "i": invited, "w": watched_customer }),
        )
        .await;
    assert_eq!(data["s"], Value::Null, "the stale sign-up is gone");
    assert_eq!(data["sc"], Value::Null, "with its empty customer");
    assert_eq!(data["cu"], Value::Null, "the crowded sign-up is gone too");
    assert!(data["c"].is_object(), "but its customer has another user");
    assert_eq!(
        data["f"]["status"], "PENDING_EMAIL_VALIDATION",
        "fresh stays"
    );
    assert_eq!(
        data["i"]["invitation"]["state"], "EXPIRED",
        "an invited user stays, password or not, its invitation visible"
    );
    assert_eq!(
        data["w"]["administrators"],
        json!([{ "email": "old@globex.test" }]),
        "a sign-up's customer with an administrator stays"
    );
    // Only each user's latest invitation link is left of the expired ones.
    let links: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_tokens WHERE expires_at < now() - interval '7 days'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let invitations: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT user_id) FROM user_tokens
         WHERE purpose = 'ACTIVATION' AND expires_at < now() - interval '7 days'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(links, invitations);
    assert!(invitations >= 2);

    // The freed address signs up again.
    data_of(
        app.post(None, sign_up, input("stale@x.test", "Again"))
            .await,
    );
    assert_eq!(
        canopy_core::purge::run(&app.pool).await.unwrap(),
        canopy_core::purge::Purged::default(),
        "nothing left to purge"
    );
}
