//! Partners' own ids: customers and users take an `externalId`, unique per
//! tenant, to be found and upserted by.

use canopy_tests::{TestApp, TestDb, string_at};
use serde_json::{Value, json};

const UPSERT_CUSTOMER: &str = "mutation($x: String!, $input: CreateCustomerInput!) {
  upsertCustomer(externalId: $x, input: $input) { customer { id number title info externalId } } }";

const UPSERT_USER: &str = "mutation($x: String!, $input: CreateUserInput!) {
  upsertUser(externalId: $x, input: $input) { user { id email firstName externalId } activationLink } }";

async fn jobs(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn customers_are_found_by_their_external_id_which_is_unique_per_tenant() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let made = app
        .data(
            "mutation { createCustomer(input: { title: \"Northwind\", externalId: \" crm-1 \" }) {
               customer { id externalId } } }",
            json!({}),
        )
        .await;
    let id = string_at(&made, &["createCustomer", "customer", "id"]);
    assert_eq!(made["createCustomer"]["customer"]["externalId"], "crm-1");
    let found = app
        .data(
            "{ customerByExternalId(externalId: \"crm-1\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(found["customerByExternalId"]["id"], id);

    let taken = app
        .error(
            "mutation { createCustomer(input: { title: \"Other\", externalId: \"crm-1\" }) { customer { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (taken.code.as_str(), taken.field.as_deref()),
        ("CONFLICT", Some("externalId"))
    );
    let long = app
        .error(
            "mutation($x: String!) { createCustomer(input: { title: \"Other\", externalId: $x }) { customer { id } } }",
            json!({ "x": "x".repeat(256) }),
        )
        .await;
    assert_eq!(
        (long.code.as_str(), long.field.as_deref()),
        ("BAD_USER_INPUT", Some("externalId"))
    );

    // Another tenant may use the same id; it never finds ours.
    let other = app.create_tenant("Other").await;
    app.data_as(
        &other.api_key,
        "mutation { createCustomer(input: { title: \"Theirs\", externalId: \"crm-1\" }) { customer { id } } }",
        json!({}),
    )
    .await;
    let theirs = app
        .data_as(
            &other.api_key,
            "{ customerByExternalId(externalId: \"crm-1\") { id } }",
            json!({}),
        )
        .await;
    assert_ne!(theirs["customerByExternalId"]["id"], json!(id));

    // Cleared, it finds nothing.
    app.data(
        "mutation($id: ID!) { updateCustomer(id: $id, input: { externalId: null }) { customer { id } } }",
        json!({ "id": id }),
    )
    .await;
    let gone = app
        .data(
            "{ customerByExternalId(externalId: \"crm-1\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(gone["customerByExternalId"], Value::Null);
}

#[tokio::test]
async fn upserting_a_customer_creates_it_once_then_updates_what_is_given() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let root = app.customer("Root", None).await;
    let input = json!({ "title": "Contoso", "info": "first", "parentId": root });
    let first = app
        .data(UPSERT_CUSTOMER, json!({ "x": "erp-7", "input": input }))
        .await;
    let created = &first["upsertCustomer"]["customer"];
    assert_eq!(created["externalId"], "erp-7");

    let second = app
        .data(
            UPSERT_CUSTOMER,
            json!({ "x": "erp-7", "input": { "title": "Contoso Ltd", "parentId": root } }),
        )
        .await;
    let updated = &second["upsertCustomer"]["customer"];
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["number"], created["number"]);
    assert_eq!(updated["title"], "Contoso Ltd");
    assert_eq!(updated["info"], "first", "a field left out keeps its value");

    let moved = app
        .error(
            UPSERT_CUSTOMER,
            json!({ "x": "erp-7", "input": { "title": "Contoso" } }),
        )
        .await;
    assert_eq!(
        (moved.code.as_str(), moved.field.as_deref()),
        ("BAD_USER_INPUT", Some("input.parentId"))
    );
    let differs = app
        .error(
            UPSERT_CUSTOMER,
            json!({ "x": "erp-7", "input": { "title": "C", "parentId": root, "externalId": "erp-8" } }),
        )
        .await;
    assert_eq!(differs.field.as_deref(), Some("input.externalId"));
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE external_id = 'erp-7'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn upserting_a_user_invites_once_then_updates_and_only_managers_set_the_id() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    let input = json!({ "customerId": shop, "email": "lee@shop.test", "activation": "SEND_ACTIVATION_EMAIL" });
    let first = app
        .data(UPSERT_USER, json!({ "x": "hr-1", "input": input }))
        .await;
    let user = first["upsertUser"]["user"].clone();
    assert_eq!(user["externalId"], "hr-1");
    let after_create = jobs(&app).await;

    let mut again = input.clone();
    again["firstName"] = json!("Lee");
    let second = app
        .data(UPSERT_USER, json!({ "x": "hr-1", "input": again }))
        .await;
    assert_eq!(second["upsertUser"]["user"]["id"], user["id"]);
    assert_eq!(second["upsertUser"]["user"]["firstName"], "Lee");
    assert_eq!(jobs(&app).await, after_create, "no second invitation");
    let found = app
        .data(
            "{ userByExternalId(externalId: \"hr-1\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(found["userByExternalId"]["id"], user["id"]);

    let mut promoted = input.clone();
    promoted["role"] = json!("TENANT_ADMIN");
    promoted["customerId"] = Value::Null;
    let error = app
        .error(UPSERT_USER, json!({ "x": "hr-1", "input": promoted }))
        .await;
    assert_eq!(error.field.as_deref(), Some("input.customerId"));

    // A user names itself, but its externalId is set tenant-wide.
    let (me, session) = app.member(&shop, "sam@shop.test").await;
    let error = app
        .error_as(
            Some(&session),
            "mutation($id: ID!) { updateUser(id: $id, input: { externalId: \"mine\" }) { user { id } } }",
            json!({ "id": me }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let taken = app
        .error(
            "mutation($id: ID!) { updateUser(id: $id, input: { externalId: \"hr-1\" }) { user { id } } }",
            json!({ "id": me }),
        )
        .await;
    assert_eq!(
        (taken.code.as_str(), taken.field.as_deref()),
        ("CONFLICT", Some("externalId"))
    );
}

#[tokio::test]
async fn a_customer_administrator_finds_only_what_it_sees() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let mine = app.customer("Mine", None).await;
    let theirs = app.customer("Theirs", None).await;
    for (id, x) in [(&mine, "in"), (&theirs, "out")] {
        app.data(
            "mutation($id: ID!, $x: String!) { updateCustomer(id: $id, input: { externalId: $x }) { customer { id } } }",
            json!({ "id": id, "x": x }),
        )
        .await;
    }
    let (_, session) = app.member(&mine, "boss@mine.test").await;
    app.administer(&mine, "boss@mine.test").await;
    // Partners' ids are set by tenant-wide callers only.
    let inner = app.customer("Inner", Some(&mine)).await;
    let error = app
        .error_as(
            Some(&session),
            "mutation($id: ID!) { updateCustomer(id: $id, input: { externalId: \"crm-9\" }) { customer { id } } }",
            json!({ "id": inner }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let error = app
        .error_as(
            Some(&session),
            UPSERT_CUSTOMER,
            json!({ "x": "crm-9", "input": { "title": "Squat", "parentId": mine } }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let query = "query($x: String!) { customerByExternalId(externalId: $x) { id } }";
    let found = app.data_as(&session, query, json!({ "x": "in" })).await;
    assert_eq!(found["customerByExternalId"]["id"], json!(mine));
    let hidden = app.data_as(&session, query, json!({ "x": "out" })).await;
    assert_eq!(hidden["customerByExternalId"], Value::Null);
}
