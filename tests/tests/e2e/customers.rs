//! Creating, editing, listing and finding customers; administrators and
//! entitlements; and that a tenant sees nothing of another's.

use canopy_tests::{TestApp, TestDb, node_strings};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id number title info email phone country state city address address2 zip
               parentId depth createdAt updatedAt }
  }
}";

const UPDATE: &str = "mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) {
    customer { id number title info email phone city zip updatedAt }
  }
}";

const LIST: &str = "query($search: String, $rootsOnly: Boolean, $first: Int, $after: String) {
  customers(search: $search, rootsOnly: $rootsOnly, first: $first, after: $after) {
    totalCount
    edges { cursor node { title number } }
    nodes { title }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

#[tokio::test]
async fn create_stores_every_field_and_assigns_numbers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let input = json!({
        "title": "  Acme GmbH ", "info": "Primary contact: Ann\nBackup: Bob",
        "email": "office@acme.test", "phone": "+49 30 1234-56", "country": "DE",
        "state": "Berlin", "city": "Berlin", "address": "Main St 1", "address2": "Floor 2",
        "zip": "10115"
    });
    let data = app.data(CREATE, json!({ "input": input })).await;
    let customer = &data["createCustomer"]["customer"];
    assert_eq!(customer["title"], "Acme GmbH", "trimmed");
    assert_eq!(customer["number"], "C-000001");
    assert_eq!(customer["info"], "Primary contact: Ann\nBackup: Bob");
    for field in [
        "email", "phone", "country", "state", "city", "address", "address2", "zip",
    ] {
        assert_eq!(customer[field], input[field], "{field}");
    }
    assert_eq!(customer["parentId"], Value::Null);
    assert_eq!(customer["depth"], 0);

    // A number taken by hand is skipped by the sequence.
    let data = app
        .data(
            CREATE,
            json!({ "input": { "title": "Manual", "number": "C-000002" } }),
        )
        .await;
    assert_eq!(data["createCustomer"]["customer"]["number"], "C-000002");
    let data = app
        .data(CREATE, json!({ "input": { "title": "Next", "zip": "  " } }))
        .await;
    assert_eq!(data["createCustomer"]["customer"]["number"], "C-000003");
    assert_eq!(
        data["createCustomer"]["customer"]["zip"],
        Value::Null,
        "blank is absent"
    );

    // Each tenant numbers its own customers.
    let other = app.create_tenant("Other").await;
    let data = app
        .data_as(
            &other.api_key,
            CREATE,
            json!({ "input": { "title": "Theirs" } }),
        )
        .await;
    assert_eq!(data["createCustomer"]["customer"]["number"], "C-000001");
}

#[tokio::test]
async fn create_refuses_bad_input_and_changes_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let parent = app.customer("Parent", None).await;
    app.data(
        CREATE,
        json!({ "input": { "title": "Taken", "number": "N-1" } }),
    )
    .await;
    let gone = app.customer("Gone", None).await;
    app.data(
        "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
        json!({ "id": gone }),
    )
    .await;
    let before = app.snapshot().await;

    let cases = [
        (json!({ "title": "   " }), "BAD_USER_INPUT", "title"),
        (
            json!({ "title": "x".repeat(201) }),
            "BAD_USER_INPUT",
            "title",
        ),
        (
            json!({ "title": "tab\tin title" }),
            "BAD_USER_INPUT",
            "title",
        ),
        (
            json!({ "title": "Ok", "number": " " }),
            "BAD_USER_INPUT",
            "number",
        ),
        (
            json!({ "title": "Ok", "number": "n".repeat(65) }),
            "BAD_USER_INPUT",
            "number",
        ),
        (
            json!({ "title": "Ok", "number": "N-1" }),
            "CONFLICT",
            "number",
        ),
        (
            json!({ "title": "Ok", "email": "not-an-email" }),
            "BAD_USER_INPUT",
            "email",
        ),
        (
            json!({ "title": "Ok", "phone": "call me" }),
            "BAD_USER_INPUT",
            "phone",
        ),
        (
            json!({ "title": "Ok", "info": "i".repeat(4001) }),
            "BAD_USER_INPUT",
            "info",
        ),
        (
            json!({ "title": "Ok", "zip": "z".repeat(21) }),
            "BAD_USER_INPUT",
            "zip",
        ),
        (
            json!({ "title": "Ok", "city": "c".repeat(101) }),
            "BAD_USER_INPUT",
            "city",
        ),
        (
            json!({ "title": "Ok", "address": "a".repeat(201) }),
            "BAD_USER_INPUT",
            "address",
        ),
        (
            json!({ "title": "Ok", "parentId": "garbage" }),
            "BAD_USER_INPUT",
            "parentId",
        ),
        (
            json!({ "title": "Ok", "parentId": gone }),
            "BAD_USER_INPUT",
            "parentId",
        ),
    ];
    for (input, code, field) in cases {
        let error = app.error(CREATE, json!({ "input": input })).await;
        assert_eq!(error.code, code, "{input}: {error:?}");
        assert_eq!(error.field.as_deref(), Some(field), "{input}");
    }
    // The title may be exactly at the limit; that one succeeds.
    assert!(!parent.is_empty());
    assert_eq!(app.snapshot().await, before);
    app.data(
        CREATE,
        json!({ "input": { "title": "x".repeat(200), "parentId": parent } }),
    )
    .await;
}

