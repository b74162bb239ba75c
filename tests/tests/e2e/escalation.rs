//! No caller obtains a power it does not hold: a key or a customer
//! administrator acts on a user only when it holds every power that user
//! holds, creates only users whose powers it holds, grants administration
//! only with the administrator's scopes, and deletes no customer whose
//! users it does not cover. Out of reach looks absent, down to cursors and
//! the answer for an entitlement held elsewhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use canopy_api::ids::{self, NodeKind};
use canopy_tests::{GqlError, TestApp, TestDb};
use serde_json::{Value, json};

use crate::permissions::titles;

const ALL_SCOPES: [&str; 7] = [
    "CUSTOMERS_READ",
    "CUSTOMERS_WRITE",
    "USERS_READ",
    "USERS_WRITE",
    "JOBS_READ",
    "JOBS_WRITE",
    "API_KEYS_WRITE",
];

/// The scopes of a customer user who administers nothing.
const MEMBER_SCOPES: [&str; 3] = ["CUSTOMERS_READ", "USERS_READ", "USERS_WRITE"];

const CREATE_TENANT_ADMIN: &str = "mutation { createUser(input: { role: TENANT_ADMIN, email: \"usurper@acme.test\", activation: DISPLAY_ACTIVATION_LINK }) { activationLink user { id role } } }";
const CREATE_CUSTOMER_USER: &str = "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"newcomer@acme.test\", activation: DISPLAY_ACTIVATION_LINK }) { activationLink user { id } } }";
const CHANGE_EMAIL: &str = "mutation($id: ID!) { updateUser(id: $id, input: { email: \"attacker@evil.test\" }) { user { id } } }";
const RENAME: &str =
    "mutation($id: ID!) { updateUser(id: $id, input: { firstName: \"Mallory\" }) { user { id } } }";
const SUSPEND: &str =
    "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { status } } }";
const APPROVE: &str = "mutation($id: ID!) { approveUser(id: $id) { user { id } } }";
const DELETE_USER: &str = "mutation($id: ID!) { deleteUser(id: $id) { deletedUserId } }";
const RESEND: &str = "mutation($id: ID!) { resendActivation(id: $id, method: DISPLAY_ACTIVATION_LINK) { activationLink } }";
const REVOKE: &str = "mutation($id: ID!) { revokeInvitation(id: $id) { user { id } } }";
const DELETE_CUSTOMER: &str = "mutation($id: ID!) { deleteCustomer(id: $id, cascade: true) { deletedCustomerIds deletedUserIds } }";
const ASSIGN: &str = "mutation($c: ID!, $e: String!) { assignCustomerAdministrator(customerId: $c, email: $e) { customer { id } } }";
const DETACH: &str = "mutation($id: ID!) { detachEntitlement(id: $id) { id } }";

/// Runs `query` as `key`, expects its one error to carry `code`, and
/// checks that nothing changed; returns the error.
async fn refused(app: &TestApp, key: &str, query: &str, variables: Value, code: &str) -> GqlError {
    let before = app.snapshot().await;
    let error = app.error_as(Some(key), query, variables.clone()).await;
    assert_eq!(error.code, code, "{query} {variables}: {}", error.message);
    assert_eq!(
        app.snapshot().await,
        before,
        "{query} {variables} was refused yet changed something"
    );
    error
}

/// Suspends `user` as `key`, which may.
async fn suspend_as(app: &TestApp, key: &str, user: &str) {
    let data = app.data_as(key, SUSPEND, json!({ "id": user })).await;
    assert_eq!(data["setUserStatus"]["user"]["status"], "SUSPENDED");
}

