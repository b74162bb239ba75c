//! What operators do to the queue, end to end against the real worker:
//! cancel a job, pause and resume a kind, retry many jobs by a filter, find
//! jobs by recipient, user or customer, and read the throughput per minute.

use canopy_tests::{TestApp, TestDb, eventually, global_id_number, string_at};
use serde_json::{Value, json};

use crate::jobs::{delivery_in, invite, waiting_for_the_server};

const CANCEL: &str = "mutation($id: ID!) {
  cancelJob(id: $id) { id state attempts lastError
    lastAction { action at by { apiKey { id } user { id } } } }
}";

const PAUSE: &str = "mutation($kind: JobKind!) {
  pauseJobKind(kind: $kind) { kind pending paused { at by { apiKey { id } } } }
}";

const RESUME: &str = "mutation($kind: JobKind!) {
  resumeJobKind(kind: $kind) { kind paused { at } }
}";

const RETRY_MANY: &str = "mutation($filter: JobFilter!) {
  retryJobs(filter: $filter) { retried more }
}";

const FIND: &str = "query($recipient: String, $userId: ID, $customerId: ID, $state: JobState) {
  jobQueue { jobs(recipient: $recipient, userId: $userId, customerId: $customerId,
                  state: $state, first: 10) {
    totalCount totalCountIsExact nodes { id recipient state lastAction { action } } } }
}";

const THROUGHPUT: &str = "query {
  jobQueue { kinds { kind throughput { minute done retried killed } } }
}";

/// The id of the key the test's tenant calls with.
async fn own_key_id(app: &TestApp) -> String {
    let data = app
        .data("query { viewer { apiKey { id } } }", json!({}))
        .await;
    string_at(&data, &["viewer", "apiKey", "id"])
}

