//! The Idempotency-Key header: a retried mutation runs once, a concurrent
//! repeat never runs twice, a key reused for another request is refused,
//! and an answer that held a secret is never replayed.

use canopy_tests::{TestApp, TestDb, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CREATE_USER: &str = "mutation($c: ID!, $e: String!) {
  createUser(input: { customerId: $c, email: $e, activation: SEND_ACTIVATION_EMAIL }) {
    user { id email } activationLink } }";

struct Answer {
    status: StatusCode,
    replayed: bool,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }
}

async fn send(
    app: &TestApp,
    bearer: Option<&str>,
    key: Option<&str>,
    query: &str,
    variables: Value,
) -> Answer {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: response.status(),
        replayed: header("idempotent-replayed").as_deref() == Some("true"),
        retry_after: header("retry-after"),
        body: response.json().await.unwrap(),
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn a_retried_create_user_makes_one_user_and_one_email() {
    let db = TestDb::new().await;
    let app = TestApp::spawn_with_mail(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let customer = app.customer("Acme Retail", None).await;
    let vars = json!({ "c": customer, "e": "pat@acme.test" });

    let first = send(&app, Some(&key), Some("order-1"), CREATE_USER, vars.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    let again = send(&app, Some(&key), Some("order-1"), CREATE_USER, vars.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed, "the repeat is answered from what was kept");
    assert_eq!(again.body, first.body);

    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email = 'pat@acme.test'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM jobs WHERE kind = 'INVITATION'").await,
        1
    );
    app.mail()
        .wait_for("pat@acme.test", "set up your account")
        .await;
    eventually("the invitation is sent", || async {
        let done = count(&app, "SELECT count(*) FROM jobs WHERE state = 'DONE'").await;
        (done >= 1).then_some(()).ok_or("not yet")
    })
    .await;
    assert_eq!(app.mail().messages_to("pat@acme.test").len(), 1);

    // The same key of another caller is another key; without a key the
    // request runs as always (here: the address is taken).
    let other = app
        .key_with(&["USERS_WRITE", "USERS_READ", "CUSTOMERS_READ"])
        .await;
    let theirs = send(
        &app,
        Some(&other),
        Some("order-1"),
        CREATE_USER,
        vars.clone(),
    )
    .await;
    assert!(!theirs.replayed);
    assert_eq!(theirs.code(), "CONFLICT");
    assert_eq!(theirs.body["errors"][0]["extensions"]["field"], "email");
}

#[tokio::test]
async fn concurrent_repeats_run_once() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let customer = app.customer("Acme Retail", None).await;
    let vars = json!({ "c": customer, "e": "sam@acme.test" });
    let answers = futures_util::future::join_all(
        (0..8).map(|_| send(&app, Some(&key), Some("burst"), CREATE_USER, vars.clone())),
    )
    .await;

    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email = 'sam@acme.test'"
        )
        .await,
        1
    );
    let ran: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK && !a.replayed)
        .collect();
    assert_eq!(ran.len(), 1, "exactly one ran");
    for answer in &answers {
        match (answer.status, answer.replayed) {
            (StatusCode::OK, _) => assert_eq!(answer.body, ran[0].body),
            (StatusCode::CONFLICT, false) => {
                assert_eq!(answer.code(), "CONFLICT");
                assert_eq!(answer.body["errors"][0]["extensions"]["retryAfter"], 1);
                assert_eq!(answer.retry_after.as_deref(), Some("1"));
            }
            other => panic!("unexpected answer {other:?}: {}", answer.body),
        }
    }
    // Once it is done, a repeat gets its answer.
    let later = send(&app, Some(&key), Some("burst"), CREATE_USER, vars).await;
    assert!(later.replayed);
    assert_eq!(later.body, ran[0].body);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_a_failed_run_lets_it_go() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let customer = app.customer("Acme Retail", None).await;
    send(
        &app,
        Some(&key),
        Some("k1"),
        CREATE_USER,
        json!({ "c": customer, "e": "a@acme.test" }),
    )
    .await;
    let other = send(
        &app,
        Some(&key),
        Some("k1"),
        CREATE_USER,
        json!({ "c": customer, "e": "b@acme.test" }),
    )
    .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert_eq!(other.code(), "BAD_USER_INPUT");
    assert_eq!(
        other.body["errors"][0]["extensions"]["field"],
        "Idempotency-Key"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email = 'b@acme.test'"
        )
        .await,
        0
    );

    // A run that failed having changed nothing keeps nothing: the key is
    // free for the corrected request.
    let bad = send(
        &app,
        Some(&key),
        Some("k2"),
        CREATE_USER,
        json!({ "c": customer, "e": "not an address" }),
    )
    .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    let fixed = send(
        &app,
        Some(&key),
        Some("k2"),
        CREATE_USER,
        json!({ "c": customer, "e": "c@acme.test" }),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    assert!(fixed.body["errors"].is_null(), "{}", fixed.body);

    // Malformed keys, and keys without a caller to scope them.
    for bad_key in ["has space", &"k".repeat(256)] {
        let answer = send(&app, Some(&key), Some(bad_key), CREATE_USER, json!({})).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.body["errors"][0]["extensions"]["field"],
            "Idempotency-Key"
        );
    }
    let anonymous = send(
        &app,
        None,
        Some("k3"),
        "mutation($t: ID!) { requestPasswordReset(tenantId: $t, email: \"x@acme.test\") }",
        json!({ "t": app.tenant.tenant_id }),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);
    assert_eq!(anonymous.code(), "BAD_USER_INPUT");
    // A query needs no key: it is answered afresh each time.
    for _ in 0..2 {
        let read = send(
            &app,
            Some(&key),
            Some("k1"),
            "{ viewer { scopes } }",
            json!({}),
        )
        .await;
        assert_eq!(read.status, StatusCode::OK);
        assert!(!read.replayed);
    }
}

