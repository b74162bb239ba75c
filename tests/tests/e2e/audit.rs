//! The audit log: every change is recorded in its transaction with who,
//! what, when and from where; administrators read it, each within its
//! sight; old entries are pruned. (That every mutation of the schema
//! writes its entry is checked by the authorization matrix, which runs
//! them all.)

use canopy_tests::{TestApp, TestDb, string_at};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const LOG: &str = "query($filter: AuditLogFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    totalCount totalCountIsExact
    pageInfo { hasNextPage endCursor }
    nodes { at operation sessionId clientAddress requestId objectIds detail
            actor { user { id } apiKey { id } } customer { id } }
  }
}";

async fn log_as(app: &TestApp, bearer: &str, filter: Value) -> Value {
    app.data_as(bearer, LOG, json!({ "filter": filter })).await["auditLog"].clone()
}

fn operations(log: &Value) -> Vec<String> {
    log["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["operation"].as_str().unwrap().to_owned())
        .collect()
}

/// The id of the tenant's first key, as `viewer` names it.
async fn key_id(app: &TestApp) -> String {
    let data = app.data("{ viewer { apiKey { id } } }", json!({})).await;
    string_at(&data, &["viewer", "apiKey", "id"])
}

#[tokio::test]
async fn a_change_is_recorded_with_who_what_and_where_and_a_refused_one_not_at_all() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let body = app
        .post_with(
            Some(&key),
            "mutation { createCustomer(input: { title: \"Northwind\" }) { customer { id } } }",
            json!({}),
            Some("req-audit-1"),
        )
        .await;
    let customer = string_at(
        &canopy_tests::data_of(body),
        &["createCustomer", "customer", "id"],
    );

    let log = log_as(&app, &key, json!({ "operation": "createCustomer" })).await;
    assert_eq!(log["totalCount"], 1);
    let entry = &log["nodes"][0];
    assert_eq!(entry["actor"]["apiKey"]["id"], key_id(&app).await);
    assert_eq!(entry["actor"]["user"], Value::Null);
    assert_eq!(entry["sessionId"], Value::Null);
    assert_eq!(entry["objectIds"], json!([customer]));
    assert_eq!(entry["customer"]["id"], customer);
    assert_eq!(entry["clientAddress"], "127.0.0.1");
    // A request id is taken only from a trusted proxy: the entry has the
    // one the server made, which it also answered in X-Request-Id.
    assert!(entry["requestId"].as_str().is_some_and(|id| !id.is_empty()));

    // Refusals and bad input write nothing.
    let before = log_as(&app, &key, json!({})).await["totalCount"].clone();
    let error = app
        .error(
            "mutation { createCustomer(input: { title: \"\" }) { customer { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("title"))
    );
    let error = app
        .error(
            "mutation($id: ID!) { moveCustomer(id: $id, newParentId: $id) { customer { id } } }",
            json!({ "id": customer }),
        )
        .await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    assert_eq!(log_as(&app, &key, json!({})).await["totalCount"], before);
}

#[tokio::test]
async fn a_signed_in_user_is_recorded_with_the_session_it_acted_through() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let admin = app.activate_admin().await;
    app.data_as(
        &admin,
        "mutation { createCustomer(input: { title: \"By hand\" }) { customer { id } } }",
        json!({}),
    )
    .await;
    let me = app
        .data_as(
            &admin,
            "{ viewer { user { id sessions { id current } } } }",
            json!({}),
        )
        .await;
    let user = string_at(&me, &["viewer", "user", "id"]);
    let session = me["viewer"]["user"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .clone();

    let log = log_as(&app, &admin, json!({ "actorId": user })).await;
    // Newest first: the customer, then the activation that signed in.
    assert_eq!(operations(&log), ["createCustomer", "activateAccount"]);
    for entry in log["nodes"].as_array().unwrap() {
        assert_eq!(entry["actor"]["user"]["id"], user);
        assert_eq!(entry["sessionId"], session);
    }
    // The tenant's creation names no one: the command did it.
    let created = log_as(&app, &admin, json!({ "operation": "create-tenant" })).await;
    assert_eq!(
        created["nodes"][0]["actor"],
        json!({ "user": null, "apiKey": null })
    );
}