/// The ledger's `run_at` of a job is 'infinity': the relay holds it.
async fn held(app: &TestApp, job: &str) -> bool {
    sqlx::query_scalar("SELECT run_at = 'infinity' FROM jobs WHERE id = $1")
        .bind(global_id_number(job))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn recipients(data: &Value) -> Vec<String> {
    let mut found: Vec<String> = data["jobQueue"]["jobs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["recipient"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_cancelled_job_is_never_sent_and_says_who_cancelled_it() {
    let db = TestDb::new().await;
    let mut app = TestApp::spawn_with_mail_stopped(db.pool()).await;
    let customer = app.customer("Globex", None).await;
    let kept = invite(&app, &customer, "kept@globex.test").await;
    let dropped = invite(&app, &customer, "dropped@globex.test").await;
    let waiting = delivery_in(&app, &dropped, "AWAITING_DISPATCH").await;
    let job = waiting["id"].as_str().unwrap().to_owned();

    let data = app.data(CANCEL, json!({ "id": job })).await;
    let cancelled = &data["cancelJob"];
    assert_eq!(cancelled["state"], "KILLED");
    let key = own_key_id(&app).await;
    assert_eq!(
        cancelled["lastError"], "cancelled by an API key (see lastAction)",
        "the error, shown to the user it is addressed to as well, names no one: {cancelled}"
    );
    assert_eq!(cancelled["lastAction"]["action"], "CANCELLED");
    assert_eq!(cancelled["lastAction"]["by"]["apiKey"]["id"], key);
    assert!(cancelled["lastAction"]["by"]["user"].is_null());

    // Only a job not yet running is cancelled.
    let again = app.error(CANCEL, json!({ "id": job })).await;
    assert_eq!(again.code, "FAILED_PRECONDITION");
    assert!(again.message.contains("KILLED"), "{}", again.message);

    app.start_worker();
    app.mail()
        .wait_for("kept@globex.test", "set up your account")
        .await;
    let done = delivery_in(&app, &kept, "DONE").await;
    let finished = app.error(CANCEL, json!({ "id": done["id"] })).await;
    assert_eq!(finished.code, "FAILED_PRECONDITION");
    assert!(finished.message.contains("DONE"), "{}", finished.message);
    let nothing = app.error(CANCEL, json!({ "id": dropped })).await;
    assert_eq!(nothing.code, "NOT_FOUND", "a user's id names no job");
    let garbage = app.error(CANCEL, json!({ "id": "not an id" })).await;
    assert_eq!(
        (garbage.code.as_str(), garbage.field.as_deref()),
        ("BAD_USER_INPUT", Some("id"))
    );

    // The relay handed out what was due while the kept one went: the
    // cancelled one stayed in the ledger, unsent and unattempted.
    let still = delivery_in(&app, &dropped, "KILLED").await;
    assert_eq!(still["attempts"], 0, "{still}");
    assert!(app.mail().messages_to("dropped@globex.test").is_empty());

    // Another tenant's operator cannot see it, let alone cancel it.
    let other = app.create_tenant("Other").await;
    let hidden = app
        .error_as(Some(&other.api_key), CANCEL, json!({ "id": job }))
        .await;
    assert_eq!(hidden.code, "NOT_FOUND");

    // A bulk retry leaves what an operator cancelled alone; retryJob
    // brings it back, and says who did.
    let data = app
        .data(RETRY_MANY, json!({ "filter": { "state": "KILLED" } }))
        .await;
    assert_eq!(data["retryJobs"], json!({ "retried": 0, "more": false }));
    let data = app
        .data(
            "mutation($id: ID!) { retryJob(id: $id) { state lastAction { action by { apiKey { id } } } } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(data["retryJob"]["lastAction"]["action"], "RETRIED");
    assert_eq!(data["retryJob"]["lastAction"]["by"]["apiKey"]["id"], key);
    app.mail()
        .wait_for("dropped@globex.test", "set up your account")
        .await;
    assert_eq!(delivery_in(&app, &dropped, "DONE").await["attempts"], 1);
}

#[tokio::test]
async fn a_job_drawn_by_a_worker_and_then_cancelled_is_never_sent() {
    let db = TestDb::new().await;
    let mut app = TestApp::spawn_with_mail(db.pool()).await;
    let customer = app.customer("Globex", None).await;
    app.smtp.as_mut().unwrap().stop().await;
    let drawn = invite(&app, &customer, "drawn@globex.test").await;
    // Handed to Redis again after its first attempt found the server
    // away: a worker holds it, waiting for the server before it claims.
    let pending = waiting_for_the_server(&app, &drawn).await;
    let data = app.data(CANCEL, json!({ "id": pending["id"] })).await;
    assert_eq!(data["cancelJob"]["state"], "KILLED");

    app.smtp.as_mut().unwrap().restart().await;
    let after = invite(&app, &customer, "after@globex.test").await;
    app.mail()
        .wait_for("after@globex.test", "set up your account")
        .await;
    delivery_in(&app, &after, "DONE").await;
    let killed = delivery_in(&app, &drawn, "KILLED").await;
    assert_eq!(killed["attempts"], 0, "{killed}");
    assert!(app.mail().messages_to("drawn@globex.test").is_empty());
}

#[tokio::test]
async fn a_paused_kind_is_held_even_when_drawn_and_sent_once_resumed() {
    let db = TestDb::new().await;
    let mut app = TestApp::spawn_with_mail(db.pool()).await;
    let customer = app.customer("Globex", None).await;

    // A job a worker already drew when the pause came.
    app.smtp.as_mut().unwrap().stop().await;
    let drawn = invite(&app, &customer, "drawn@globex.test").await;
    let drawn_job = delivery_in(&app, &drawn, "PENDING").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = app.data(PAUSE, json!({ "kind": "INVITATION" })).await;
    let paused = &data["pauseJobKind"];
    assert_eq!(paused["kind"], "INVITATION");
    assert_eq!(
        paused["paused"]["by"]["apiKey"]["id"],
        own_key_id(&app).await
    );
    let twice = app.error(PAUSE, json!({ "kind": "INVITATION" })).await;
    assert_eq!(twice.code, "FAILED_PRECONDITION");
    app.smtp.as_mut().unwrap().restart().await;

    // A job written while paused, and one of another tenant, unpaused.
    let later = invite(&app, &customer, "later@globex.test").await;
    let later_job = delivery_in(&app, &later, "AWAITING_DISPATCH").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create_tenant("Other").await;
    let elsewhere = app
        .data_as(
            &other.api_key,
            "mutation { createCustomer(input: { title: \"Elsewhere\" }) { customer { id } } }",
            json!({}),
        )
        .await;
    app.data_as(
        &other.api_key,
        "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"free@other.test\",
           activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({ "c": string_at(&elsewhere, &["createCustomer", "customer", "id"]) }),
    )
    .await;
    app.mail()
        .wait_for("free@other.test", "set up your account")
        .await;

    // Both wait in the ledger, held by the relay, no attempt counted: the
    // drawn one went back when the worker could claim it.
    for (user, job) in [(&drawn, &drawn_job), (&later, &later_job)] {
        eventually("the relay to hold the paused job", async || {
            if held(&app, job).await {
                Ok(())
            } else {
                Err(format!("{job} not held"))
            }
        })
        .await;
        let waiting = delivery_in(&app, user, "AWAITING_DISPATCH").await;
        assert_eq!(waiting["attempts"], 0, "{waiting}");
    }
    assert!(app.mail().messages_to("drawn@globex.test").is_empty());
    assert!(app.mail().messages_to("later@globex.test").is_empty());
    let queue = app
        .data(
            "query { jobQueue { kinds { kind awaitingDispatch paused { at } } } }",
            json!({}),
        )
        .await;
    let invitations = queue["jobQueue"]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "INVITATION")
        .unwrap()
        .clone();
    assert!(invitations["paused"]["at"].is_string(), "{invitations}");
    assert_eq!(invitations["awaitingDispatch"], 2, "{invitations}");
    let others = app
        .data_as(
            &other.api_key,
            "query { jobQueue { kinds { kind paused { at } } } }",
            json!({}),
        )
        .await;
    assert!(
        others["jobQueue"]["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["paused"].is_null()),
        "a pause is the tenant's own: {others}"
    );

    let data = app.data(RESUME, json!({ "kind": "INVITATION" })).await;
    assert!(data["resumeJobKind"]["paused"].is_null());
    for (user, address) in [(&drawn, "drawn@globex.test"), (&later, "later@globex.test")] {
        app.mail().wait_for(address, "set up your account").await;
        assert_eq!(delivery_in(&app, user, "DONE").await["attempts"], 1);
        assert_eq!(app.mail().messages_to(address).len(), 1);
    }
    let again = app.error(RESUME, json!({ "kind": "INVITATION" })).await;
    assert_eq!(again.code, "FAILED_PRECONDITION");
}

#[tokio::test]
async fn a_bulk_retry_retries_exactly_the_jobs_its_filter_names() {
    let db = TestDb::new().await;
    let app = TestApp::spawn_with_mail(db.pool()).await;
    let globex = app.customer("Globex", None).await;
    let initech = app.customer("Initech", None).await;
    app.mail()
        .refuse_with(Some("550 5.1.1 no such mailbox, for now"));
    let ann = invite(&app, &globex, "ann@globex.test").await;
    let bob = invite(&app, &globex, "bob@globex.test").await;
    let cy = invite(&app, &initech, "cy@initech.test").await;
    for user in [&ann, &bob, &cy] {
        delivery_in(&app, user, "KILLED").await;
    }

    // Found by recipient (whole address, any case), user and customer.
    let by_recipient = app
        .data(FIND, json!({ "recipient": "BOB@Globex.test" }))
        .await;
    assert_eq!(recipients(&by_recipient), ["bob@globex.test"]);
    assert_eq!(by_recipient["jobQueue"]["jobs"]["totalCount"], 1);
    assert_eq!(by_recipient["jobQueue"]["jobs"]["totalCountIsExact"], true);
    let by_user = app.data(FIND, json!({ "userId": ann })).await;
    assert_eq!(recipients(&by_user), ["ann@globex.test"]);
    let by_customer = app.data(FIND, json!({ "customerId": globex })).await;
    assert_eq!(
        recipients(&by_customer),
        ["ann@globex.test", "bob@globex.test"]
    );
    assert_eq!(by_customer["jobQueue"]["jobs"]["totalCount"], 2);
    let bad = app.error(FIND, json!({ "customerId": "nonsense" })).await;
    assert_eq!(
        (bad.code.as_str(), bad.field.as_deref()),
        ("BAD_USER_INPUT", Some("customerId"))
    );

    app.mail().refuse_with(None);
    let before = app.snapshot().await;
    let refused = app
        .error(RETRY_MANY, json!({ "filter": { "state": "DONE" } }))
        .await;
    assert_eq!(
        (refused.code.as_str(), refused.field.as_deref()),
        ("BAD_USER_INPUT", Some("filter.state"))
    );
    let bad = app
        .error(RETRY_MANY, json!({ "filter": { "userId": "nonsense" } }))
        .await;
    assert_eq!(
        (bad.code.as_str(), bad.field.as_deref()),
        ("BAD_USER_INPUT", Some("filter.userId"))
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused retry changes nothing"
    );

    let data = app
        .data(
            RETRY_MANY,
            json!({ "filter": { "recipient": "bob@globex.test", "state": "KILLED" } }),
        )
        .await;
    assert_eq!(data["retryJobs"], json!({ "retried": 1, "more": false }));
    app.mail()
        .wait_for("bob@globex.test", "set up your account")
        .await;
    delivery_in(&app, &bob, "DONE").await;

    let data = app
        .data(
            RETRY_MANY,
            json!({ "filter": { "kind": "INVITATION", "customerId": globex } }),
        )
        .await;
    assert_eq!(
        data["retryJobs"],
        json!({ "retried": 1, "more": false }),
        "bob's job is DONE: only ann's is retried"
    );
    app.mail()
        .wait_for("ann@globex.test", "set up your account")
        .await;
    delivery_in(&app, &ann, "DONE").await;
    let retried = app.data(FIND, json!({ "userId": ann })).await;
    assert_eq!(
        retried["jobQueue"]["jobs"]["nodes"][0]["lastAction"]["action"],
        "RETRIED"
    );

    // Initech's job was named by no filter: still dead, never sent.
    let dead = app
        .data(FIND, json!({ "customerId": initech, "state": "KILLED" }))
        .await;
    assert_eq!(recipients(&dead), ["cy@initech.test"]);
    assert!(dead["jobQueue"]["jobs"]["nodes"][0]["lastAction"].is_null());
    for address in ["ann@globex.test", "bob@globex.test"] {
        assert_eq!(app.mail().messages_to(address).len(), 1);
    }
    assert!(app.mail().messages_to("cy@initech.test").is_empty());

    // The worker that sent them, by its heartbeat.
    let data = app
        .data(
            "query { jobQueue { activeWorkers workers { id active startedAt lastHeartbeatAt } } }",
            json!({}),
        )
        .await;
    let workers = data["jobQueue"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{data}");
    assert_eq!(workers[0]["active"], true);
    assert_eq!(data["jobQueue"]["activeWorkers"], 1);
    assert!(workers[0]["lastHeartbeatAt"].as_str() >= workers[0]["startedAt"].as_str());

    // The last hour's throughput: three killed, then two sent.
    let data = app.data(THROUGHPUT, json!({})).await;
    let kinds = data["jobQueue"]["kinds"].as_array().unwrap();
    let invitations = kinds.iter().find(|k| k["kind"] == "INVITATION").unwrap();
    let minutes = invitations["throughput"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let sum = |field: &str| -> i64 { minutes.iter().map(|m| m[field].as_i64().unwrap()).sum() };
    assert_eq!((sum("done"), sum("retried"), sum("killed")), (2, 0, 3));
    let first = minutes[0]["minute"].as_str().unwrap();
    let last = minutes[59]["minute"].as_str().unwrap();
    assert!(first < last, "oldest first: {first} .. {last}");
    for other in kinds.iter().filter(|k| k["kind"] != "INVITATION") {
        assert!(
            other["throughput"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["done"] == 0 && m["killed"] == 0),
            "{other}"
        );
    }
}

#[tokio::test]
async fn finding_jobs_by_user_or_customer_needs_their_read_scope_and_account_notices_need_every_scope()
 {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let customer = app.customer("Globex", None).await;
    let user = invite(&app, &customer, "ann@globex.test").await;
    let operator = app.key_with(&["JOBS_READ", "JOBS_WRITE"]).await;

    // By recipient, the queue's own view; by user or customer, the answer
    // says which exist, so it needs the scope that reads them.
    let data = app
        .data_as(&operator, FIND, json!({ "recipient": "ann@globex.test" }))
        .await;
    assert_eq!(recipients(&data), ["ann@globex.test"]);
    for (variables, scope) in [
        (json!({ "userId": user }), "USERS_READ"),
        (json!({ "customerId": customer }), "CUSTOMERS_READ"),
    ] {
        let refused = app.error_as(Some(&operator), FIND, variables.clone()).await;
        assert_eq!(refused.code, "FORBIDDEN");
        assert!(refused.message.contains(scope), "{}", refused.message);
        let filter = json!({ "filter": variables });
        let refused = app.error_as(Some(&operator), RETRY_MANY, filter).await;
        assert_eq!(refused.code, "FORBIDDEN");
    }

    // A notice about a person's own account is its safeguard: a JOBS_WRITE
    // key neither cancels nor pauses it; a caller holding every scope may.
    let tenant = global_id_number(&app.tenant.tenant_id);
    let notice: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (tenant_id, kind, payload, recipient, max_attempts)
         VALUES ($1, 'ACCOUNT_NOTICE', '{}', 'ann@globex.test', 8) RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let notice = canopy_api::ids::of(canopy_core::id::JobId(notice));
    let before = app.snapshot().await;
    let refused = app
        .error_as(Some(&operator), CANCEL, json!({ "id": notice }))
        .await;
    assert_eq!(refused.code, "FORBIDDEN");
    let refused = app
        .error_as(Some(&operator), PAUSE, json!({ "kind": "ACCOUNT_NOTICE" }))
        .await;
    assert_eq!(refused.code, "FORBIDDEN");
    assert_eq!(app.snapshot().await, before, "refused: nothing changed");
    let paused = app
        .data_as(&operator, PAUSE, json!({ "kind": "INVITATION" }))
        .await;
    assert_eq!(paused["pauseJobKind"]["kind"], "INVITATION");

    let data = app.data(CANCEL, json!({ "id": notice })).await;
    assert_eq!(data["cancelJob"]["state"], "KILLED");
    let data = app.data(PAUSE, json!({ "kind": "ACCOUNT_NOTICE" })).await;
    assert_eq!(data["pauseJobKind"]["kind"], "ACCOUNT_NOTICE");
}
