//! The customer tree: depth, ancestors, descendants in order, moves, cycles
//! and deletion.

use canopy_tests::{TestApp, TestDb, node_strings};
use serde_json::{Value, json};

const DESCENDANTS: &str = "query($id: ID!, $maxDepth: Int, $first: Int, $after: String) {
  customer(id: $id) {
    descendantCount
    descendants(maxDepth: $maxDepth, first: $first, after: $after) {
      totalCount
      nodes { title number depth }
      pageInfo { hasNextPage endCursor }
    }
  }
}";

const MOVE: &str = "mutation($id: ID!, $parent: ID) {
  moveCustomer(id: $id, newParentId: $parent) { customer { id depth parentId } }
}";

fn titles(connection: &Value) -> Vec<String> {
    node_strings(connection, "title")
}

async fn descendant_titles(app: &TestApp, id: &str) -> Vec<String> {
    let data = app
        .data(DESCENDANTS, json!({ "id": id, "first": 100 }))
        .await;
    titles(&data["customer"]["descendants"])
}

async fn create_numbered(app: &TestApp, title: &str, number: &str, parent: Option<&str>) -> String {
    let data = app
        .data(
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } } }",
            json!({ "input": { "title": title, "number": number, "parentId": parent } }),
        )
        .await;
    data["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_deep_tree_answers_depth_ancestors_and_descendants() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    // A chain seven levels deep (depth 0..=6), with a side branch at level 2.
    let mut chain = vec![app.customer("Level 0", None).await];
    for level in 1..=6 {
        let parent = chain.last().cloned();
        chain.push(
            app.customer(&format!("Level {level}"), parent.as_deref())
                .await,
        );
    }
    app.customer("Side 3", Some(&chain[2])).await;

    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) {
                depth parent { title } ancestors { title depth }
                innerCustomerCount descendantCount } }",
            json!({ "id": chain[6] }),
        )
        .await;
    let leaf = &data["customer"];
    assert_eq!(leaf["depth"], 6);
    assert_eq!(leaf["parent"]["title"], "Level 5");
    let ancestors: Vec<_> = leaf["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        ancestors,
        [
            "Level 0", "Level 1", "Level 2", "Level 3", "Level 4", "Level 5"
        ]
    );
    assert_eq!(leaf["ancestors"][3]["depth"], 3);
    assert_eq!(leaf["innerCustomerCount"], 0);
    assert_eq!(leaf["descendantCount"], 0);

    let data = app
        .data(DESCENDANTS, json!({ "id": chain[0], "first": 100 }))
        .await;
    assert_eq!(data["customer"]["descendantCount"], 7);
    assert_eq!(
        titles(&data["customer"]["descendants"]),
        [
            "Level 1", "Level 2", "Level 3", "Level 4", "Level 5", "Level 6", "Side 3"
        ]
    );

    // maxDepth limits how far down; totalCount follows it.
    let data = app
        .data(DESCENDANTS, json!({ "id": chain[0], "maxDepth": 2 }))
        .await;
    assert_eq!(
        titles(&data["customer"]["descendants"]),
        ["Level 1", "Level 2"]
    );
    assert_eq!(data["customer"]["descendants"]["totalCount"], 2);
    let error = app
        .error(DESCENDANTS, json!({ "id": chain[0], "maxDepth": 0 }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("maxDepth"))
    );
}

