//! Webhooks to a receiver the test starts: events arrive signed and
//! verifiable by a Standard Webhooks library, a receiver that fails gets
//! retries and then the event, a receiver down for a while gets everything
//! once back, one tenant's endpoint never gets another's events, a failing
//! endpoint is disabled and its owners told, and the same events can be
//! read with `events(after:)`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use canopy_tests::{TestApp, TestDb, eventually, string_at};
use serde_json::{Value, json};

const ALLOW_PRIVATE: (&str, &str) = ("CANOPY_WEBHOOK_ALLOW_PRIVATE", "true");

#[derive(Default)]
struct Inbox {
    received: Vec<(HeaderMap, String)>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: VecDeque<u16>,
}

/// A receiver on 127.0.0.1: records what it gets and answers as told.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Mutex<Inbox>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, answers)
    }

    fn serve(listener: tokio::net::TcpListener, answers: &[u16]) -> Receiver {
        let inbox = Arc::new(Mutex::new(Inbox {
            received: Vec::new(),
            answers: answers.iter().copied().collect(),
        }));
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inbox.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            inbox,
            server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<(HeaderMap, Value)> {
        self.inbox
            .lock()
            .unwrap()
            .received
            .iter()
            .map(|(headers, body)| (headers.clone(), serde_json::from_str(body).unwrap()))
            .collect()
    }

    /// Waits until `count` deliveries were answered 200.
    async fn wait_for(&self, count: usize) -> Vec<(HeaderMap, Value)> {
        eventually("webhooks received", || async {
            let got = self.received();
            (got.len() >= count)
                .then_some(got.clone())
                .ok_or(format!("{} so far", got.len()))
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inbox = inbox.lock().unwrap();
    let status = inbox.answers.pop_front().unwrap_or(200);
    if status == 200 {
        inbox
            .received
            .push((headers, String::from_utf8(body.to_vec()).unwrap()));
    }
    StatusCode::from_u16(status).unwrap()
}

const REGISTER: &str = "mutation($url: String!, $events: [EventType!]!) {
  createWebhookEndpoint(url: $url, events: $events) { endpoint { id enabled } secret } }";

const DELIVERIES: &str = "{ webhookEndpoints { id enabled disabledReason failures
  deliveries { nodes { id state attempts lastStatus lastLatencyMs lastError event { id typeName } } } } }";

async fn register(app: &TestApp, key: &str, url: &str, events: Value) -> (String, String) {
    let data = app
        .data_as(key, REGISTER, json!({ "url": url, "events": events }))
        .await;
    (
        string_at(&data, &["createWebhookEndpoint", "endpoint", "id"]),
        string_at(&data, &["createWebhookEndpoint", "secret"]),
    )
}

