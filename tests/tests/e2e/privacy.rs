//! Account privacy: a sign-up tells nobody whether an address has an
//! account, and a tenant may switch self sign-up off.

use canopy_tests::{TestApp, TestDb, data_of, error_of, global_id_number};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

const SIGN_UP: &str = "mutation($input: SignUpInput!) {
  signUp(input: $input) {
    user { id email status role firstName lastName phone emailVerified createdAt updatedAt lastLoginAt }
    customer { id number title email parentId depth createdAt }
  }
}";

async fn sign_up(app: &TestApp, email: &str, title: &str) -> Value {
    app.post(
        None,
        SIGN_UP,
        json!({ "input": { "tenantId": app.tenant.tenant_id, "customerTitle": title,
                           "email": email, "password": PASSWORD, "firstName": "Sam" } }),
    )
    .await
}

/// The answer with what differs between any two sign-ups (ids, numbers,
/// the address and title given, times) taken out.
fn shape(body: &Value) -> Value {
    let mut body = body.clone();
    let payload = &mut body["data"]["signUp"];
    for (object, fields) in [
        ("user", &["id", "email", "createdAt", "updatedAt"][..]),
        (
            "customer",
            &["id", "number", "title", "email", "createdAt"][..],
        ),
    ] {
        for field in fields {
            assert!(
                payload[object][field].is_string(),
                "{object}.{field}: {body}"
            );
            payload[object][field] = json!("…");
        }
    }
    body
}

fn id_of(body: &Value, object: &str) -> i64 {
    global_id_number(body["data"]["signUp"][object]["id"].as_str().unwrap())
}

#[tokio::test]
async fn a_sign_up_with_a_taken_address_answers_as_a_new_one_and_tells_the_owner() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let first = sign_up(&app, "sam@bikes.test", "Sam's Bikes").await;
    let before = app.snapshot().await;
    let taken = sign_up(&app, "SAM@bikes.test", "Impostor Bikes").await;
    let after_taken = app.snapshot().await;
    let fresh = sign_up(&app, "kim@bikes.test", "Kim's Bikes").await;

    // The same answer, field for field, and ids and numbers in the same
    // sequence as if the taken address had been new.
    assert_eq!(shape(&taken), shape(&first));
    assert_eq!(shape(&taken), shape(&fresh));
    assert_eq!(id_of(&taken, "user"), id_of(&first, "user") + 1);
    assert_eq!(id_of(&fresh, "user"), id_of(&taken, "user") + 1);
    assert_eq!(id_of(&fresh, "customer"), id_of(&taken, "customer") + 1);
    let numbers: Vec<&str> = [&first, &taken, &fresh]
        .iter()
        .map(|b| b["data"]["signUp"]["customer"]["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["C-000001", "C-000002", "C-000003"]);

    // Nothing was created for it: no user, no customer, no reservation.
    // (Only the audit log, which administrators alone read, says that
    // a sign-up came for an address already taken.)
    let tables_but_the_counter = |snapshot: &str| {
        snapshot
            .lines()
            .filter(|line| {
                !line.starts_with("tenant_counters") && !line.starts_with("audit_entries")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        tables_but_the_counter(&after_taken),
        tables_but_the_counter(&before)
    );
    let data = app
        .data(
            "query($c: ID!, $u: ID!) { customer(id: $c) { id } user(id: $u) { id } }",
            json!({ "c": taken["data"]["signUp"]["customer"]["id"],
                    "u": taken["data"]["signUp"]["user"]["id"] }),
        )
        .await;
    assert_eq!(data, json!({ "customer": null, "user": null }));

    // The owner hears of it, and the impostor gets no validation link.
    let notice = app
        .mail()
        .wait_for("sam@bikes.test", "someone tried to sign up")
        .await;
    assert!(
        notice.text.contains("already has an account"),
        "{}",
        notice.text
    );
    assert!(
        notice.text.contains("https://portal.example.com"),
        "{}",
        notice.text
    );
    app.jobs_settled().await;
    let to_sam: Vec<String> = app
        .mail()
        .messages_to("sam@bikes.test")
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(to_sam.len(), 2, "one validation, one notice: {to_sam:?}");
    assert_eq!(
        to_sam.iter().filter(|s| s.contains("confirm")).count(),
        1,
        "{to_sam:?}"
    );
}

#[tokio::test]
async fn a_key_of_another_tenant_reads_nothing_through_a_sign_up() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let other = app.create_tenant("Other").await;
    let nested = "mutation($input: SignUpInput!) { signUp(input: $input) {
        user { id customer { id } emailDeliveries { totalCount } invitation { state } administeredCustomers { id } }
        customer { id depth parentId users { totalCount } entitlements { id } innerCustomerCount
                   descendantCount administrators { id } } } }";
    let attempt = |email: &str| {
        json!({ "input": { "tenantId": other.tenant_id, "customerTitle": "T",
                           "email": email, "password": PASSWORD } })
    };
    let key = app.tenant.api_key.clone();
    let fresh = app
        .post(Some(&key), nested, attempt("new@bikes.test"))
        .await;
    let taken = app
        .post(Some(&key), nested, attempt("NEW@bikes.test"))
        .await;
    let strip = |body: &Value| {
        let mut body = body.clone();
        body["data"]["signUp"]["user"]["id"] = json!("…");
        body["data"]["signUp"]["customer"]["id"] = json!("…");
        body
    };
    assert_eq!(strip(&fresh), strip(&taken));
    let user = &fresh["data"]["signUp"]["user"];
    assert_eq!(user["customer"], Value::Null, "{fresh}");
    assert_eq!(
        fresh["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{fresh}"
    );
    assert_eq!(
        fresh["errors"][0]["path"],
        json!(["signUp", "user", "emailDeliveries"])
    );
    assert_eq!(
        fresh["data"]["signUp"]["customer"]["users"]["totalCount"], 0,
        "{fresh}"
    );
}

const UPDATE_TENANT: &str = "mutation($input: UpdateTenantInput!) {
  updateTenant(input: $input) { id name requireApproval portalUrl selfSignUp }
}";