#[tokio::test]
async fn descendants_are_in_pre_order_with_children_by_title_then_number() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let root = app.customer("Root", None).await;
    // Equal titles fall back to the number; case does not decide the order.
    let b2 = create_numbered(&app, "Same", "B-2", Some(&root)).await;
    let a1 = create_numbered(&app, "Same", "A-1", Some(&root)).await;
    create_numbered(&app, "same", "A-0", Some(&root)).await;
    create_numbered(&app, "Apple", "Z-9", Some(&root)).await;
    create_numbered(&app, "zulu", "Z-1", Some(&root)).await;
    create_numbered(&app, "child of B-2", "C-1", Some(&b2)).await;
    create_numbered(&app, "beta child of A-1", "C-3", Some(&a1)).await;
    create_numbered(&app, "Alpha child of A-1", "C-2", Some(&a1)).await;

    let data = app
        .data(DESCENDANTS, json!({ "id": root, "first": 100 }))
        .await;
    let numbers: Vec<_> = data["customer"]["descendants"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        numbers,
        ["Z-9", "A-0", "A-1", "C-2", "C-3", "B-2", "C-1", "Z-1"]
    );

    // Paging through the same order with cursors gives the same sequence.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .data(
                DESCENDANTS,
                json!({ "id": root, "first": 3, "after": after }),
            )
            .await;
        let connection = &data["customer"]["descendants"];
        paged.extend(
            connection["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["number"].as_str().unwrap().to_owned()),
        );
        assert_eq!(connection["totalCount"], 8);
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(paged, numbers);

    // innerCustomers lists direct children only, in the same order.
    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) { innerCustomerCount innerCustomers { nodes { number } } } }",
            json!({ "id": root }),
        )
        .await;
    assert_eq!(data["customer"]["innerCustomerCount"], 5);
    let inner: Vec<_> = data["customer"]["innerCustomers"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(inner, ["Z-9", "A-0", "A-1", "B-2", "Z-1"]);
}

#[tokio::test]
async fn renaming_a_customer_moves_its_subtree_in_the_order() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let root = app.customer("Root", None).await;
    let b = app.customer("B", Some(&root)).await;
    app.customer("B child", Some(&b)).await;
    app.customer("C", Some(&root)).await;
    assert_eq!(descendant_titles(&app, &root).await, ["B", "B child", "C"]);

    app.data(
        "mutation($id: ID!) { updateCustomer(id: $id, input: { title: \"D\" }) { customer { title } } }",
        json!({ "id": b }),
    )
    .await;
    assert_eq!(descendant_titles(&app, &root).await, ["C", "D", "B child"]);
}

#[tokio::test]
async fn moving_under_a_siblings_descendant_rewrites_the_subtree() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let root = app.customer("Root", None).await;
    let a = app.customer("A", Some(&root)).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let a1a = app.customer("A1a", Some(&a1)).await;
    let b = app.customer("B", Some(&root)).await;
    let b1 = app.customer("B1", Some(&b)).await;
    app.customer("B1x", Some(&b1)).await;

    let data = app.data(MOVE, json!({ "id": b, "parent": a1a })).await;
    assert_eq!(data["moveCustomer"]["customer"]["depth"], 4);
    assert_eq!(data["moveCustomer"]["customer"]["parentId"], a1a);

    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) { depth ancestors { title } } }",
            json!({ "id": b1 }),
        )
        .await;
    assert_eq!(data["customer"]["depth"], 5);
    let ancestors: Vec<_> = data["customer"]["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(ancestors, ["Root", "A", "A1", "A1a", "B"]);
    assert_eq!(
        descendant_titles(&app, &root).await,
        ["A", "A1", "A1a", "B", "B1", "B1x"]
    );
    assert_eq!(descendant_titles(&app, &a1a).await, ["B", "B1", "B1x"]);

    // And out to the roots.
    let data = app.data(MOVE, json!({ "id": b1, "parent": null })).await;
    assert_eq!(data["moveCustomer"]["customer"]["depth"], 0);
    assert_eq!(descendant_titles(&app, &b1).await, ["B1x"]);
    let data = app
        .data(
            "{ customers(rootsOnly: true) { nodes { title } } }",
            json!({}),
        )
        .await;
    assert_eq!(titles(&data["customers"]), ["B1", "Root"]);
}