/// The attack: a key holding only user scopes made itself (or its holder)
/// a tenant administrator, or took over one's account.
#[tokio::test]
async fn a_key_short_of_any_scope_gains_no_tenant_administrator() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    // The first administrator has not activated yet; the test brings an
    // active one of its own.
    let pending = app.tenant.admin_user_id.clone();
    let boss = app.insert_user("boss@acme.test", None).await;
    let users_only = app.key_with(&["USERS_READ", "USERS_WRITE"]).await;
    let all_but_jobs_write: Vec<&str> = ALL_SCOPES
        .into_iter()
        .filter(|s| *s != "JOBS_WRITE")
        .collect();
    let all_but_one = app.key_with(&all_but_jobs_write).await;

    for key in [&users_only, &all_but_one] {
        refused(&app, key, CREATE_TENANT_ADMIN, json!({}), "FORBIDDEN").await;
        for query in [CHANGE_EMAIL, RENAME, SUSPEND, APPROVE, DELETE_USER] {
            refused(&app, key, query, json!({ "id": boss }), "FORBIDDEN").await;
        }
        for query in [RESEND, REVOKE, SUSPEND, DELETE_USER] {
            refused(&app, key, query, json!({ "id": pending }), "FORBIDDEN").await;
        }
    }

    // Every scope is a tenant administrator's power: that key may.
    let every_scope = app.key_with(&ALL_SCOPES).await;
    let data = app
        .data_as(&every_scope, CREATE_TENANT_ADMIN, json!({}))
        .await;
    assert_eq!(data["createUser"]["user"]["role"], "TENANT_ADMIN");
    assert!(data["createUser"]["activationLink"].is_string());
    let data = app
        .data_as(&every_scope, RESEND, json!({ "id": pending }))
        .await;
    assert!(data["resendActivation"]["activationLink"].is_string());
    suspend_as(&app, &every_scope, &boss).await;
}

#[tokio::test]
async fn a_key_acts_on_customer_users_only_with_the_scopes_they_hold() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let c = app.customer("Client", None).await;
    let plain = app.insert_user("plain@acme.test", Some(&c)).await;
    let boss = app.insert_user("clientboss@acme.test", Some(&c)).await;
    app.administer(&c, "clientboss@acme.test").await;
    let users_only = app.key_with(&["USERS_READ", "USERS_WRITE"]).await;
    let members = app.key_with(&MEMBER_SCOPES).await;

    // Without CUSTOMERS_READ, which every customer user holds.
    refused(
        &app,
        &users_only,
        CREATE_CUSTOMER_USER,
        json!({ "c": c }),
        "FORBIDDEN",
    )
    .await;
    for query in [SUSPEND, CHANGE_EMAIL, DELETE_USER] {
        refused(
            &app,
            &users_only,
            query,
            json!({ "id": plain }),
            "FORBIDDEN",
        )
        .await;
    }

    // With the member's scopes: a plain user, not an administrator.
    for query in [SUSPEND, RENAME, CHANGE_EMAIL, DELETE_USER] {
        refused(&app, &members, query, json!({ "id": boss }), "FORBIDDEN").await;
    }
    let data = app
        .data_as(&members, CREATE_CUSTOMER_USER, json!({ "c": c }))
        .await;
    assert!(data["createUser"]["activationLink"].is_string());
    suspend_as(&app, &members, &plain).await;
    let data = app
        .data_as(&members, DELETE_USER, json!({ "id": plain }))
        .await;
    assert_eq!(data["deleteUser"]["deletedUserId"], plain.as_str());

    // The administrator's scopes cover the administrator.
    let administrators = app
        .key_with(&[
            "CUSTOMERS_READ",
            "CUSTOMERS_WRITE",
            "USERS_READ",
            "USERS_WRITE",
        ])
        .await;
    suspend_as(&app, &administrators, &boss).await;
}

#[tokio::test]
async fn making_an_administrator_needs_the_administrators_scopes() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let c = app.customer("Client", None).await;
    app.insert_user("plain@acme.test", Some(&c)).await;
    let variables = json!({ "c": c, "e": "plain@acme.test" });
    let no_users_write = app
        .key_with(&["CUSTOMERS_READ", "CUSTOMERS_WRITE", "USERS_READ"])
        .await;
    refused(
        &app,
        &no_users_write,
        ASSIGN,
        variables.clone(),
        "FORBIDDEN",
    )
    .await;
    let administrators = app
        .key_with(&[
            "CUSTOMERS_READ",
            "CUSTOMERS_WRITE",
            "USERS_READ",
            "USERS_WRITE",
        ])
        .await;
    app.data_as(&administrators, ASSIGN, variables).await;
    let data = app
        .data(
            "query($c: ID!) { customer(id: $c) { administrators { email } } }",
            json!({ "c": c }),
        )
        .await;
    assert_eq!(
        titles(&data["customer"]["administrators"]),
        ["plain@acme.test"]
    );
}