#[tokio::test]
async fn a_tenant_without_self_sign_up_answers_as_if_it_did_not_exist() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let unknown = app
        .post(
            None,
            SIGN_UP,
            json!({ "input": { "tenantId": canopy_api::ids::encode(canopy_api::ids::NodeKind::Tenant, 999),
                               "customerTitle": "X", "email": "x@x.test", "password": PASSWORD } }),
        )
        .await;

    // Only a caller holding every scope changes the tenant.
    let all_but_one = app
        .key_with(&[
            "CUSTOMERS_READ",
            "CUSTOMERS_WRITE",
            "USERS_READ",
            "USERS_WRITE",
            "JOBS_READ",
            "API_KEYS_WRITE",
        ])
        .await;
    let before = app.snapshot().await;
    let off = json!({ "input": { "selfSignUp": false } });
    let refused = app
        .error_as(Some(&all_but_one), UPDATE_TENANT, off.clone())
        .await;
    assert_eq!(refused.code, "FORBIDDEN");
    assert_eq!(
        app.error_as(None, UPDATE_TENANT, off.clone()).await.code,
        "UNAUTHENTICATED"
    );
    for (input, field) in [
        (json!({ "portalUrl": "ftp://nope" }), "portalUrl"),
        (json!({ "name": " " }), "name"),
        (json!({ "name": "x".repeat(201) }), "name"),
    ] {
        let error = app.error(UPDATE_TENANT, json!({ "input": input })).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some(field))
        );
    }
    assert_eq!(app.snapshot().await, before);

    let data = app.data(UPDATE_TENANT, off).await;
    assert_eq!(
        data["updateTenant"],
        json!({ "id": app.tenant.tenant_id, "name": "Acme", "requireApproval": false,
                "portalUrl": "https://portal.example.com/", "selfSignUp": false })
    );

    let before = app.snapshot().await;
    let closed = sign_up(&app, "sam@bikes.test", "Sam's Bikes").await;
    let (closed, unknown) = (error_of(closed), error_of(unknown));
    assert_eq!(
        (closed.code, closed.field, closed.message),
        (unknown.code, unknown.field, unknown.message)
    );
    assert_eq!(app.snapshot().await, before);

    // Back on, and the other settings change too.
    let data = app
        .data(
            UPDATE_TENANT,
            json!({ "input": { "selfSignUp": true, "requireApproval": true, "name": "Acme Two",
                               "portalUrl": "https://portal.two.test/app" } }),
        )
        .await;
    assert_eq!(data["updateTenant"]["selfSignUp"], true);
    assert_eq!(data["updateTenant"]["requireApproval"], true);
    assert_eq!(
        data["updateTenant"]["portalUrl"],
        "https://portal.two.test/app"
    );
    data_of(sign_up(&app, "sam@bikes.test", "Sam's Bikes").await);
}