#[tokio::test]
async fn administrators_read_the_log_within_their_sight_and_no_one_else_reads_it() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let a = app.customer("A", None).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let b = app.customer("B", None).await;
    let (_, admin_a) = app.member(&a, "admin-a@acme.test").await;
    app.administer(&a, "admin-a@acme.test").await;
    let (_, plain) = app.member(&a1, "plain@acme.test").await;
    app.data(
        "mutation($b: ID!) { updateCustomer(id: $b, input: { info: \"elsewhere\" }) { customer { id } } }",
        json!({ "b": b }),
    )
    .await;
    app.data(
        "mutation($a1: ID!) { updateCustomer(id: $a1, input: { info: \"inside\" }) { customer { id } } }",
        json!({ "a1": a1 }),
    )
    .await;
    // A move of A1 out from under A (by the tenant) leaves what was written
    // while it was inside where it was.
    app.data(
        "mutation($a1: ID!) { moveCustomer(id: $a1, newParentId: null) { customer { id } } }",
        json!({ "a1": a1 }),
    )
    .await;

    let everything = log_as(&app, &app.tenant.api_key, json!({})).await;
    let mine = log_as(&app, &admin_a, json!({})).await;
    let customers_named = |log: &Value| -> Vec<Value> {
        log["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["objectIds"].clone())
            .collect()
    };
    assert!(customers_named(&everything).contains(&json!([b])));
    assert!(!customers_named(&mine).contains(&json!([b])), "{mine}");
    assert_eq!(
        operations(&mine),
        [
            "updateCustomer",
            "activateAccount",
            "createUser",
            "assignCustomerAdministrator",
            "activateAccount",
            "createUser",
            "createCustomer",
            "createCustomer",
        ],
        "{mine}"
    );
    assert!(
        mine["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["clientAddress"].is_null()),
        "a customer administrator reads no client addresses: {mine}"
    );
    assert_eq!(everything["nodes"][0]["operation"], "moveCustomer");
    assert_eq!(everything["nodes"][0]["clientAddress"], "127.0.0.1");

    // A user who administers nothing, and a key without every scope.
    let narrow = app
        .key_with(&["CUSTOMERS_READ", "USERS_READ", "JOBS_READ"])
        .await;
    for bearer in [&plain, &narrow] {
        let error = app.error_as(Some(bearer), LOG, json!({})).await;
        assert_eq!(error.code, "FORBIDDEN", "{error:?}");
    }
    assert_eq!(
        app.error_as(None, LOG, json!({})).await.code,
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn the_log_pages_newest_first_and_filters_refuse_bad_input() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(app.customer(&format!("C{n}"), None).await);
    }
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(
                LOG,
                json!({ "filter": { "operation": "createCustomer" }, "first": 2, "after": after }),
            )
            .await["auditLog"]
            .clone();
        for node in page["nodes"].as_array().unwrap() {
            seen.push(node["objectIds"][0].as_str().unwrap().to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    made.reverse();
    assert_eq!(seen, made);

    let by_object = log_as(&app, &key, json!({ "objectId": made[0] })).await;
    assert_eq!(operations(&by_object), ["createCustomer"]);
    let since = log_as(&app, &key, json!({ "since": "2999-01-01T00:00:00Z" })).await;
    assert_eq!(since["totalCount"], 0);

    for (filter, field) in [
        (json!({ "objectId": "nonsense" }), "filter.objectId"),
        (json!({ "actorId": made[0] }), "filter.actorId"),
        (json!({ "operation": "drop table;" }), "filter.operation"),
    ] {
        let error = app.error(LOG, json!({ "filter": filter })).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{filter}"
        );
    }
    let error = app.error(LOG, json!({ "first": 101 })).await;
    assert_eq!(error.field.as_deref(), Some("first"));
}

#[tokio::test]
async fn entries_older_than_the_retention_are_pruned_in_batches() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    for n in 0..3 {
        app.customer(&format!("Old {n}"), None).await;
    }
    sqlx::query("UPDATE audit_entries SET at = now() - interval '400 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    // Enough old entries for several batches of the pruner.
    sqlx::query(
        "INSERT INTO audit_entries (tenant_id, at, operation)
         SELECT 1, now() - interval '400 days', 'updateCustomer' FROM generate_series(1, 2500)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    app.customer("New", None).await;

    let pruned = canopy_worker::retention::prune_audit(
        &app.pool,
        std::time::Duration::from_secs(365 * 86_400),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(pruned, 2500 + 3 + 1); // and the tenant's creation
    let left = log_as(&app, &app.tenant.api_key, json!({})).await;
    assert_eq!(operations(&left), ["createCustomer"]);
}