#[tokio::test]
async fn deleting_a_customer_deletes_only_users_the_caller_covers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let a = app.customer("A", None).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let b = app.customer("B", None).await;
    let (_, a_admin) = app.member(&a, "aadmin@acme.test").await;
    app.administer(&a, "aadmin@acme.test").await;
    // A user of A1 (in A's subtree) who also administers B (outside it).
    let (double, _) = app.member(&a1, "double@acme.test").await;
    app.administer(&b, "double@acme.test").await;
    let (plain_of_b, _) = app.member(&b, "plainb@acme.test").await;

    let error = refused(
        &app,
        &a_admin,
        DELETE_CUSTOMER,
        json!({ "id": a1 }),
        "FORBIDDEN",
    )
    .await;
    assert!(
        error.message.contains("double@acme.test"),
        "{}",
        error.message
    );

    // A key that may delete customers, but holds no user's powers.
    let customers_only = app.key_with(&["CUSTOMERS_WRITE"]).await;
    for id in [&a1, &b] {
        refused(
            &app,
            &customers_only,
            DELETE_CUSTOMER,
            json!({ "id": id }),
            "FORBIDDEN",
        )
        .await;
    }

    // The tenant's key covers everyone.
    let data = app.data(DELETE_CUSTOMER, json!({ "id": a1 })).await;
    assert_eq!(data["deleteCustomer"]["deletedCustomerIds"], json!([a1]));
    assert_eq!(data["deleteCustomer"]["deletedUserIds"], json!([double]));
    let data = app.data(DELETE_CUSTOMER, json!({ "id": b })).await;
    assert_eq!(
        data["deleteCustomer"]["deletedUserIds"],
        json!([plain_of_b])
    );
}