#[tokio::test]
async fn update_changes_given_fields_clears_nulls_and_keeps_the_rest() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let data = app
        .data(
            CREATE,
            json!({ "input": { "title": "Acme", "city": "Berlin", "zip": "10115", "phone": "123" } }),
        )
        .await;
    let id = data["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created_at_update = data["createCustomer"]["customer"]["updatedAt"].clone();

    let data = app
        .data(
            UPDATE,
            json!({ "id": id, "input": { "title": "Acme Ltd", "number": "ACME", "zip": null, "info": "note" } }),
        )
        .await;
    let customer = &data["updateCustomer"]["customer"];
    assert_eq!(customer["title"], "Acme Ltd");
    assert_eq!(customer["number"], "ACME");
    assert_eq!(customer["zip"], Value::Null, "null clears");
    assert_eq!(customer["city"], "Berlin", "left out stays");
    assert_eq!(customer["phone"], "123");
    assert_eq!(customer["info"], "note");
    assert_ne!(customer["updatedAt"], created_at_update);

    let found = app
        .data(
            "query { customerByNumber(number: \"ACME\") { id title } }",
            json!({}),
        )
        .await;
    assert_eq!(found["customerByNumber"]["id"], id);
}

#[tokio::test]
async fn update_refuses_bad_input_and_changes_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let id = app.customer("Acme", None).await;
    app.data(
        CREATE,
        json!({ "input": { "title": "Other", "number": "TAKEN" } }),
    )
    .await;
    let before = app.snapshot().await;

    let cases = [
        (json!({ "title": null }), "BAD_USER_INPUT", Some("title")),
        (json!({ "title": "" }), "BAD_USER_INPUT", Some("title")),
        (json!({ "number": null }), "BAD_USER_INPUT", Some("number")),
        (json!({ "number": "TAKEN" }), "CONFLICT", Some("number")),
        (json!({ "email": "nope" }), "BAD_USER_INPUT", Some("email")),
        (
            json!({ "title": "t".repeat(201) }),
            "BAD_USER_INPUT",
            Some("title"),
        ),
    ];
    for (input, code, field) in cases {
        let error = app.error(UPDATE, json!({ "id": id, "input": input })).await;
        assert_eq!(error.code, code, "{input}: {error:?}");
        assert_eq!(error.field.as_deref(), field, "{input}");
    }
    let error = app
        .error(UPDATE, json!({ "id": "bad", "input": { "title": "x" } }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("id"))
    );
    let user_id = app.tenant.admin_user_id.clone();
    let error = app
        .error(UPDATE, json!({ "id": user_id, "input": { "title": "x" } }))
        .await;
    assert_eq!(
        error.code, "NOT_FOUND",
        "an id of another type names no customer"
    );
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn lists_search_and_page_with_cursors() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let root = app.customer("Globex", None).await;
    for title in ["Initech", "Umbrella Corp", "Acme Corp", "Hooli"] {
        app.customer(title, Some(&root)).await;
    }
    app.data(
        CREATE,
        json!({ "input": { "title": "Stark", "number": "X-CORP-7" } }),
    )
    .await;

    let data = app.data(LIST, json!({ "first": 2 })).await;
    let page = &data["customers"];
    assert_eq!(page["totalCount"], 6);
    assert_eq!(node_strings(page, "title"), ["Acme Corp", "Globex"]);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(page["edges"][1]["cursor"], page["pageInfo"]["endCursor"]);
    let data = app
        .data(
            LIST,
            json!({ "first": 3, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    let page = &data["customers"];
    assert_eq!(node_strings(page, "title"), ["Hooli", "Initech", "Stark"]);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
    let data = app
        .data(
            LIST,
            json!({ "first": 3, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(node_strings(&data["customers"], "title"), ["Umbrella Corp"]);
    assert_eq!(data["customers"]["pageInfo"]["hasNextPage"], false);

    // Search: case-insensitive, anywhere, on title or number; blank is all.
    let data = app.data(LIST, json!({ "search": "CORP" })).await;
    assert_eq!(
        node_strings(&data["customers"], "title"),
        ["Acme Corp", "Stark", "Umbrella Corp"]
    );
    assert_eq!(data["customers"]["totalCount"], 3);
    let data = app.data(LIST, json!({ "search": "ooL" })).await;
    assert_eq!(node_strings(&data["customers"], "title"), ["Hooli"]);
    let data = app.data(LIST, json!({ "search": "%_%" })).await;
    assert_eq!(data["customers"]["totalCount"], 0, "wildcards are literal");
    // Shorter than a trigram: refused, naming the minimum.
    for short in ["Co", " a "] {
        let error = app.error(LIST, json!({ "search": short })).await;
        assert_eq!(error.code, "BAD_USER_INPUT", "{short:?}");
        assert_eq!(error.field.as_deref(), Some("search"));
        assert!(error.message.contains("at least 3"), "{}", error.message);
    }
    let data = app.data(LIST, json!({ "search": "  " })).await;
    assert_eq!(data["customers"]["totalCount"], 6);
    let data = app.data(LIST, json!({ "rootsOnly": true })).await;
    assert_eq!(
        node_strings(&data["customers"], "title"),
        ["Globex", "Stark"]
    );
    let data = app.data(LIST, json!({ "first": 0 })).await;
    assert_eq!(data["customers"]["nodes"], json!([]));
    assert_eq!(data["customers"]["totalCount"], 6);

    // Inner customers search the same way.
    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) { innerCustomers(search: \"corp\") { totalCount nodes { title } } } }",
            json!({ "id": root }),
        )
        .await;
    assert_eq!(
        node_strings(&data["customer"]["innerCustomers"], "title"),
        ["Acme Corp", "Umbrella Corp"]
    );
    assert_eq!(data["customer"]["innerCustomers"]["totalCount"], 2);
}

#[tokio::test]
async fn page_sizes_cursors_and_search_length_are_bounded() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    app.customer("One", None).await;
    for (variables, field) in [
        (json!({ "first": 101 }), "first"),
        (json!({ "first": -1 }), "first"),
        (json!({ "after": "not-a-cursor" }), "after"),
        (json!({ "search": "s".repeat(201) }), "search"),
    ] {
        let error = app.error(LIST, variables.clone()).await;
        assert_eq!(error.code, "BAD_USER_INPUT", "{variables}");
        assert_eq!(error.field.as_deref(), Some(field), "{variables}");
    }
    let data = app.data(LIST, json!({ "first": 100 })).await;
    assert_eq!(data["customers"]["totalCount"], 1);
}

#[tokio::test]
async fn administrators_are_assigned_and_removed_by_email() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Acme", None).await;
    let assign = "mutation($id: ID!, $email: String!) {
        assignCustomerAdministrator(customerId: $id, email: $email) {
          customer { administrators { id email role status } } } }";
    let remove = "mutation($id: ID!, $email: String!) {
        removeCustomerAdministrator(customerId: $id, email: $email) {
          customer { administrators { email } } } }";

    // The tenant admin made by create-tenant, by address in any case.
    let data = app
        .data(
            assign,
            json!({ "id": customer, "email": "ADMIN@acme.test" }),
        )
        .await;
    let admins = &data["assignCustomerAdministrator"]["customer"]["administrators"];
    assert_eq!(admins[0]["id"], app.tenant.admin_user_id);
    assert_eq!(admins[0]["role"], "TENANT_ADMIN");
    assert_eq!(admins[0]["status"], "PENDING_EMAIL_VALIDATION");
    // Twice is harmless.
    let data = app
        .data(
            assign,
            json!({ "id": customer, "email": "admin@acme.test" }),
        )
        .await;
    assert_eq!(
        data["assignCustomerAdministrator"]["customer"]["administrators"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let data = app
        .data(
            "query($id: ID!) { user(id: $id) { administeredCustomers { title } } }",
            json!({ "id": app.tenant.admin_user_id }),
        )
        .await;
    assert_eq!(
        data["user"]["administeredCustomers"],
        json!([{ "title": "Acme" }])
    );

    let other = app.create_tenant("Other").await;
    let before = app.snapshot().await;
    for (query, email, code, field) in [
        (assign, "nobody@acme.test", "BAD_USER_INPUT", Some("email")),
        (assign, "not an email", "BAD_USER_INPUT", Some("email")),
        // A user of another tenant is not registered in this one.
        (assign, "admin@other.test", "BAD_USER_INPUT", Some("email")),
        (remove, "admin@other.test", "BAD_USER_INPUT", Some("email")),
    ] {
        let error = app
            .error(query, json!({ "id": customer, "email": email }))
            .await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            (code, field),
            "{email}"
        );
    }
    let error = app
        .error_as(
            Some(&other.api_key),
            assign,
            json!({ "id": customer, "email": "admin@other.test" }),
        )
        .await;
    assert_eq!(error.code, "NOT_FOUND");
    assert_eq!(app.snapshot().await, before);

    let data = app
        .data(
            remove,
            json!({ "id": customer, "email": "admin@acme.test" }),
        )
        .await;
    assert_eq!(
        data["removeCustomerAdministrator"]["customer"]["administrators"],
        json!([])
    );
    let error = app
        .error(
            remove,
            json!({ "id": customer, "email": "admin@acme.test" }),
        )
        .await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
}

#[tokio::test]
async fn entitlements_attach_and_detach() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Acme", None).await;
    let attach = "mutation($id: ID!, $kind: EntitlementKind!, $reference: String!) {
        attachEntitlement(customerId: $id, kind: $kind, reference: $reference) {
          id kind reference customerNumber customer { id } } }";
    let detach =
        "mutation($id: ID!) { detachEntitlement(id: $id) { id customer { id } customerNumber } }";

    let data = app
        .data(
            attach,
            json!({ "id": customer, "kind": "ACTIVATION_KEY", "reference": " KEY-1 " }),
        )
        .await;
    let entitlement = &data["attachEntitlement"];
    assert_eq!(entitlement["reference"], "KEY-1");
    assert_eq!(entitlement["customerNumber"], "C-000001");
    assert_eq!(entitlement["customer"]["id"], customer);
    let id = entitlement["id"].as_str().unwrap().to_owned();
    // The same reference under another kind is a different entitlement.
    app.data(
        attach,
        json!({ "id": customer, "kind": "CLOUD_ACCOUNT", "reference": "KEY-1" }),
    )
    .await;

    let before = app.snapshot().await;
    for (variables, code, field) in [
        (
            json!({ "id": customer, "kind": "ACTIVATION_KEY", "reference": "KEY-1" }),
            "CONFLICT",
            Some("reference"),
        ),
        (
            json!({ "id": customer, "kind": "ACTIVATION_KEY", "reference": "  " }),
            "BAD_USER_INPUT",
            Some("reference"),
        ),
        (
            json!({ "id": customer, "kind": "ACTIVATION_KEY", "reference": "r".repeat(201) }),
            "BAD_USER_INPUT",
            Some("reference"),
        ),
        (
            json!({ "id": "bad", "kind": "ACTIVATION_KEY", "reference": "K" }),
            "BAD_USER_INPUT",
            Some("customerId"),
        ),
        (
            json!({ "id": id, "kind": "ACTIVATION_KEY", "reference": "K" }),
            "NOT_FOUND",
            None,
        ),
    ] {
        let error = app.error(attach, variables.clone()).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            (code, field),
            "{variables}"
        );
    }
    let error = app
        .error(
            attach,
            json!({ "id": customer, "kind": "NO_SUCH_KIND", "reference": "K" }),
        )
        .await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    assert_eq!(app.snapshot().await, before);

    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) { entitlements { kind reference } } }",
            json!({ "id": customer }),
        )
        .await;
    assert_eq!(
        data["customer"]["entitlements"].as_array().unwrap().len(),
        2
    );

    let data = app.data(detach, json!({ "id": id })).await;
    assert_eq!(data["detachEntitlement"]["customer"], Value::Null);
    assert_eq!(data["detachEntitlement"]["customerNumber"], "C-000001");
    let error = app.error(detach, json!({ "id": id })).await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
    let error = app.error(detach, json!({ "id": customer })).await;
    assert_eq!(error.code, "NOT_FOUND");
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_customers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let ours = app.customer("Secret Customer", None).await;
    let user = app.insert_user("someone@acme.test", Some(&ours)).await;
    let other = app.create_tenant("Other").await;
    let key = other.api_key.as_str();

    let data = app
        .data_as(
            key,
            "query($id: ID!, $user: ID!) {
               customer(id: $id) { id }
               node(id: $id) { id }
               userNode: node(id: $user) { id }
               user(id: $user) { id }
               customerByNumber(number: \"C-000001\") { id }
               userByEmail(email: \"someone@acme.test\") { id }
               customers(search: \"secret\") { totalCount nodes { id } }
               users { totalCount }
             }",
            json!({ "id": ours, "user": user }),
        )
        .await;
    assert_eq!(data["customer"], Value::Null);
    assert_eq!(data["node"], Value::Null);
    assert_eq!(data["userNode"], Value::Null);
    assert_eq!(data["user"], Value::Null);
    assert_eq!(data["customerByNumber"], Value::Null);
    assert_eq!(data["userByEmail"], Value::Null);
    assert_eq!(data["customers"]["totalCount"], 0);
    assert_eq!(data["users"]["totalCount"], 1, "only its own admin");

    let before = app.snapshot().await;
    for mutation in [
        "mutation($id: ID!) { updateCustomer(id: $id, input: { title: \"Mine\" }) { customer { id } } }",
        "mutation($id: ID!) { deleteCustomer(id: $id, cascade: true) { deletedCustomerIds } }",
        "mutation($id: ID!) { moveCustomer(id: $id, newParentId: null) { customer { id } } }",
        "mutation($id: ID!) { attachEntitlement(customerId: $id, kind: ACTIVATION_KEY, reference: \"x\") { id } }",
    ] {
        let error = app
            .error_as(Some(key), mutation, json!({ "id": ours }))
            .await;
        assert_eq!(error.code, "NOT_FOUND", "{mutation}");
    }
    // Nor can it hang its customers below ours.
    let error = app
        .error_as(
            Some(key),
            "mutation($id: ID!) { createCustomer(input: { title: \"x\", parentId: $id }) { customer { id } } }",
            json!({ "id": ours }),
        )
        .await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn users_are_listed_filtered_and_searched() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let acme = app.customer("Acme", None).await;
    app.insert_user("zoe@acme.test", Some(&acme)).await;
    app.insert_user("Bob@acme.test", Some(&acme)).await;
    let query = "query($customer: ID, $search: String, $status: UserStatus, $first: Int) {
        users(customerId: $customer, search: $search, status: $status, first: $first) {
          totalCount nodes { email } pageInfo { hasNextPage } } }";
    let data = app.data(query, json!({})).await;
    assert_eq!(
        node_strings(&data["users"], "email"),
        ["admin@acme.test", "Bob@acme.test", "zoe@acme.test"]
    );
    let data = app
        .data(query, json!({ "customer": acme, "first": 1 }))
        .await;
    assert_eq!(node_strings(&data["users"], "email"), ["Bob@acme.test"]);
    assert_eq!(data["users"]["totalCount"], 2);
    assert_eq!(data["users"]["pageInfo"]["hasNextPage"], true);
    let data = app.data(query, json!({ "search": "BOB" })).await;
    assert_eq!(node_strings(&data["users"], "email"), ["Bob@acme.test"]);
    let data = app
        .data(query, json!({ "status": "PENDING_EMAIL_VALIDATION" }))
        .await;
    assert_eq!(node_strings(&data["users"], "email"), ["admin@acme.test"]);
    let data = app
        .data("query($id: ID!) { customer(id: $id) { users { totalCount nodes { email customer { title } } } } }", json!({ "id": acme }))
        .await;
    assert_eq!(data["customer"]["users"]["totalCount"], 2);
    assert_eq!(
        data["customer"]["users"]["nodes"][0]["customer"]["title"],
        "Acme"
    );
    let data = app
        .data(
            "{ userByEmail(email: \"ZOE@ACME.TEST\") { email emailVerified } }",
            json!({}),
        )
        .await;
    assert_eq!(data["userByEmail"]["email"], "zoe@acme.test");
    assert_eq!(data["userByEmail"]["emailVerified"], true);
}

