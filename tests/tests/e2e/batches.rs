//! Batches: per-item results with the single mutations' codes and fields,
//! each item alone unless atomic, a fixed number of statements for
//! createUsers whatever its size, and a cost by size.

use canopy_tests::{TestApp, TestDb, data_of, statements};
use serde_json::{Value, json};

const CREATE_USERS: &str = "mutation($inputs: [CreateUserInput!]!, $atomic: Boolean!) {
  createUsers(inputs: $inputs, atomic: $atomic) {
    succeeded failed
    results { index user { id email externalId } activationLink error { code field message } }
  } }";

fn invited(customer: &str, email: &str) -> Value {
    json!({ "customerId": customer, "email": email, "activation": "SEND_ACTIVATION_EMAIL" })
}

fn errors(payload: &Value) -> Vec<(i64, Value, Value)> {
    payload["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["error"].is_null())
        .map(|r| {
            (
                r["index"].as_i64().unwrap(),
                r["error"]["code"].clone(),
                r["error"]["field"].clone(),
            )
        })
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn a_batch_with_bad_items_creates_the_others_and_reports_each_bad_one() {
    let db = TestDb::new().await;
    let app = TestApp::spawn_with_mail(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    app.data(
        "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"taken@shop.test\",
           activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
        json!({ "c": shop }),
    )
    .await;
    let inputs = json!([
        invited(&shop, "one@shop.test"),
        invited(&shop, "not an address"),
        invited(&shop, "TAKEN@shop.test"),
        invited(&shop, "two@shop.test"),
        invited(&shop, "Two@shop.test"),
        { "email": "three@shop.test", "activation": "SEND_ACTIVATION_EMAIL" },
        invited("bm9uc2Vuc2U", "four@shop.test"),
        { "customerId": shop, "email": "five@shop.test", "activation": "DISPLAY_ACTIVATION_LINK",
          "externalId": "hr-5" },
    ]);
    let payload = app
        .data(CREATE_USERS, json!({ "inputs": inputs, "atomic": false }))
        .await["createUsers"]
        .clone();
    assert_eq!(
        errors(&payload),
        [
            (1, json!("BAD_USER_INPUT"), json!("email")),
            (2, json!("CONFLICT"), json!("email")),
            (4, json!("CONFLICT"), json!("email")),
            (5, json!("BAD_USER_INPUT"), json!("customerId")),
            (6, json!("BAD_USER_INPUT"), json!("customerId")),
        ]
    );
    assert_eq!(
        (payload["succeeded"].clone(), payload["failed"].clone()),
        (json!(3), json!(5))
    );
    let results = payload["results"].as_array().unwrap();
    assert_eq!(results[0]["user"]["email"], "one@shop.test");
    assert_eq!(results[3]["user"]["email"], "two@shop.test");
    assert_eq!(results[7]["user"]["externalId"], "hr-5");
    assert!(
        results[7]["activationLink"]
            .as_str()
            .unwrap()
            .contains("token=")
    );
    assert!(results[0]["activationLink"].is_null());

    // Their emails flow through the outbox like any other; the link shown
    // is a working one.
    app.mail()
        .wait_for("one@shop.test", "set up your account")
        .await;
    app.mail()
        .wait_for("two@shop.test", "set up your account")
        .await;
    let link = results[7]["activationLink"].as_str().unwrap();
    app.activate(&canopy_tests::link_token(link)).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE customer_id IS NOT NULL"
        )
        .await,
        4
    );
    // One audit entry per user made.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_entries WHERE operation = 'createUsers'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn an_atomic_batch_with_one_bad_item_creates_nothing() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    let before = app.snapshot().await;
    let inputs = json!([
        invited(&shop, "a@shop.test"),
        invited(&shop, "b@shop.test"),
        { "customerId": shop, "email": "c@shop.test", "activation": "SEND_ACTIVATION_EMAIL",
          "phone": "x".repeat(40) },
    ]);
    let payload = app
        .data(CREATE_USERS, json!({ "inputs": inputs, "atomic": true }))
        .await["createUsers"]
        .clone();
    assert_eq!(
        errors(&payload),
        [
            (0, json!("FAILED_PRECONDITION"), Value::Null),
            (1, json!("FAILED_PRECONDITION"), Value::Null),
            (2, json!("BAD_USER_INPUT"), json!("phone")),
        ]
    );
    assert_eq!(payload["succeeded"], 0);
    assert_eq!(
        app.snapshot().await,
        before,
        "an atomic batch that failed changed nothing"
    );

    // Customers the same way.
    let customers = "mutation($inputs: [CreateCustomerInput!]!, $atomic: Boolean!) {
      createCustomers(inputs: $inputs, atomic: $atomic) {
        succeeded results { index customer { title } error { code field } } } }";
    let inputs = json!([{ "title": "Fine" }, { "title": "" }, { "title": "Also fine" }]);
    let atomic = app
        .data(customers, json!({ "inputs": inputs, "atomic": true }))
        .await;
    assert_eq!(atomic["createCustomers"]["succeeded"], 0);
    assert_eq!(app.snapshot().await, before);
    let alone = app
        .data(customers, json!({ "inputs": inputs, "atomic": false }))
        .await["createCustomers"]
        .clone();
    assert_eq!(alone["succeeded"], 2);
    assert_eq!(
        alone["results"][1]["error"],
        json!({ "code": "BAD_USER_INPUT", "field": "title" })
    );
    assert_eq!(alone["results"][2]["customer"]["title"], "Also fine");
}