#[tokio::test]
async fn an_answer_holding_a_secret_is_never_replayed() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let create_key = "mutation { createApiKey(name: \"partner\", scopes: [CUSTOMERS_READ]) { apiKey { id } secret } }";
    let first = send(&app, Some(&key), Some("new-key"), create_key, json!({})).await;
    let made = first.body["data"]["createApiKey"]["apiKey"]["id"].clone();
    assert!(first.body["data"]["createApiKey"]["secret"].is_string());
    let again = send(&app, Some(&key), Some("new-key"), create_key, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "CONFLICT");
    assert_eq!(again.body["errors"][0]["extensions"]["id"], made);
    assert!(
        !again.body.to_string().contains("cnpk_"),
        "no secret: {}",
        again.body
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM api_keys WHERE name = 'partner'").await,
        1
    );
    let kept: Option<String> =
        sqlx::query_scalar("SELECT body FROM idempotent_requests WHERE key = 'new-key'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, None, "the answer with the secret is not stored");

    // A displayed activation link is a secret too.
    let customer = app.customer("Acme Retail", None).await;
    let display = "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"d@acme.test\",
        activation: DISPLAY_ACTIVATION_LINK }) { user { id } activationLink } }";
    let first = send(
        &app,
        Some(&key),
        Some("show-link"),
        display,
        json!({ "c": customer }),
    )
    .await;
    let again = send(
        &app,
        Some(&key),
        Some("show-link"),
        display,
        json!({ "c": customer }),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        again.body["errors"][0]["extensions"]["id"],
        first.body["data"]["createUser"]["user"]["id"]
    );
}

#[tokio::test]
async fn a_claim_abandoned_by_a_run_that_died_is_taken_over_and_a_live_one_is_not() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let key = app.tenant.api_key.clone();
    let customer = app.customer("Acme Retail", None).await;
    let vars = json!({ "c": customer, "e": "e@acme.test" });
    let request = async_graphql::Request::new(CREATE_USER)
        .variables(async_graphql::Variables::from_json(vars.clone()));
    let hash = canopy_api::idempotency::request_hash(&request);
    let key_id: i64 = sqlx::query_scalar("SELECT min(id) FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (name, held) in [("alive", "1 hour"), ("dead", "-1 second")] {
        sqlx::query(&format!(
            "INSERT INTO idempotent_requests
                 (tenant_id, caller, key, request_hash, state, claim, held_until)
             VALUES (1, $1, '{name}', $2, 'RUNNING', 7, now() + interval '{held}')"
        ))
        .bind(format!("key:{key_id}"))
        .bind(&hash)
        .execute(&app.pool)
        .await
        .unwrap();
    }

    let waiting = send(&app, Some(&key), Some("alive"), CREATE_USER, vars.clone()).await;
    assert_eq!(waiting.status, StatusCode::CONFLICT);
    assert_eq!(waiting.body["errors"][0]["extensions"]["retryAfter"], 1);
    let taken_over = send(&app, Some(&key), Some("dead"), CREATE_USER, vars).await;
    assert_eq!(taken_over.status, StatusCode::OK, "{}", taken_over.body);
    assert!(!taken_over.replayed);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email = 'e@acme.test'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_run_whose_claim_was_taken_over_cannot_commit() {
    use canopy_core::store::idempotency::{KeyOf, claim, mark_committed};
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let of = KeyOf {
        tenant_id: canopy_core::id::TenantId(1),
        caller: "key:1".into(),
        key: "slow".into(),
    };
    let hash = b"the same request".to_vec();
    // A hold of nothing: the first run is taken for dead at once.
    let first = claim(&app.pool, &of, &hash, std::time::Duration::ZERO)
        .await
        .unwrap()
        .expect("a new key is claimed");
    let second = claim(&app.pool, &of, &hash, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("an abandoned claim is taken over");
    assert_ne!(first.claim, second.claim);
    let mut tx = app.pool.begin().await.unwrap();
    assert!(!mark_committed(&mut tx, &first).await.unwrap());
    assert!(mark_committed(&mut tx, &second).await.unwrap());
    tx.rollback().await.unwrap();
    // While the second holds it, a third only learns it is running.
    let third = claim(&app.pool, &of, &hash, std::time::Duration::from_secs(60)).await;
    assert!(third.unwrap().is_err());
}