/// A search of the whole tenant reads `customer_grams`, which follows every
/// rename, move and delete; past 1,000 matches it counts no further and
/// says so.
#[tokio::test]
async fn a_search_follows_renames_moves_and_deletes_and_caps_its_count() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    let list = "query($search: String, $after: String) {
        customers(search: $search, after: $after, first: 3) {
          totalCount totalCountIsExact nodes { title number } pageInfo { endCursor } } }";
    let titles = |data: &Value| node_strings(&data["customers"], "title");
    let globex = app.customer("Globex", None).await;
    let hooli = app.customer("Hooli", None).await;
    let initech = app.customer("Initech", Some(&globex)).await;

    let data = app.data(list, json!({ "search": "NITE" })).await;
    assert_eq!(titles(&data), ["Initech"]);
    assert_eq!(data["customers"]["totalCount"], 1);
    assert_eq!(data["customers"]["totalCountIsExact"], true);
    let number = data["customers"]["nodes"][0]["number"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let data = app.data(list, json!({ "search": number })).await;
    assert_eq!(titles(&data), ["Initech"], "numbers match in any case");

    app.data(
        "mutation($id: ID!) { updateCustomer(id: $id, input: { title: \"Umbrella\" }) { customer { id } } }",
        json!({ "id": initech }),
    )
    .await;
    let data = app.data(list, json!({ "search": "nitech" })).await;
    assert_eq!(data["customers"]["totalCount"], 0, "the old title is gone");
    let data = app.data(list, json!({ "search": "brell" })).await;
    assert_eq!(titles(&data), ["Umbrella"]);

    app.data(
        "mutation($id: ID!, $parent: ID) { moveCustomer(id: $id, newParentId: $parent) { customer { id } } }",
        json!({ "id": initech, "parent": hooli }),
    )
    .await;
    let data = app.data(list, json!({ "search": "brell" })).await;
    assert_eq!(titles(&data), ["Umbrella"], "a move keeps it findable");

    app.data(
        "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
        json!({ "id": initech }),
    )
    .await;
    let data = app.data(list, json!({ "search": "brell" })).await;
    assert_eq!(data["customers"]["totalCount"], 0, "a deleted one is gone");
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_grams g
         WHERE NOT EXISTS (SELECT FROM customers c
                           WHERE c.tenant_id = g.tenant_id AND c.sort_key = g.sort_key)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stale, 0, "no piece outlives its customer");

    // 1,001 more roots, written in one statement as an import would.
    sqlx::query(
        "WITH made AS (SELECT nextval(pg_get_serial_sequence('customers', 'id')) AS id, n
                       FROM generate_series(1, 1001) AS n)
         INSERT INTO customers (tenant_id, id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE
         SELECT t.id, m.id, m.id::text::ltree, 'bulk ' || m.n || chr(31) || 'B-' || m.n,
                'B-' || m.n, 'Bulk ' || m.n
         FROM made m, tenants t",
    )
    .execute(&pool)
    .await
    .unwrap();
    let data = app.data(list, json!({ "search": "bulk" })).await;
    assert_eq!(data["customers"]["totalCount"], 1000);
    assert_eq!(data["customers"]["totalCountIsExact"], false);
    assert_eq!(titles(&data), ["Bulk 1", "Bulk 10", "Bulk 100"]);
    let after = data["customers"]["pageInfo"]["endCursor"].clone();
    let data = app
        .data(list, json!({ "search": "bulk", "after": after }))
        .await;
    assert_eq!(titles(&data), ["Bulk 1000", "Bulk 1001", "Bulk 101"]);
    let data = app.data(list, json!({ "search": "ulk 99" })).await;
    assert_eq!(data["customers"]["totalCount"], 11);
    assert_eq!(data["customers"]["totalCountIsExact"], true);
    assert_eq!(titles(&data), ["Bulk 99", "Bulk 990", "Bulk 991"]);
    // Searching roots only, or a whole list, counts exactly.
    let data = app
        .data(
            "{ customers(search: \"bulk\", rootsOnly: true) { totalCount totalCountIsExact } }",
            json!({}),
        )
        .await;
    assert_eq!(data["customers"]["totalCount"], 1001);
    assert_eq!(data["customers"]["totalCountIsExact"], true);
}