#[tokio::test]
async fn what_lies_out_of_reach_looks_absent() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let a = app.customer("Secretparent", None).await;
    let a1 = app.customer("Branch", Some(&a)).await;
    let a1a = app.customer("Leaf", Some(&a1)).await;
    app.customer("Twig", Some(&a1)).await;
    let b = app.customer("Elsewhere", None).await;
    let (a1_admin_id, a1_admin) = app.member(&a1, "a1admin@acme.test").await;
    app.administer(&a1, "a1admin@acme.test").await;
    // A user of B, made an administrator of A1 by the tenant.
    let (stranger, _) = app.member(&b, "stranger@acme.test").await;
    app.administer(&a1, "stranger@acme.test").await;

    let query = "query($a1: ID!, $a1a: ID!, $stranger: ID!) {
        a1: customer(id: $a1) {
          parentId parent { id } ancestors { id } depth
          administrators { id email }
          descendants(first: 1) { edges { cursor node { title } } pageInfo { endCursor hasNextPage } }
        }
        a1a: customer(id: $a1a) { parentId depth ancestors { id title } }
        roots: customers(rootsOnly: true) { totalCount nodes { title } }
        stranger: node(id: $stranger) { id }
      }";
    let variables = json!({ "a1": a1, "a1a": a1a, "stranger": stranger });

    let seen = app.data_as(&a1_admin, query, variables.clone()).await;
    let top = &seen["a1"];
    assert_eq!(top["parentId"], Value::Null, "A is above its reach");
    assert_eq!(top["parent"], Value::Null);
    assert_eq!(top["ancestors"], json!([]));
    assert_eq!(top["depth"], 0);
    assert_eq!(seen["a1a"]["depth"], 1);
    assert_eq!(seen["a1a"]["parentId"], a1.as_str());
    assert_eq!(
        seen["a1a"]["ancestors"],
        json!([{ "id": a1, "title": "Branch" }])
    );
    assert_eq!(titles(&seen["roots"]["nodes"]), ["Branch"]);
    assert_eq!(seen["roots"]["totalCount"], 1);

    // Cursors carry nothing of what lies above.
    let edges = top["descendants"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["title"], "Leaf");
    let cursor = edges[0]["cursor"].as_str().unwrap();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).expect("base64url"))
        .expect("a text cursor")
        .to_lowercase();
    assert!(decoded.contains("leaf"), "{decoded:?}");
    for above in ["secretparent", "branch"] {
        assert!(!decoded.contains(above), "{decoded:?} names {above}");
    }
    let end = top["descendants"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap();
    let end = String::from_utf8(URL_SAFE_NO_PAD.decode(end).unwrap()).unwrap();
    assert!(!end.to_lowercase().contains("secretparent"), "{end:?}");
    assert_eq!(top["descendants"]["pageInfo"]["hasNextPage"], true);
    // The short cursor still pages on.
    let next = app
        .data_as(
            &a1_admin,
            "query($a1: ID!, $after: String!) { customer(id: $a1) { descendants(first: 5, after: $after) { edges { node { title } } } } }",
            json!({ "a1": a1, "after": cursor }),
        )
        .await;
    assert_eq!(
        next["customer"]["descendants"]["edges"],
        json!([{ "node": { "title": "Twig" } }])
    );

    // Administrators it could not read by node(id) are left out.
    assert_eq!(
        titles(&top["administrators"]),
        ["a1admin@acme.test"],
        "a user of B is out of the A1 administrator's reach"
    );
    assert_eq!(top["administrators"][0]["id"], a1_admin_id.as_str());
    assert_eq!(seen["stranger"], Value::Null);

    // The tenant's key sees it all, and both answers agree.
    let all = app.data(query, variables).await;
    assert_eq!(all["a1"]["parentId"], a.as_str());
    assert_eq!(all["a1"]["depth"], 1);
    assert_eq!(all["a1a"]["depth"], 2);
    assert_eq!(
        titles(&all["a1"]["administrators"]),
        ["a1admin@acme.test", "stranger@acme.test"]
    );
    assert_eq!(all["stranger"]["id"], stranger.as_str());
    assert_eq!(
        titles(&all["roots"]["nodes"]),
        ["Elsewhere", "Secretparent"]
    );

    // An entitlement held out of reach answers as a missing one.
    let held = app
        .data(
            "mutation($c: ID!) { attachEntitlement(customerId: $c, kind: AUTHORIZATION_CODE, reference: \"ref-b\") { id } }",
            json!({ "c": b }),
        )
        .await["attachEntitlement"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let made_up = ids::encode(NodeKind::Entitlement, 999_999);
    let out_of_reach = refused(&app, &a1_admin, DETACH, json!({ "id": held }), "NOT_FOUND").await;
    let missing = refused(
        &app,
        &a1_admin,
        DETACH,
        json!({ "id": made_up }),
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        (out_of_reach.code, out_of_reach.field, out_of_reach.message),
        (missing.code, missing.field, missing.message)
    );
}

#[tokio::test]
async fn links_issued_before_a_user_gains_power_stop_working() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let a = app.customer("A", None).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let b = app.customer("B", None).await;
    // The administrator of A1 invites a colleague and keeps the link.
    let (_, a1_admin) = app.member(&a1, "a1admin@acme.test").await;
    app.administer(&a1, "a1admin@acme.test").await;
    let data = app
        .data_as(
            &a1_admin,
            "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"colleague@acme.test\",
               activation: DISPLAY_ACTIVATION_LINK }) { activationLink } }",
            json!({ "c": a1 }),
        )
        .await;
    let kept = canopy_tests::link_token(data["createUser"]["activationLink"].as_str().unwrap());
    // Later the colleague is made administrator of B, beyond A1's reach.
    app.administer(&b, "colleague@acme.test").await;
    let error = app
        .error_as(
            None,
            "mutation($t: String!) { activateAccount(token: $t, password: \"a long password\") { token } }",
            json!({ "t": kept }),
        )
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token")),
        "{}",
        error.message
    );
}