#[tokio::test]
async fn events_arrive_signed_and_match_the_event_log() {
    let db = TestDb::new().await;
    let app = TestApp::spawn_with_mail_and_env(db.pool(), &[ALLOW_PRIVATE]).await;
    let receiver = Receiver::start(&[]).await;
    let key = app.tenant.api_key.clone();
    let (_, secret) = register(
        &app,
        &key,
        &receiver.url(),
        json!(["CUSTOMER_CREATED", "USER_CREATED", "CUSTOMER_MOVED"]),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    let root = app.customer("Root", None).await;
    let shop = app.customer("Shop", None).await;
    app.data(
        "mutation($c: ID!, $p: ID!) { moveCustomer(id: $c, newParentId: $p) { customer { id } } }",
        json!({ "c": shop, "p": root }),
    )
    .await;
    // Not asked for: no delivery.
    app.data(
        "mutation($c: ID!) { updateCustomer(id: $c, input: { info: \"x\" }) { customer { id } } }",
        json!({ "c": shop }),
    )
    .await;

    let got = receiver.wait_for(3).await;
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut seen = Vec::new();
    for (headers, body) in &got {
        verifier
            .verify(body.to_string().as_bytes(), headers)
            .expect("a valid Standard Webhooks signature");
        seen.push((body["type"].clone(), body["data"]["id"].clone()));
    }
    seen.sort_by_key(|s| (s.0.to_string(), s.1.to_string()));
    assert_eq!(
        seen,
        [
            (json!("customer.created"), json!(root)),
            (json!("customer.created"), json!(shop)),
            (json!("customer.moved"), json!(shop)),
        ]
    );
    // A signature under another secret does not verify.
    let other = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert!(
        other
            .verify(got[0].1.to_string().as_bytes(), &got[0].0)
            .is_err()
    );

    // The log: each delivered once, answered 200.
    let log = app.data(DELIVERIES, json!({})).await;
    let deliveries = log["webhookEndpoints"][0]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(deliveries.len(), 3);
    for delivery in &deliveries {
        assert_eq!(delivery["state"], "DELIVERED");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["lastStatus"], 200);
        assert!(delivery["lastLatencyMs"].is_i64());
    }

    // The same events, in order, from events(after:), with the
    // webhook-id of their deliveries; and the update nobody subscribed to.
    let events = app
        .data(
            "{ events(first: 100) { nodes { id typeName data } } }",
            json!({}),
        )
        .await;
    let events = events["events"]["nodes"].as_array().unwrap().clone();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["typeName"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "customer.created",
            "customer.moved",
            "customer.updated"
        ]
    );
    let ids: Vec<String> = got
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    for event in &events[..3] {
        assert!(ids.contains(&event["id"].as_str().unwrap().to_owned()));
    }
    let page = app
        .data("{ events(first: 2) { pageInfo { endCursor } } }", json!({}))
        .await;
    let rest = app
        .data(
            "query($after: String) { events(after: $after) { nodes { typeName } } }",
            json!({ "after": page["events"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        rest["events"]["nodes"],
        json!([{ "typeName": "customer.moved" }, { "typeName": "customer.updated" }])
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_then_the_event_and_a_down_one_everything_once_back() {
    let db = TestDb::new().await;
    let app = TestApp::spawn_with_mail_and_env(db.pool(), &[ALLOW_PRIVATE]).await;
    let key = app.tenant.api_key.clone();
    let failing = Receiver::start(&[500, 503]).await;
    register(&app, &key, &failing.url(), json!(["CUSTOMER_CREATED"])).await;
    // A receiver not yet listening: its port is free until it starts.
    let parked = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_addr = parked.local_addr().unwrap();
    drop(parked);
    register(
        &app,
        &key,
        &format!("http://{down_addr}/hook"),
        json!(["CUSTOMER_CREATED"]),
    )
    .await;

    let made = [
        app.customer("One", None).await,
        app.customer("Two", None).await,
    ];
    let got = failing.wait_for(2).await;
    let mut ids: Vec<Value> = got.iter().map(|(_, b)| b["data"]["id"].clone()).collect();
    ids.sort_by_key(Value::to_string);
    let mut expected = made.iter().map(|id| json!(id)).collect::<Vec<_>>();
    expected.sort_by_key(Value::to_string);
    assert_eq!(ids, expected);

    // The down receiver has failed attempts on record; then it comes up.
    eventually("failed attempts on record", || async {
        let log = app.data(DELIVERIES, json!({})).await;
        let down = log["webhookEndpoints"][1]["deliveries"]["nodes"][0].clone();
        (down["attempts"].as_i64() >= Some(1)
            && down["lastStatus"].is_null()
            && down["lastError"].is_string())
        .then_some(())
        .ok_or(down.to_string())
    })
    .await;
    let listener = tokio::net::TcpListener::bind(down_addr).await.unwrap();
    let back = Receiver::serve(listener, &[]);
    let got = back.wait_for(2).await;
    assert_eq!(got.len(), 2);

    // Each delivered once; the failing one after three attempts.
    let log = app.data(DELIVERIES, json!({})).await;
    let failing_log = &log["webhookEndpoints"][0]["deliveries"]["nodes"];
    let attempts: i64 = failing_log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, 4, "two retries in all: {failing_log}");
    assert!(
        failing_log
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "DELIVERED")
    );
}

#[tokio::test]
async fn one_tenants_endpoint_never_gets_anothers_events() {
    let db = TestDb::new().await;
    let app = TestApp::spawn_with_mail_and_env(db.pool(), &[ALLOW_PRIVATE]).await;
    let other = app.create_tenant("Other").await;
    let ours = Receiver::start(&[]).await;
    let theirs = Receiver::start(&[]).await;
    register(
        &app,
        &app.tenant.api_key,
        &ours.url(),
        json!(["CUSTOMER_CREATED"]),
    )
    .await;
    register(
        &app,
        &other.api_key,
        &theirs.url(),
        json!(["CUSTOMER_CREATED"]),
    )
    .await;
    let mine = app.customer("Mine", None).await;
    let data = app
        .data_as(
            &other.api_key,
            "mutation { createCustomer(input: { title: \"Theirs\" }) { customer { id } } }",
            json!({}),
        )
        .await;
    let their_customer = string_at(&data, &["createCustomer", "customer", "id"]);
    let got = ours.wait_for(1).await;
    let their_got = theirs.wait_for(1).await;
    // Both sent: nothing more is on its way to either.
    eventually("both deliveries recorded", || async {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE state <> 'DELIVERED'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (pending == 0).then_some(()).ok_or(pending)
    })
    .await;
    assert_eq!(ours.received().len(), 1);
    assert_eq!(theirs.received().len(), 1);
    assert_eq!(got[0].1["data"]["id"], json!(mine));
    assert_eq!(their_got[0].1["data"]["id"], json!(their_customer));
    // Nor reads them.
    let events = app
        .data_as(&other.api_key, "{ events { nodes { data } } }", json!({}))
        .await;
    assert_eq!(events["events"]["nodes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_endpoint_is_disabled_its_owners_told_and_it_can_be_redelivered() {
    let db = TestDb::new().await;
    let env = [
        ALLOW_PRIVATE,
        ("CANOPY_WEBHOOK_MAX_ATTEMPTS", "1"),
        ("CANOPY_WEBHOOK_DISABLE_AFTER", "2"),
    ];
    let app = TestApp::spawn_with_mail_and_env(db.pool(), &env).await;
    app.activate_admin().await;
    let receiver = Receiver::start(&[500, 500]).await;
    let key = app.tenant.api_key.clone();
    let (endpoint, _) = register(&app, &key, &receiver.url(), json!(["CUSTOMER_CREATED"])).await;
    app.customer("One", None).await;
    app.customer("Two", None).await;
    let log = eventually("the endpoint disabled", || async {
        let log = app.data(DELIVERIES, json!({})).await;
        let endpoint = log["webhookEndpoints"][0].clone();
        (endpoint["enabled"] == false)
            .then_some(endpoint.clone())
            .ok_or(endpoint.to_string())
    })
    .await;
    assert!(
        log["disabledReason"].as_str().unwrap().contains("500"),
        "{log}"
    );
    let deliveries = log["deliveries"]["nodes"].as_array().unwrap().clone();
    assert!(
        deliveries
            .iter()
            .all(|d| d["state"] == "FAILED" && d["lastStatus"] == 500)
    );
    app.mail()
        .wait_for("admin@acme.test", "webhook endpoint was disabled")
        .await;

    // While disabled, new events wait in the log and get no delivery.
    app.customer("Three", None).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);

    // Enabled again, a failed delivery sent again arrives.
    app.data(
        "mutation($id: ID!, $url: String!) { updateWebhookEndpoint(id: $id, url: $url,
           events: [CUSTOMER_CREATED]) { enabled } }",
        json!({ "id": endpoint, "url": receiver.url() }),
    )
    .await;
    app.data(
        "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) }",
        json!({ "d": deliveries[0]["id"] }),
    )
    .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].1["type"], "customer.created");
}