#[tokio::test]
async fn users_are_updated_in_a_batch_each_as_update_user_does() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    let made = app
        .data(
            CREATE_USERS,
            json!({ "inputs": [invited(&shop, "a@shop.test"), invited(&shop, "b@shop.test")],
                    "atomic": false }),
        )
        .await;
    let ids: Vec<Value> = made["createUsers"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"]["id"].clone())
        .collect();
    let update = "mutation($updates: [UserUpdate!]!) { updateUsers(updates: $updates) {
        succeeded results { user { firstName } error { code field } } } }";
    let payload = app
        .data(
            update,
            json!({ "updates": [
                { "id": ids[0], "input": { "firstName": "Ann" } },
                { "id": ids[1], "input": { "phone": "x".repeat(40) } },
                { "id": "bm9uc2Vuc2U", "input": { "firstName": "Nobody" } },
                { "id": ids[1], "input": { "firstName": "Bo" } },
            ] }),
        )
        .await["updateUsers"]
        .clone();
    let results = &payload["results"];
    assert_eq!(results[0]["user"]["firstName"], "Ann");
    assert_eq!(
        results[1]["error"],
        json!({ "code": "BAD_USER_INPUT", "field": "phone" })
    );
    assert_eq!(
        results[2]["error"],
        json!({ "code": "BAD_USER_INPUT", "field": "id" })
    );
    assert_eq!(results[3]["user"]["firstName"], "Bo");
    assert_eq!(payload["succeeded"], 2);
}

#[tokio::test]
async fn batches_have_bounds_and_cost_by_size() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    for size in [0, 1001] {
        let inputs: Vec<Value> = (0..size)
            .map(|n| invited(&shop, &format!("u{n}@shop.test")))
            .collect();
        let error = app
            .error(CREATE_USERS, json!({ "inputs": inputs, "atomic": false }))
            .await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("inputs"))
        );
    }
    let key = app.tenant.api_key.clone();
    let cost = async |n: usize, offset: usize| {
        let inputs: Vec<Value> = (0..n)
            .map(|i| invited(&shop, &format!("c{}@shop.test", offset + i)))
            .collect();
        let body = app
            .post(
                Some(&key),
                CREATE_USERS,
                json!({ "inputs": inputs, "atomic": false }),
            )
            .await;
        body["extensions"]["cost"].as_u64().unwrap()
    };
    let one = cost(1, 0).await;
    let ten = cost(10, 100).await;
    assert_eq!(ten, 10 * one);
}

