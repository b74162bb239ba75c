//! Who may do what: customer administrators within their subtree, plain
//! customer users for themselves, and nothing of another subtree, a
//! sibling's or another tenant's. Out of reach answers as absent.

use canopy_tests::{TestApp, TestDb, data_of};
use serde_json::{Value, json};

/// The titles (or, for users, the emails) of a list, sorted.
pub(crate) fn titles(list: &Value) -> Vec<String> {
    let mut titles: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["title"]
                .as_str()
                .or(n["email"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    titles.sort();
    titles
}

struct World {
    a: String,
    a1: String,
    a1a: String,
    a2: String,
    b: String,
    plain: String,
    deep: String,
    outsider: String,
    a1_admin: String,
    a2_admin: String,
    plain_session: String,
}

async fn world(app: &TestApp) -> World {
    let a = app.customer("A", None).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let a1a = app.customer("A1a", Some(&a1)).await;
    let a2 = app.customer("A2", Some(&a)).await;
    let b = app.customer("B", None).await;
    let (_, a1_admin) = app.member(&a1, "a1admin@acme.test").await;
    let (_, a2_admin) = app.member(&a2, "a2admin@acme.test").await;
    let (plain, plain_session) = app.member(&a1, "plain@acme.test").await;
    let (deep, _) = app.member(&a1a, "deep@acme.test").await;
    let (outsider, _) = app.member(&b, "outsider@acme.test").await;
    app.administer(&a1, "a1admin@acme.test").await;
    app.administer(&a2, "a2admin@acme.test").await;
    // Reach is read when a session is used, so existing sessions see it.
    World {
        a,
        a1,
        a1a,
        a2,
        b,
        plain,
        deep,
        outsider,
        a1_admin,
        a2_admin,
        plain_session,
    }
}

#[tokio::test]
async fn a_customer_administrator_reads_its_subtree_only() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let w = world(&app).await;
    let data = app
        .data_as(
            &w.a1_admin,
            "query($a: ID!, $a1: ID!, $a1a: ID!, $b: ID!, $a2: ID!, $outsider: ID!, $deep: ID!) {
               customers { totalCount nodes { title } }
               a: customer(id: $a) { id }
               b: customer(id: $b) { id }
               a2: node(id: $a2) { id }
               a1: customer(id: $a1) { parent { id } ancestors { id } innerCustomers { nodes { title } } descendantCount }
               a1a: customer(id: $a1a) { ancestors { title } }
               users { nodes { email } }
               outsider: user(id: $outsider) { id }
               deep: user(id: $deep) { email emailDeliveries { totalCount } }
               byEmail: userByEmail(email: \"admin@acme.test\") { id }
               byNumber: customerByNumber(number: \"C-000001\") { id }
             }",
            json!({ "a": w.a, "a1": w.a1, "a1a": w.a1a, "b": w.b, "a2": w.a2, "outsider": w.outsider, "deep": w.deep }),
        )
        .await;
    assert_eq!(titles(&data["customers"]["nodes"]), ["A1", "A1a"]);
    assert_eq!(data["customers"]["totalCount"], 2);
    for hidden in ["a", "b", "a2", "outsider", "byEmail", "byNumber"] {
        assert_eq!(data[hidden], Value::Null, "{hidden} is out of reach");
    }
    assert_eq!(
        data["a1"]["parent"],
        Value::Null,
        "its parent is out of reach"
    );
    assert_eq!(data["a1"]["ancestors"], json!([]));
    assert_eq!(titles(&data["a1"]["innerCustomers"]["nodes"]), ["A1a"]);
    assert_eq!(data["a1"]["descendantCount"], 1);
    assert_eq!(data["a1a"]["ancestors"], json!([{ "title": "A1" }]));
    assert_eq!(
        titles(&data["users"]["nodes"]),
        ["a1admin@acme.test", "deep@acme.test", "plain@acme.test"]
    );
    assert_eq!(data["deep"]["emailDeliveries"]["totalCount"], 0);

    // Nothing of the tenant's keys or jobs.
    for query in [
        "{ apiKeys { id } }",
        "mutation { createApiKey(name: \"x\", scopes: [CUSTOMERS_READ]) { secret } }",
    ] {
        let error = app.error_as(Some(&w.a1_admin), query, json!({})).await;
        assert_eq!(error.code, "FORBIDDEN", "{query}");
    }
}

#[tokio::test]
async fn a_customer_administrator_changes_its_subtree_only() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let w = world(&app).await;
    let key = Some(w.a1_admin.as_str());

    // Within reach.
    let data = app
        .data_as(
            &w.a1_admin,
            "mutation($p: ID!) { createCustomer(input: { title: \"A1b\", parentId: $p }) { customer { id depth } } }",
            json!({ "p": w.a1 }),
        )
        .await;
    let a1b = data["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.data_as(
        &w.a1_admin,
        "mutation($id: ID!, $p: ID!) { moveCustomer(id: $id, newParentId: $p) { customer { depth } } }",
        json!({ "id": w.a1a, "p": a1b }),
    )
    .await;
    app.data_as(
        &w.a1_admin,
        "mutation($id: ID!) { updateCustomer(id: $id, input: { info: \"managed\" }) { customer { info } } }",
        json!({ "id": w.a1 }),
    )
    .await;
    let data = app
        .data_as(
            &w.a1_admin,
            "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { status } } }",
            json!({ "id": w.deep }),
        )
        .await;
    assert_eq!(data["setUserStatus"]["user"]["status"], "SUSPENDED");

    let before = app.snapshot().await;
    let refusals = [
        // Out of reach: as if absent.
        (
            "mutation($id: ID!) { updateCustomer(id: $id, input: { info: \"x\" }) { customer { id } } }",
            json!({ "id": w.a2 }),
            "NOT_FOUND",
            None,
        ),
        (
            "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
            json!({ "id": w.b }),
            "NOT_FOUND",
            None,
        ),
        (
            "mutation($p: ID!) { createCustomer(input: { title: \"x\", parentId: $p }) { customer { id } } }",
            json!({ "p": w.a }),
            "BAD_USER_INPUT",
            Some("parentId"),
        ),
        (
            "mutation($id: ID!, $p: ID!) { moveCustomer(id: $id, newParentId: $p) { customer { id } } }",
            json!({ "id": a1b, "p": w.a2 }),
            "BAD_USER_INPUT",
            Some("newParentId"),
        ),
        (
            "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }",
            json!({ "id": w.outsider }),
            "NOT_FOUND",
            None,
        ),
        (
            "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }",
            json!({ "id": app.tenant.admin_user_id }),
            "NOT_FOUND",
            None,
        ),
        (
            "mutation($id: ID!) { deleteUser(id: $id) { deletedUserId } }",
            json!({ "id": w.outsider }),
            "NOT_FOUND",
            None,
        ),
        (
            "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"n@acme.test\", activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
            json!({ "c": w.b }),
            "BAD_USER_INPUT",
            Some("customerId"),
        ),
        (
            "mutation($c: ID!) { assignCustomerAdministrator(customerId: $c, email: \"outsider@acme.test\") { customer { id } } }",
            json!({ "c": w.a1 }),
            "BAD_USER_INPUT",
            Some("email"),
        ),
        (
            "mutation($c: ID!) { attachEntitlement(customerId: $c, kind: CLOUD_ACCOUNT, reference: \"x\") { id } }",
            json!({ "c": w.a2 }),
            "NOT_FOUND",
            None,
        ),
        // In sight but not theirs to restructure or create.
        (
            "mutation { createCustomer(input: { title: \"root\" }) { customer { id } } }",
            json!({}),
            "FORBIDDEN",
            None,
        ),
        (
            "mutation($id: ID!) { moveCustomer(id: $id) { customer { id } } }",
            json!({ "id": a1b }),
            "FORBIDDEN",
            None,
        ),
        (
            "mutation($id: ID!) { deleteCustomer(id: $id, cascade: true) { deletedCustomerIds } }",
            json!({ "id": w.a1 }),
            "FORBIDDEN",
            None,
        ),
        (
            "mutation { createUser(input: { role: TENANT_ADMIN, email: \"t@acme.test\", activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
            json!({}),
            "FORBIDDEN",
            None,
        ),
    ];
    for (query, variables, code, field) in refusals {
        let error = app.error_as(key, query, variables.clone()).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            (code, field),
            "{query} {variables}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_siblings_administrator_reaches_nothing_of_ours() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let w = world(&app).await;
    let data = app
        .data_as(
            &w.a2_admin,
            "query($a1: ID!, $plain: ID!) { customer(id: $a1) { id } user(id: $plain) { id } customers { nodes { title } } }",
            json!({ "a1": w.a1, "plain": w.plain }),
        )
        .await;
    assert_eq!(data["customer"], Value::Null);
    assert_eq!(data["user"], Value::Null);
    assert_eq!(titles(&data["customers"]["nodes"]), ["A2"]);
    let before = app.snapshot().await;
    for (query, id) in [
        (
            "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }",
            &w.plain,
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { firstName: \"x\" }) { user { id } } }",
            &w.plain,
        ),
        (
            "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
            &w.a1a,
        ),
    ] {
        let error = app
            .error_as(Some(&w.a2_admin), query, json!({ "id": id }))
            .await;
        assert_eq!(error.code, "NOT_FOUND", "{query}");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_plain_customer_user_reads_itself_and_its_customer_and_edits_its_name() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let w = world(&app).await;
    let session = w.plain_session.as_str();
    let data = app
        .data_as(
            session,
            "query($a1: ID!, $deep: ID!) {
               viewer { user { email customer { title } } }
               customers { nodes { title } }
               a1: customer(id: $a1) { title innerCustomers { totalCount } descendantCount users { nodes { email } } administrators { email } }
               deep: user(id: $deep) { id }
               users { nodes { email } }
             }",
            json!({ "a1": w.a1, "deep": w.deep }),
        )
        .await;
    assert_eq!(data["viewer"]["user"]["customer"]["title"], "A1");
    assert_eq!(titles(&data["customers"]["nodes"]), ["A1"]);
    assert_eq!(
        data["a1"]["innerCustomers"]["totalCount"], 0,
        "nothing below its own customer"
    );
    assert_eq!(data["a1"]["descendantCount"], 0);
    assert_eq!(data["a1"]["administrators"], json!([]));
    assert_eq!(titles(&data["a1"]["users"]["nodes"]), ["plain@acme.test"]);
    assert_eq!(data["deep"], Value::Null);
    assert_eq!(titles(&data["users"]["nodes"]), ["plain@acme.test"]);

    let data = app
        .data_as(
            session,
            "mutation($id: ID!) { updateUser(id: $id, input: { firstName: \"Pat\", phone: \"+1 555 0101\" }) { user { firstName phone } } }",
            json!({ "id": w.plain }),
        )
        .await;
    assert_eq!(data["updateUser"]["user"]["firstName"], "Pat");

    let before = app.snapshot().await;
    for (query, variables, code) in [
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { email: \"me@else.test\" }) { user { id } } }",
            json!({ "id": w.plain }),
            "FORBIDDEN",
        ),
        (
            "mutation($id: ID!) { setUserStatus(id: $id, status: ACTIVE) { user { id } } }",
            json!({ "id": w.plain }),
            "FORBIDDEN",
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { firstName: \"x\" }) { user { id } } }",
            json!({ "id": w.deep }),
            "NOT_FOUND",
        ),
        (
            "mutation($id: ID!) { updateCustomer(id: $id, input: { title: \"Mine\" }) { customer { id } } }",
            json!({ "id": w.a1 }),
            "FORBIDDEN",
        ),
        (
            "mutation($p: ID!) { createCustomer(input: { title: \"x\", parentId: $p }) { customer { id } } }",
            json!({ "p": w.a1 }),
            "FORBIDDEN",
        ),
        ("{ approvalRequests { totalCount } }", json!({}), "OK"),
    ] {
        let body = app.post(Some(session), query, variables.clone()).await;
        if code == "OK" {
            assert_eq!(data_of(body)["approvalRequests"]["totalCount"], 0);
        } else {
            assert_eq!(
                body["errors"][0]["extensions"]["code"], code,
                "{query}: {body}"
            );
        }
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_user_with_power_elsewhere_is_not_a_subtree_administrators_to_manage() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let w = world(&app).await;
    // deep (of A1a, in A1's subtree) also administers B, beyond A1's reach.
    app.administer(&w.b, "deep@acme.test").await;
    let before = app.snapshot().await;
    for query in [
        "mutation($id: ID!) { updateUser(id: $id, input: { email: \"mine@acme.test\" }) { user { id } } }",
        "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }",
        "mutation($id: ID!) { resendActivation(id: $id, method: DISPLAY_ACTIVATION_LINK) { activationLink } }",
        "mutation($id: ID!) { deleteUser(id: $id) { deletedUserId } }",
    ] {
        let error = app
            .error_as(Some(&w.a1_admin), query, json!({ "id": w.deep }))
            .await;
        assert_eq!(error.code, "FORBIDDEN", "{query}");
    }
    assert_eq!(app.snapshot().await, before);
    // The tenant administrator still manages it.
    app.data(
        "mutation($id: ID!) { updateUser(id: $id, input: { firstName: \"Dee\" }) { user { id } } }",
        json!({ "id": w.deep }),
    )
    .await;
}
