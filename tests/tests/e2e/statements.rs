//! No N+1: a nested query over a page of customers runs at most one SQL
//! statement per database-backed field in the query, whatever the page
//! size. (Loaders of different depths may share a batch when their timing
//! allows, so the exact count can be lower; it can never be higher.)

use canopy_tests::{TestApp, TestDb, statements};
use serde_json::json;

const NESTED: &str = "query($first: Int!) {
  customers(rootsOnly: true, first: $first) {
    totalCount
    nodes {
      id number title depth
      parent { id }
      ancestors { id }
      innerCustomerCount
      descendantCount
      administrators { email administeredCustomers { id } }
      entitlements { kind reference customer { id } }
      innerCustomers(first: 5) {
        totalCount
        nodes { title parent { title } ancestors { title } innerCustomerCount descendantCount entitlements { reference } }
      }
    }
  }
}";

/// The statements NESTED may need: the key lookup, the page and its
/// totalCount, then per customer level the fields that read the database
/// (parent, ancestors, innerCustomerCount, descendantCount, administrators,
/// their administeredCustomers (ids, then customers), entitlements, their
/// customer, innerCustomers and its totalCount), and below: parent,
/// ancestors, innerCustomerCount, descendantCount, entitlements.
const DB_BACKED_FIELDS: usize = 3 + 11 + 5;

/// Batches a loaded machine may split (see below).
const SPLIT_BATCHES: usize = 4;

#[tokio::test]
async fn statement_count_does_not_grow_with_the_page() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for i in 0..50 {
        let root = app.customer(&format!("Root {i:02}"), None).await;
        let child = app.customer(&format!("Child {i:02}"), Some(&root)).await;
        app.customer(&format!("Grandchild {i:02}"), Some(&child))
            .await;
        app.data(
            "mutation($id: ID!, $ref: String!) {
               a: attachEntitlement(customerId: $id, kind: ACTIVATION_KEY, reference: $ref) { id }
               b: assignCustomerAdministrator(customerId: $id, email: \"admin@acme.test\") { customer { id } } }",
            json!({ "id": root, "ref": format!("KEY-{i}") }),
        )
        .await;
    }

    let mut counts = Vec::new();
    for first in [1, 10, 50] {
        let request_id = format!("n-plus-one-{first}-{}", app.addr.port());
        let body = app
            .post_with(
                Some(&app.tenant.api_key),
                NESTED,
                json!({ "first": first }),
                Some(&request_id),
            )
            .await;
        let data = canopy_tests::data_of(body);
        let nodes = data["customers"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), first);
        assert_eq!(
            nodes[0]["innerCustomers"]["nodes"][0]["parent"]["title"],
            nodes[0]["title"]
        );
        assert_eq!(
            nodes[0]["administrators"][0]["administeredCustomers"]
                .as_array()
                .unwrap()
                .len(),
            50
        );
        counts.push(statements::recorded(&request_id));
    }
    let sizes: Vec<usize> = counts.iter().map(Vec::len).collect();
    assert!(sizes[0] > 5, "the counter sees the statements: {counts:#?}");
    // A loader batches the keys that arrive within its short window; on a
    // loaded machine one field's keys may straddle two windows, so a few
    // statements more than one per field may run. One per row would be
    // dozens more at 50 customers.
    for (first, statements) in [1, 10, 50].iter().zip(&counts) {
        assert!(
            statements.len() <= DB_BACKED_FIELDS + SPLIT_BATCHES,
            "{} statements for {first} customers, more than the {DB_BACKED_FIELDS} fields: {statements:#?}",
            statements.len()
        );
    }
    println!("statements per nested query over 1, 10, 50 customers: {sizes:?}");
}

/// Creating an invited user is one transaction of a fixed number of
/// statements: the tree's lock, the customer, the user with its address
/// claimed, the old links revoked with the new one's id drawn, the link,
/// the invitation, the administrators' notices, the audit entry, and
/// COMMIT (sqlx reports no event for BEGIN). It was ten before the address
/// claim and the token id joined the statements before them.
const CREATE_USER_STATEMENTS: usize = 9;

#[tokio::test]
async fn creating_an_invited_user_takes_a_fixed_number_of_statements() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Acme Retail", None).await;
    for n in 0..3 {
        let request_id = format!("create-user-{n}-{}", app.addr.port());
        let body = app
            .post_with(
                Some(&app.tenant.api_key),
                "mutation($c: ID!, $e: String!) { createUser(input: {
                   customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
                json!({ "c": customer, "e": format!("new{n}@acme.test") }),
                Some(&request_id),
            )
            .await;
        canopy_tests::data_of(body);
        let statements = statements::recorded(&request_id);
        assert_eq!(statements.len(), CREATE_USER_STATEMENTS, "{statements:#?}");
    }
}