#[tokio::test]
async fn a_move_that_would_make_a_cycle_is_refused() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let a = app.customer("A", None).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let a1a = app.customer("A1a", Some(&a1)).await;
    let gone = app.customer("Gone", None).await;
    app.data(
        "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
        json!({ "id": gone }),
    )
    .await;
    let before = app.snapshot().await;

    // Below itself, its child or its grandchild: each a cycle.
    for target in [&a, &a1, &a1a] {
        let error = app.error(MOVE, json!({ "id": a, "parent": target })).await;
        assert_eq!(error.code, "BAD_USER_INPUT", "{error:?}");
        assert_eq!(error.field.as_deref(), Some("newParentId"));
    }
    let error = app.error(MOVE, json!({ "id": a1, "parent": a1a })).await;
    assert_eq!(error.field.as_deref(), Some("newParentId"));
    // Malformed ids, a parent that does not exist, a customer that does not.
    let error = app
        .error(MOVE, json!({ "id": "garbage", "parent": a }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("id"))
    );
    let error = app
        .error(MOVE, json!({ "id": a1, "parent": "garbage" }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("newParentId"))
    );
    let error = app.error(MOVE, json!({ "id": a1, "parent": gone })).await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("newParentId"))
    );
    let error = app.error(MOVE, json!({ "id": gone, "parent": a })).await;
    assert_eq!(error.code, "NOT_FOUND");

    assert_eq!(app.snapshot().await, before);
}

const DELETE: &str = "mutation($id: ID!, $cascade: Boolean) {
  deleteCustomer(id: $id, cascade: $cascade) {
    deletedCustomerIds deletedUserIds detachedEntitlementIds
  }
}";

const ATTACH: &str = "mutation($id: ID!, $kind: EntitlementKind!, $reference: String!) {
  attachEntitlement(customerId: $id, kind: $kind, reference: $reference) { id customerNumber }
}";

#[tokio::test]
async fn cascade_delete_takes_users_and_detaches_entitlements() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let keep = app.customer("Keep", None).await;
    let a = app.customer("A", None).await;
    let a1 = app.customer("A1", Some(&a)).await;
    let a1a = app.customer("A1a", Some(&a1)).await;
    let code = app
        .data(
            ATTACH,
            json!({ "id": a1a, "kind": "AUTHORIZATION_CODE", "reference": "AUTH-1" }),
        )
        .await["attachEntitlement"]["id"]
        .clone();
    let key = app
        .data(
            ATTACH,
            json!({ "id": a, "kind": "ACTIVATION_KEY", "reference": "KEY-1" }),
        )
        .await["attachEntitlement"]["id"]
        .clone();
    let cloud = app
        .data(
            ATTACH,
            json!({ "id": a1, "kind": "CLOUD_ACCOUNT", "reference": "cloud-1" }),
        )
        .await["attachEntitlement"]["id"]
        .clone();
    let a1a_number = app
        .data(
            "query($id: ID!) { customer(id: $id) { number } }",
            json!({ "id": a1a }),
        )
        .await["customer"]["number"]
        .clone();
    let doomed_user = app.insert_user("doomed@acme.test", Some(&a1a)).await;
    let kept_user = app.insert_user("kept@acme.test", Some(&keep)).await;
    // An administrator of the deleted subtree who belongs elsewhere stays.
    app.administer(&a1, "kept@acme.test").await;
    let before = app.snapshot().await;

    // Without cascade: refused, it has inner customers.
    let error = app.error(DELETE, json!({ "id": a })).await;
    assert_eq!(error.code, "FAILED_PRECONDITION", "{error:?}");
    // With cascade: refused while a cloud account is attached below.
    let error = app.error(DELETE, json!({ "id": a, "cascade": true })).await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(error.message.contains("cloud account"), "{}", error.message);
    assert_eq!(app.snapshot().await, before);

    app.data(
        "mutation($id: ID!) { detachEntitlement(id: $id) { id } }",
        json!({ "id": cloud }),
    )
    .await;
    let data = app.data(DELETE, json!({ "id": a, "cascade": true })).await;
    let deleted = &data["deleteCustomer"];
    let mut expected_customers = vec![a.clone(), a1.clone(), a1a.clone()];
    expected_customers.sort();
    let mut got: Vec<String> =
        serde_json::from_value(deleted["deletedCustomerIds"].clone()).unwrap();
    got.sort();
    assert_eq!(got, expected_customers);
    assert_eq!(deleted["deletedUserIds"], json!([doomed_user]));
    let mut detached: Vec<Value> = deleted["detachedEntitlementIds"]
        .as_array()
        .unwrap()
        .clone();
    detached.sort_by_key(|v| v.to_string());
    let mut expected = vec![code.clone(), key.clone()];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(detached, expected);

    // The detached code keeps the number of the customer that held it.
    let data = app
        .data(
            "query($id: ID!) { node(id: $id) { ... on Entitlement { customer { id } customerNumber kind reference } } }",
            json!({ "id": code }),
        )
        .await;
    assert_eq!(data["node"]["customer"], Value::Null);
    assert_eq!(data["node"]["customerNumber"], a1a_number);
    assert_eq!(data["node"]["reference"], "AUTH-1");

    let data = app
        .data(
            "query($a: ID!, $keep: ID!, $u: ID!, $k: ID!) {
               a: customer(id: $a) { id }
               keep: customer(id: $keep) { id }
               gone: user(id: $u) { id }
               kept: user(id: $k) { administeredCustomers { id } }
             }",
            json!({ "a": a, "keep": keep, "u": doomed_user, "k": kept_user }),
        )
        .await;
    assert_eq!(data["a"], Value::Null);
    assert_eq!(data["keep"]["id"], keep);
    assert_eq!(data["gone"], Value::Null);
    assert_eq!(data["kept"]["administeredCustomers"], json!([]));
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn a_leaf_is_deleted_without_cascade() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let a = app.customer("A", None).await;
    let leaf = app.customer("Leaf", Some(&a)).await;
    let data = app.data(DELETE, json!({ "id": leaf })).await;
    assert_eq!(data["deleteCustomer"]["deletedCustomerIds"], json!([leaf]));
    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) { innerCustomerCount descendantCount } }",
            json!({ "id": a }),
        )
        .await;
    assert_eq!(data["customer"]["innerCustomerCount"], 0);
    assert_eq!(data["customer"]["descendantCount"], 0);

    let error = app.error(DELETE, json!({ "id": leaf })).await;
    assert_eq!(error.code, "NOT_FOUND");
    let error = app.error(DELETE, json!({ "id": "not-an-id" })).await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("id"))
    );
}