#[tokio::test]
async fn endpoints_are_refused_inside_the_network_and_beyond_the_callers_scopes() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    for url in [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://10.0.0.8/hook",
        "https://user:pass@93.184.216.34/hook",
        "not a url",
    ] {
        let error = app
            .error(
                REGISTER,
                json!({ "url": url, "events": ["CUSTOMER_CREATED"] }),
            )
            .await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("url")),
            "{url}"
        );
    }
    let narrow = app.key_with(&["API_KEYS_WRITE", "CUSTOMERS_READ"]).await;
    let error = app
        .error_as(
            Some(&narrow),
            REGISTER,
            json!({ "url": "https://93.184.216.34/hook", "events": ["USER_CREATED"] }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    let error = app
        .error(
            REGISTER,
            json!({ "url": "https://93.184.216.34/hook", "events": [] }),
        )
        .await;
    assert_eq!(error.field.as_deref(), Some("events"));
    // A key without USERS_READ cannot change an endpoint that gets user
    // events, nor read them with events().
    let (endpoint, _) = register(
        &app,
        &app.tenant.api_key,
        "https://93.184.216.34/hook",
        json!(["USER_CREATED"]),
    )
    .await;
    let error = app
        .error_as(
            Some(&narrow),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
            json!({ "id": endpoint }),
        )
        .await;
    assert_eq!(error.code, "FORBIDDEN");
    // Nor sees it, its URL or what it was sent.
    let listed = app
        .data_as(&narrow, "{ webhookEndpoints { id url } }", json!({}))
        .await;
    assert_eq!(listed["webhookEndpoints"], json!([]));
    app.customer("C", None).await;
    app.data(
        "mutation { createUser(input: { role: TENANT_ADMIN, email: \"t@acme.test\",
           activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
        json!({}),
    )
    .await;
    let seen = app
        .data_as(&narrow, "{ events { nodes { typeName } } }", json!({}))
        .await;
    assert_eq!(
        seen["events"]["nodes"],
        json!([{ "typeName": "customer.created" }])
    );
    // Customer users read no events.
    let shop = app.customer("Shop", None).await;
    let (_, session) = app.member(&shop, "m@acme.test").await;
    let error = app
        .error_as(Some(&session), "{ events { nodes { id } } }", json!({}))
        .await;
    assert_eq!(error.code, "FORBIDDEN");
}

#[tokio::test]
async fn a_killed_job_is_an_event() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let shop = app.customer("Shop", None).await;
    app.data(
        "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"k@acme.test\",
           activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({ "c": shop }),
    )
    .await;
    let job = app
        .data(
            "{ jobQueue { jobs(first: 1) { nodes { id } } } }",
            json!({}),
        )
        .await["jobQueue"]["jobs"]["nodes"][0]["id"]
        .clone();
    app.data(
        "mutation($id: ID!) { cancelJob(id: $id) { state } }",
        json!({ "id": job }),
    )
    .await;
    let events = app
        .data(
            "{ events(first: 100) { nodes { typeName data } } }",
            json!({}),
        )
        .await;
    let killed: Vec<&Value> = events["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["typeName"] == "job.killed")
        .collect();
    assert_eq!(killed.len(), 1);
    assert_eq!(killed[0]["data"]["id"], job);
    assert_eq!(killed[0]["data"]["kind"], "INVITATION");
    assert_eq!(killed[0]["data"]["cancelled"], true);
}