#[tokio::test]
async fn creating_users_in_a_batch_takes_the_same_statements_whatever_its_size() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    let inner = app.customer("Inner", Some(&shop)).await;
    app.member(&shop, "boss@shop.test").await;
    app.administer(&shop, "boss@shop.test").await;
    let notices = "SELECT count(*) FROM jobs WHERE kind = 'ADMIN_NOTIFICATION'";
    let notices_before = count(&app, notices).await;
    let mut counts = Vec::new();
    for size in [2usize, 200] {
        let inputs: Vec<Value> = (0..size)
            .map(|n| {
                let customer = if n % 2 == 0 { &shop } else { &inner };
                invited(customer, &format!("s{size}-{n}@shop.test"))
            })
            .collect();
        let request_id = format!("batch-{size}-{}", app.addr.port());
        let body = app
            .post_with(
                Some(&app.tenant.api_key),
                CREATE_USERS,
                json!({ "inputs": inputs, "atomic": false }),
                Some(&request_id),
            )
            .await;
        assert_eq!(data_of(body)["createUsers"]["succeeded"], size);
        counts.push(statements::recorded(&request_id));
    }
    assert_eq!(counts[0].len(), counts[1].len(), "{counts:#?}");
    // Invitations and the administrator's notices, one each per user.
    assert_eq!(
        count(&app, "SELECT count(*) FROM jobs WHERE kind = 'INVITATION'").await,
        202
    );
    assert_eq!(count(&app, notices).await, notices_before + 202);
}

#[tokio::test]
async fn a_batch_grants_no_power_its_items_would_not_have_alone() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let mine = app.customer("Mine", None).await;
    let below = app.customer("Below", Some(&mine)).await;
    let sibling = app.customer("Sibling", None).await;
    let (_, admin) = app.member(&mine, "boss@mine.test").await;
    app.administer(&mine, "boss@mine.test").await;
    let (_, plain) = app.member(&below, "plain@mine.test").await;
    let inputs = json!([
        invited(&below, "ok@mine.test"),
        invited(&sibling, "out@mine.test"),
        { "email": "root@mine.test", "activation": "SEND_ACTIVATION_EMAIL", "role": "TENANT_ADMIN" },
    ]);
    let payload = app
        .data_as(
            &admin,
            CREATE_USERS,
            json!({ "inputs": inputs, "atomic": false }),
        )
        .await["createUsers"]
        .clone();
    assert_eq!(
        errors(&payload),
        [
            // Out of sight looks absent; a tenant administrator needs
            // every scope.
            (1, json!("BAD_USER_INPUT"), json!("customerId")),
            (2, json!("FORBIDDEN"), Value::Null),
        ]
    );
    // A user who administers nothing makes no users, even in its own
    // customer; a key without USERS_WRITE makes no batch at all.
    let payload = app
        .data_as(
            &plain,
            CREATE_USERS,
            json!({ "inputs": [invited(&below, "p@mine.test")], "atomic": false }),
        )
        .await["createUsers"]
        .clone();
    assert_eq!(errors(&payload), [(0, json!("FORBIDDEN"), Value::Null)]);
    let reader = app.key_with(&["USERS_READ", "CUSTOMERS_READ"]).await;
    let error = app
        .error_as(
            Some(&reader),
            CREATE_USERS,
            json!({ "inputs": [invited(&below, "k@mine.test")], "atomic": false }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");

    // The administrator changes users in reach only.
    let theirs = app
        .data(
            CREATE_USERS,
            json!({ "inputs": [invited(&sibling, "far@mine.test")], "atomic": false }),
        )
        .await["createUsers"]["results"][0]["user"]["id"]
        .clone();
    let update = "mutation($updates: [UserUpdate!]!) { updateUsers(updates: $updates) {
        results { error { code } } } }";
    let answer = app
        .data_as(
            &admin,
            update,
            json!({ "updates": [{ "id": theirs, "input": { "firstName": "Taken" } }] }),
        )
        .await;
    assert_eq!(
        answer["updateUsers"]["results"][0]["error"]["code"],
        "NOT_FOUND"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE first_name = 'Taken'"
        )
        .await,
        0
    );
}