/// A term whose pieces are each common but never together (the attack on
/// an inverted index: walk a whole posting list for nothing) walks a
/// bounded stretch of one piece, then finds the rest through the trigram
/// indexes, and still answers exactly.
#[tokio::test]
async fn a_term_of_common_pieces_that_never_meet_is_still_found() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    // 10,050 titles hold "abc", 10,050 hold "bcd", and one, sorting last,
    // holds "abcd".
    sqlx::query(
        "WITH made AS (SELECT nextval(pg_get_serial_sequence('customers', 'id')) AS id, n, t
                       FROM generate_series(1, 10050) AS n, (VALUES ('Abc'), ('Bcd')) AS v(t)
                       UNION ALL
                       SELECT nextval(pg_get_serial_sequence('customers', 'id')), 0, 'Zabcd')
         INSERT INTO customers (tenant_id, id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE
         SELECT t.id, m.id, m.id::text::ltree,
                lower(m.t || ' ' || m.n) || chr(31) || 'N-' || m.id, 'N-' || m.id, m.t || ' ' || m.n
         FROM made m, tenants t",
    )
    .execute(&pool)
    .await
    .unwrap();
    let data = app
        .data(
            "{ customers(search: \"abcd\", first: 5) { totalCount totalCountIsExact nodes { title } } }",
            json!({}),
        )
        .await;
    assert_eq!(node_strings(&data["customers"], "title"), ["Zabcd 0"]);
    assert_eq!(data["customers"]["totalCount"], 1);
    assert_eq!(data["customers"]["totalCountIsExact"], true);
    // A common term still pages in order, and stops counting.
    let data = app
        .data(
            "{ customers(search: \"BCD\", first: 2) { totalCount totalCountIsExact nodes { title } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        node_strings(&data["customers"], "title"),
        ["Bcd 1", "Bcd 10"]
    );
    assert_eq!(data["customers"]["totalCount"], 1000);
    assert_eq!(data["customers"]["totalCountIsExact"], false);
}