#[tokio::test]
async fn the_tree_is_at_most_a_hundred_levels_deep() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let mut chain = vec![app.customer("Level 0", None).await];
    for level in 1..=100 {
        let parent = chain.last().cloned();
        chain.push(
            app.customer(&format!("Level {level}"), parent.as_deref())
                .await,
        );
    }
    let other = app.customer("Other root", None).await;
    let child = app.customer("Other child", Some(&other)).await;
    let before = app.snapshot().await;

    let error = app
        .error(
            "mutation($p: ID!) { createCustomer(input: { title: \"Too deep\", parentId: $p }) { customer { id } } }",
            json!({ "p": chain[100] }),
        )
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("parentId"))
    );
    // A two-level subtree fits below depth 98 (ending at 100), not below 99.
    let error = app
        .error(MOVE, json!({ "id": other, "parent": chain[99] }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("newParentId"))
    );
    assert_eq!(app.snapshot().await, before);
    let data = app
        .data(MOVE, json!({ "id": other, "parent": chain[98] }))
        .await;
    assert_eq!(data["moveCustomer"]["customer"]["depth"], 99);
    let data = app
        .data(
            "query($id: ID!) { customer(id: $id) { depth ancestors { id } } }",
            json!({ "id": child }),
        )
        .await;
    assert_eq!(data["customer"]["depth"], 100);
    assert_eq!(data["customer"]["ancestors"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn a_subtree_never_takes_in_a_sibling_whose_sort_key_begins_like_its_root() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    // Same title, and one number the prefix of the other: their sort keys
    // share a prefix, their subtrees nothing.
    let a1 = create_numbered(&app, "Acme", "A1", None).await;
    let a10 = create_numbered(&app, "Acme", "A10", None).await;
    let a1_child = create_numbered(&app, "Zeta", "A1-1", Some(&a1)).await;
    create_numbered(&app, "Beta", "A10-1", Some(&a10)).await;
    create_numbered(&app, "Gamma", "A1-1-1", Some(&a1_child)).await;

    assert_eq!(descendant_titles(&app, &a1).await, ["Zeta", "Gamma"]);
    assert_eq!(descendant_titles(&app, &a10).await, ["Beta"]);
    let data = app.data(DESCENDANTS, json!({ "id": a1, "first": 1 })).await;
    assert_eq!(data["customer"]["descendants"]["totalCount"], 2);
    assert_eq!(data["customer"]["descendantCount"], 2);
}

/// Every customer's descendantCount is a counter the database keeps in the
/// transaction of each change; after random creates, moves and cascade
/// deletes through the API, each equals a recount of its subtree.
#[tokio::test]
async fn descendant_counts_equal_a_recount_after_random_changes() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    let mut rng = StdRng::seed_from_u64(11);
    let mut ids: Vec<String> = Vec::new();
    for round in 0..160 {
        let pick = |rng: &mut StdRng, ids: &[String]| ids[rng.random_range(0..ids.len())].clone();
        match rng.random_range(0..10) {
            // Mostly creations, under a random customer or at the top.
            0..6 => {
                let parent =
                    (!ids.is_empty() && rng.random_bool(0.8)).then(|| pick(&mut rng, &ids));
                ids.push(app.customer(&format!("C{round}"), parent.as_deref()).await);
            }
            6..9 if ids.len() > 2 => {
                let id = pick(&mut rng, &ids);
                let parent = rng.random_bool(0.8).then(|| pick(&mut rng, &ids));
                // A move under its own subtree is refused; that is fine here.
                app.post(
                    Some(&app.tenant.api_key),
                    MOVE,
                    json!({ "id": id, "parent": parent }),
                )
                .await;
            }
            9 if ids.len() > 2 => {
                let id = pick(&mut rng, &ids);
                let data = app.data(DELETE, json!({ "id": id, "cascade": true })).await;
                let gone: Vec<String> = data["deleteCustomer"]["deletedCustomerIds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                ids.retain(|id| !gone.contains(id));
            }
            _ => {}
        }
    }
    assert!(ids.len() > 20, "the tree kept some shape: {}", ids.len());
    let wrong: Vec<(i64, i32, i64)> = sqlx::query_as(
        "SELECT c.id, c.descendant_count,
                (SELECT count(*) FROM customers d
                 WHERE d.tenant_id = c.tenant_id AND d.path <@ c.path AND d.id <> c.id)
         FROM customers c
         WHERE c.descendant_count <> (SELECT count(*) FROM customers d
                 WHERE d.tenant_id = c.tenant_id AND d.path <@ c.path AND d.id <> c.id)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(wrong, [], "counters that differ from a recount");
    let deep: i64 = sqlx::query_scalar("SELECT max(descendant_count)::bigint FROM customers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(deep > 5, "some subtree grew: {deep}");
    // The API answers the counter.
    for id in ids.iter().take(10) {
        let data = app.data(DESCENDANTS, json!({ "id": id, "first": 1 })).await;
        let counted = data["customer"]["descendantCount"].as_i64().unwrap();
        let total = data["customer"]["descendants"]["totalCount"]
            .as_i64()
            .unwrap();
        assert_eq!(counted, total, "{id}");
    }
}

/// Creations under the same customer at the same moment each add to their
/// ancestors' counts; none waits on another in a cycle (a deadlock).
#[tokio::test]
async fn concurrent_creations_under_one_customer_all_count() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    let root = app.customer("Root", None).await;
    let parent = app.customer("Parent", Some(&root)).await;
    // Numbers of their own: no shared counter orders them.
    let titles: Vec<(String, String)> = (0..16)
        .map(|n| (format!("Child {n}"), format!("K-{n}")))
        .collect();
    futures_util::future::join_all(
        titles
            .iter()
            .map(|(title, number)| create_numbered(&app, title, number, Some(&parent))),
    )
    .await;
    let data = app
        .data(DESCENDANTS, json!({ "id": root, "first": 1 }))
        .await;
    assert_eq!(data["customer"]["descendantCount"], 17);
}
