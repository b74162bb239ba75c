//! API keys: authentication, scopes on every guarded field, creation,
//! revocation and the throttled lastUsedAt.

use canopy_api::app::AppState;
use canopy_tests::{TestApp, TestDb, global_id_number};
use serde_json::{Value, json};

const CREATE_KEY: &str = "mutation($name: String!, $scopes: [Scope!]!) {
  createApiKey(name: $name, scopes: $scopes) {
    secret apiKey { id name scopes prefix createdAt lastUsedAt revokedAt }
  }
}";

#[tokio::test]
async fn callers_without_a_valid_key_are_unauthenticated() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let error = app
        .error_as(None, "{ customers { totalCount } }", json!({}))
        .await;
    assert_eq!(error.code, "UNAUTHENTICATED");
    let error = app.error_as(None, "{ viewer { scopes } }", json!({})).await;
    assert_eq!(error.code, "UNAUTHENTICATED");

    let forged = format!("{}x", &app.tenant.api_key[..app.tenant.api_key.len() - 1]);
    for secret in [
        "nonsense",
        forged.as_str(),
        "cnpk_999_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(secret)
            .json(&json!({ "query": "{ viewer { scopes } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{secret}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_created_key_works_once_shown_and_stops_when_revoked() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let data = app
        .data(
            CREATE_KEY,
            json!({ "name": " Partner ", "scopes": ["CUSTOMERS_READ", "CUSTOMERS_READ"] }),
        )
        .await;
    let created = &data["createApiKey"];
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key = &created["apiKey"];
    assert_eq!(key["name"], "Partner");
    assert_eq!(key["scopes"], json!(["CUSTOMERS_READ"]));
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(key["lastUsedAt"], Value::Null);
    let key_id = key["id"].as_str().unwrap().to_owned();

    // Only a hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE id = $1")
        .bind(global_id_number(&key_id))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, canopy_core::secrets::sha256(secret.as_bytes()));
    let leaked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys t WHERE t::text LIKE '%' || $1 || '%'")
            .bind(&secret[10..])
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(leaked, 0);

    let data = app
        .data_as(
            &secret,
            "{ viewer { scopes apiKey { id } tenant { name } user { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["scopes"], json!(["CUSTOMERS_READ"]));
    assert_eq!(data["viewer"]["apiKey"]["id"], key_id);
    assert_eq!(data["viewer"]["tenant"]["name"], "Acme");
    assert_eq!(data["viewer"]["user"], Value::Null);

    // The list shows it (no secret field exists to leak).
    let data = app
        .data("{ apiKeys { id name revokedAt lastUsedAt } }", json!({}))
        .await;
    let listed = data["apiKeys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], key_id, "newest first");
    assert!(listed[0]["lastUsedAt"].is_string(), "used once above");

    let data = app
        .data(
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
            json!({ "id": key_id }),
        )
        .await;
    let revoked_at = data["revokeApiKey"]["revokedAt"].clone();
    assert!(revoked_at.is_string());
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&secret)
        .json(&json!({ "query": "{ viewer { scopes } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Revoking again keeps the first time.
    let data = app
        .data(
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
            json!({ "id": key_id }),
        )
        .await;
    assert_eq!(data["revokeApiKey"]["revokedAt"], revoked_at);
}

#[tokio::test]
async fn create_and_revoke_refuse_bad_input() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let readonly = app.key_with(&["CUSTOMERS_READ", "API_KEYS_WRITE"]).await;
    let other = app.create_tenant("Other").await;
    let before = app.snapshot().await;

    for (variables, code, field) in [
        (
            json!({ "name": "  ", "scopes": ["CUSTOMERS_READ"] }),
            "BAD_USER_INPUT",
            Some("name"),
        ),
        (
            json!({ "name": "n".repeat(101), "scopes": ["CUSTOMERS_READ"] }),
            "BAD_USER_INPUT",
            Some("name"),
        ),
        (
            json!({ "name": "none", "scopes": [] }),
            "BAD_USER_INPUT",
            Some("scopes"),
        ),
        (
            json!({ "name": "bad", "scopes": ["ROOT"] }),
            "BAD_USER_INPUT",
            None,
        ),
    ] {
        let error = app.error(CREATE_KEY, variables.clone()).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            (code, field),
            "{variables}"
        );
    }
    // A key cannot grant a scope it does not hold.
    let error = app
        .error_as(
            Some(&readonly),
            CREATE_KEY,
            json!({ "name": "escalate", "scopes": ["CUSTOMERS_WRITE"] }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { id } }";
    let theirs: String = app
        .data_as(&other.api_key, "{ viewer { apiKey { id } } }", json!({}))
        .await["viewer"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = app.error(revoke, json!({ "id": theirs })).await;
    assert_eq!(error.code, "NOT_FOUND", "another tenant's key");
    // A narrow key cannot switch off a broader one.
    let own: String = app.data("{ viewer { apiKey { id } } }", json!({})).await["viewer"]["apiKey"]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = app
        .error_as(Some(&readonly), revoke, json!({ "id": own }))
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let error = app.error(revoke, json!({ "id": "junk" })).await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("id"))
    );
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn scopes_guard_every_field() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Acme", None).await;
    let read = app.key_with(&["CUSTOMERS_READ"]).await;
    let users_only = app.key_with(&["USERS_READ"]).await;
    let nothing_useful = app.key_with(&["JOBS_READ"]).await;
    let before = app.snapshot().await;

    let forbidden = [
        (
            &read,
            "mutation { createCustomer(input: { title: \"x\" }) { customer { id } } }",
        ),
        (
            &read,
            "mutation($id: ID!) { updateCustomer(id: $id, input: { title: \"x\" }) { customer { id } } }",
        ),
        (
            &read,
            "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
        ),
        (
            &read,
            "mutation($id: ID!) { moveCustomer(id: $id) { customer { id } } }",
        ),
        (
            &read,
            "mutation($id: ID!) { assignCustomerAdministrator(customerId: $id, email: \"admin@acme.test\") { customer { id } } }",
        ),
        (
            &read,
            "mutation($id: ID!) { attachEntitlement(customerId: $id, kind: ACTIVATION_KEY, reference: \"k\") { id } }",
        ),
        (
            &read,
            "mutation { createApiKey(name: \"k\", scopes: [CUSTOMERS_READ]) { secret } }",
        ),
        (&read, "{ apiKeys { id } }"),
        (
            &read,
            "query($id: ID!) { customer(id: $id) { administrators { email } } }",
        ),
        (
            &read,
            "query($id: ID!) { customer(id: $id) { users { totalCount } } }",
        ),
        (&read, "{ users { totalCount } }"),
        (&users_only, "{ customers { totalCount } }"),
        (&users_only, "query($id: ID!) { customer(id: $id) { id } }"),
        (&users_only, "query($id: ID!) { node(id: $id) { id } }"),
        (
            &nothing_useful,
            "{ customerByNumber(number: \"C-000001\") { id } }",
        ),
    ];
    for (key, query) in forbidden {
        let body = app.post(Some(key), query, json!({ "id": customer })).await;
        let code = &body["errors"][0]["extensions"]["code"];
        assert_eq!(code, "FORBIDDEN", "{query}: {body}");
    }
    assert_eq!(app.snapshot().await, before);

    // A write-only key gets its mutation's payload, but not the tree behind it.
    let write_only = app.key_with(&["CUSTOMERS_WRITE"]).await;
    for nested in [
        "parent { id }",
        "ancestors { id }",
        "descendants { totalCount }",
        "innerCustomers { totalCount }",
        "entitlements { id }",
        "descendantCount",
    ] {
        let query = format!(
            "mutation($id: ID!) {{ updateCustomer(id: $id, input: {{ info: \"x\" }}) {{ customer {{ title {nested} }} }} }}"
        );
        let body = app
            .post(Some(&write_only), &query, json!({ "id": customer }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{nested}: {body}"
        );
    }
    let body = app
        .post(
            Some(&write_only),
            "mutation($id: ID!) { assignCustomerAdministrator(customerId: $id, email: \"admin@acme.test\") { customer { id } } }",
            json!({ "id": customer }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "naming users needs USERS_READ"
    );

    // What the scope does allow works.
    let data = app
        .data_as(
            &read,
            "query($id: ID!) { customer(id: $id) { title } customers { totalCount } }",
            json!({ "id": customer }),
        )
        .await;
    assert_eq!(data["customer"]["title"], "Acme");
    let data = app
        .data_as(&users_only, "{ users { totalCount } }", json!({}))
        .await;
    assert_eq!(data["users"]["totalCount"], 1);
}

#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let secret = app.key_with(&["CUSTOMERS_READ"]).await;
    let stored = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_keys WHERE name = 'test' ORDER BY id LIMIT 1",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert_eq!(stored().await, None);
    app.data_as(&secret, "{ customers { totalCount } }", json!({}))
        .await;
    let first = stored().await.expect("recorded on first use");
    for _ in 0..5 {
        app.data_as(&secret, "{ customers { totalCount } }", json!({}))
            .await;
    }
    assert_eq!(
        stored().await,
        Some(first),
        "not rewritten within the minute"
    );

    // Once the last write is over a minute old, the next use records again
    // (the process reads the key afresh once another key's revocation
    // moved the tenant's credentials epoch).
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE name = 'test'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let other = app.key_with(&["USERS_READ"]).await;
    let other_id: i64 = sqlx::query_scalar("SELECT max(id) FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!other.is_empty());
    app.data(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": canopy_api::ids::encode(canopy_api::ids::NodeKind::ApiKey, other_id) }),
    )
    .await;
    app.data_as(&secret, "{ customers { totalCount } }", json!({}))
        .await;
    let later = stored().await.unwrap();
    assert!(later > first, "{later} > {first}");
}

/// Each api process remembers the keys it authenticated, for as long as
/// the tenant's credentials epoch in Redis stands: a revocation through
/// any process is refused by every other before the mutation answers.
#[tokio::test]
async fn a_revocation_reaches_every_api_process_before_it_answers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    let state = AppState::new(pool.clone(), app.config.clone())
        .await
        .unwrap();
    let other = canopy_tests::serve(state).await;
    let created = app
        .data(
            CREATE_KEY,
            json!({ "name": "partner", "scopes": ["CUSTOMERS_READ"] }),
        )
        .await;
    let secret = created["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_id = created["createApiKey"]["apiKey"]["id"].clone();
    assert_eq!(app.viewer_status_at(app.addr, &secret).await, 200);
    assert_eq!(app.viewer_status_at(other, &secret).await, 200);

    // Revoked behind the API's back, the key is still remembered: the
    // other process is serving it from memory, not from Postgres.
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1")
        .bind(global_id_number(key_id.as_str().unwrap()))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(app.viewer_status_at(other, &secret).await, 200);

    // Through the API, the revocation reaches the other process at once.
    app.data(
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({ "id": key_id }),
    )
    .await;
    assert_eq!(app.viewer_status_at(other, &secret).await, 401);
    assert_eq!(app.viewer_status_at(app.addr, &secret).await, 401);
    // The tenant's other keys are loaded again and still work.
    assert_eq!(app.viewer_status_at(other, &app.tenant.api_key).await, 200);
}

/// Without Redis, no process can know whether a remembered key was
/// revoked, so keys are looked up in Postgres on every request.
#[tokio::test]
async fn without_redis_keys_are_looked_up_every_time() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let closed = format!("redis://127.0.0.1:{}", canopy_tests::free_port());
    let app = TestApp::spawn_with_env(pool.clone(), &[("REDIS_URL", closed.as_str())]).await;
    let secret = app.key_with(&["CUSTOMERS_READ"]).await;
    let viewer = "{ viewer { scopes } }";
    assert!(app.post(Some(&secret), viewer, json!({})).await["data"].is_object());
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE name = 'test'")
        .execute(&pool)
        .await
        .unwrap();
    let body = app.post(Some(&secret), viewer, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}
