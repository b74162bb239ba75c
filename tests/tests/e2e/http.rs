//! Health, readiness and metrics, and /graphql as the GraphQL over HTTP
//! specification asks: content negotiation, status codes, GET.

use canopy_tests::{GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON_UTF8, JSON_UTF8, TestApp, TestDb};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "postgres": "ok", "redis": "ok" }));

    app.data("query MetricsProbe { viewer { scopes } }", json!({}))
        .await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"canopy_graphql_requests_total{operation="MetricsProbe",outcome="ok"}"#),
        "{text}"
    );
    assert!(
        text.contains("canopy_graphql_request_duration_seconds_bucket{operation=\"MetricsProbe\"")
    );

    let graphiql = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(graphiql.status(), 200);
    assert!(graphiql.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn readiness_fails_when_redis_is_unreachable() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    // The same app, pointed at a port where no Redis listens.
    let port = canopy_tests::free_port();
    let mut config = (*app.config).clone();
    config.redis_url = format!("redis://127.0.0.1:{port}");
    let state = canopy_api::AppState::new(pool, std::sync::Arc::new(config))
        .await
        .unwrap();
    let addr = canopy_tests::serve(state).await;

    let ready = app
        .client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "postgres": "ok", "redis": "unavailable" }));
}

#[tokio::test]
async fn deep_and_costly_queries_are_refused_before_running() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    app.customer("Acme", None).await;

    // Depth: innerCustomers nested past the limit.
    let mut deep = String::from("id");
    for _ in 0..9 {
        deep = format!("innerCustomers(first: 1) {{ nodes {{ {deep} }} }}");
    }
    let error = app
        .error(
            &format!("{{ customers(first: 1) {{ nodes {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error.code, "BAD_USER_INPUT", "{error:?}");
    assert!(error.message.contains("too deep"), "{}", error.message);

    // Cost: connections multiply by their page size.
    let costly = "{ customers(first: 100) { nodes { innerCustomers(first: 100) { nodes {
        innerCustomers(first: 100) { nodes { id } } } } } } }";
    let error = app.error(costly, json!({})).await;
    assert_eq!(error.code, "BAD_USER_INPUT");
    assert!(error.message.contains("complex"), "{}", error.message);

    // The same shape with small pages is fine.
    let modest = "{ customers(first: 10) { nodes { innerCustomers(first: 10) { nodes {
        innerCustomers(first: 10) { nodes { id } } } } } } }";
    app.data(modest, json!({})).await;

    // Oversized bodies are refused outright.
    let huge = format!(
        "{{ customers(search: \"{}\") {{ totalCount }} }}",
        "x".repeat(300_000)
    );
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .json(&json!({ "query": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(body.get("data").is_none());
}

/// A query sent again is checked and answered as the first time: the
/// process keeps parsed documents, never what they were allowed or found.
#[tokio::test]
async fn a_query_sent_again_is_checked_and_answered_anew() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let acme = app.customer("Acme", None).await;
    let globex = app.customer("Globex", None).await;
    let reader = app.key_with(&["USERS_READ"]).await;
    let by_id = "query Find($id: ID!) { customer(id: $id) { title } }";
    let mut deep = String::from("id");
    for _ in 0..9 {
        deep = format!("innerCustomers(first: 1) {{ nodes {{ {deep} }} }}");
    }
    let deep = format!("{{ customers(first: 1) {{ nodes {{ {deep} }} }} }}");
    for _ in 0..3 {
        for (id, title) in [(&acme, "Acme"), (&globex, "Globex")] {
            let data = app.data(by_id, json!({ "id": id })).await;
            assert_eq!(data["customer"]["title"], title);
        }
        let missing = app.error(by_id, json!({})).await;
        assert!(missing.message.contains("$id"), "{missing:?}");
        let refused = app
            .error_as(Some(&reader), by_id, json!({ "id": acme }))
            .await;
        assert_eq!(
            refused.code, "FORBIDDEN",
            "a kept document keeps no verdict"
        );
        let too_deep = app.error(&deep, json!({})).await;
        assert!(too_deep.message.contains("too deep"), "{too_deep:?}");
    }
}

/// A response lists an object's fields in the order the query asked for
/// them, as GraphQL requires (the answer is written straight from the
/// executed response, never through a map that sorts its keys).
#[tokio::test]
async fn response_fields_keep_the_query_order() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let acme = app.customer("Acme", None).await;
    let text = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .json(&json!({
            "query": "query($id: ID!) { customer(id: $id) { title number id } }",
            "variables": { "id": acme },
        }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {text}"))
    };
    assert!(at("\"title\"") < at("\"number\""), "{text}");
    assert!(at("\"number\"") < at("\"id\""), "{text}");
}

/// A browser's own Accept when it opens a page.
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// What an answer is: status, Content-Type and body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            content_type,
            body,
        }
    }

    /// Asserts a request error: `status`, `content_type`, errors with a
    /// code, and no `data`.
    fn refused(&self, status: u16, content_type: &str) -> &Self {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type, content_type, "{self:?}");
        assert!(self.body.get("data").is_none(), "no data: {self:?}");
        let errors = self.body["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{self:?}");
        for error in errors {
            assert!(error["extensions"]["code"].is_string(), "{self:?}");
        }
        self
    }

    /// Asserts an executed request: 200, `content_type`, `data` present
    /// and as many errors as `errors`.
    fn executed(&self, content_type: &str, errors: usize) -> &Value {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(self.content_type, content_type, "{self:?}");
        assert!(self.body.get("data").is_some(), "data: {self:?}");
        let found = self.body["errors"].as_array().map_or(0, Vec::len);
        assert_eq!(found, errors, "{self:?}");
        &self.body["data"]
    }

    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap()
    }
}

/// POSTs `body` as JSON with the tenant's key, accepting `accept`.
async fn post(app: &TestApp, accept: Option<&str>, body: &Value) -> Answer {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .json(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// POSTs `body` as it is, with the tenant's key, accepting `accept` and
/// with `content_type` (each if any).
async fn post_raw(
    app: &TestApp,
    accept: Option<&str>,
    content_type: Option<&str>,
    body: String,
) -> Answer {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// GETs /graphql with `parameters` in the query string and the tenant's
/// key, accepting `accept`.
async fn get(app: &TestApp, accept: &str, parameters: &[(&str, &str)]) -> Answer {
    let response = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&app.tenant.api_key)
        .header("accept", accept)
        .query(parameters)
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

/// What a client accepts, and the Content-Type Canopy answers it with:
/// the GraphQL over HTTP media type, and the legacy one.
const MEDIA_TYPES: [(&str, &str); 2] = [
    (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON_UTF8),
    ("application/json", JSON_UTF8),
];

const CREATE_CUSTOMER: &str =
    "mutation Create { createCustomer(input: { title: \"Initech\" }) { customer { id } } }";

/// Asks for the viewer accepting `accept`: executed, and answered in
/// `content_type`.
async fn viewer_answered_in(app: &TestApp, accept: &str, content_type: &str) {
    let answer = post(
        app,
        Some(accept),
        &json!({ "query": "{ viewer { scopes } }" }),
    )
    .await;
    let data = answer.executed(content_type, 0);
    assert!(data["viewer"]["scopes"].is_array(), "{accept}: {answer:?}");
}

#[tokio::test]
async fn accept_application_graphql_response_json_is_answered_in_it() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    viewer_answered_in(&app, GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON_UTF8).await;
}

#[tokio::test]
async fn accept_application_json_is_answered_in_it() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for accept in ["application/json", "application/json; charset=utf-8"] {
        viewer_answered_in(&app, accept, JSON_UTF8).await;
    }
}

/// The spec lets a server take a missing Accept as
/// `application/graphql-response+json` (since 2025); a wildcard leaves the
/// choice to the server, and Canopy chooses the same.
#[tokio::test]
async fn a_missing_accept_or_a_wildcard_is_answered_in_application_graphql_response_json() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for accept in ["*/*", "application/*", BROWSER] {
        let answer = post(&app, Some(accept), &json!({ "query": "{ __typename }" })).await;
        answer.executed(GRAPHQL_RESPONSE_JSON_UTF8, 0);
        // With its status codes: a syntax error is a 400.
        let answer = post(&app, Some(accept), &json!({ "query": "{" })).await;
        answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
    }
    // reqwest always sends an Accept: this request is written by hand.
    for (query, status) in [("{ __typename }", 200), ("{", 400)] {
        let body = json!({ "query": query }).to_string();
        let (answer, head) = without_accept(&app, &body).await;
        assert_eq!(answer.status, status, "{head}");
        assert_eq!(answer.content_type, GRAPHQL_RESPONSE_JSON_UTF8, "{head}");
        assert_eq!(answer.body.get("data").is_some(), status == 200, "{head}");
    }
}

/// POSTs `body` with no Accept header at all; returns the answer and its
/// head as sent.
async fn without_accept(app: &TestApp, body: &str) -> (Answer, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let answer = Answer {
        status,
        content_type,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    };
    (answer, head.to_owned())
}

#[tokio::test]
async fn the_media_type_the_client_ranks_higher_is_used() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for (accept, content_type) in [
        (
            "application/graphql-response+json;q=0.5, application/json",
            JSON_UTF8,
        ),
        (
            "application/json;q=0.5, application/graphql-response+json",
            GRAPHQL_RESPONSE_JSON_UTF8,
        ),
        // What graphql-http's client sends: a tie goes to the newer type.
        (
            "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8",
            GRAPHQL_RESPONSE_JSON_UTF8,
        ),
        // GraphiQL's fetcher with incremental delivery.
        ("application/json, multipart/mixed", JSON_UTF8),
        ("application/json, */*;q=0.1", JSON_UTF8),
    ] {
        let answer = post(&app, Some(accept), &json!({ "query": "{ __typename }" })).await;
        answer.executed(content_type, 0);
    }
}

#[tokio::test]
async fn accepting_neither_media_type_is_answered_406() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    for accept in [
        "text/html",
        "application/xml",
        "application/json;q=0, application/graphql-response+json;q=0",
        "application/json; charset=iso-8859-1",
    ] {
        let answer = post(&app, Some(accept), &json!({ "query": CREATE_CUSTOMER })).await;
        answer.refused(406, JSON_UTF8);
        let answer = get(&app, accept, &[("query", "{ __typename }")]).await;
        assert_eq!(answer.status, 406, "{accept}: {answer:?}");
    }
    assert_eq!(app.snapshot().await, before, "nothing ran");
}

#[tokio::test]
async fn a_document_that_does_not_parse_is_400_without_data() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let answer = post(
        &app,
        Some(GRAPHQL_RESPONSE_JSON),
        &json!({ "query": "{ viewer { scopes }" }),
    )
    .await;
    answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
    assert_eq!(answer.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_document_that_fails_validation_is_400_without_data() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for query in [
        "{ viewer { noSuchField } }",
        "{ customers { nodes } }",
        "subscription { viewer { scopes } }",
    ] {
        let answer = post(
            &app,
            Some(GRAPHQL_RESPONSE_JSON),
            &json!({ "query": query }),
        )
        .await;
        answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
        assert_eq!(answer.code(), "BAD_USER_INPUT", "{query}");
    }
}

#[tokio::test]
async fn variables_that_cannot_be_coerced_are_400_without_data() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    for (query, variables) in [
        (
            "query($first: Int) { customers(first: $first) { totalCount } }",
            json!({ "first": "ten" }),
        ),
        ("query($id: ID!) { customer(id: $id) { id } }", json!({})),
        (
            "query($id: ID!) { customer(id: $id) { id } }",
            json!({ "id": null }),
        ),
        (
            "mutation($title: String!) { createCustomer(input: { title: $title }) { customer { id } } }",
            json!({}),
        ),
        (
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } } }",
            json!({ "input": { "title": ["not", "a", "string"] } }),
        ),
    ] {
        let answer = post(
            &app,
            Some(GRAPHQL_RESPONSE_JSON),
            &json!({ "query": query, "variables": variables }),
        )
        .await;
        answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn an_operation_that_cannot_be_determined_is_400_without_data() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let document = "query A { __typename } query B { viewer { scopes } }";
    for request in [
        json!({ "query": document }),
        json!({ "query": document, "operationName": "C" }),
        json!({ "query": "{ __typename }", "operationName": "A" }),
    ] {
        let answer = post(&app, Some(GRAPHQL_RESPONSE_JSON), &request).await;
        answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
    }
    let answer = post(
        &app,
        Some(GRAPHQL_RESPONSE_JSON),
        &json!({ "query": document, "operationName": "B" }),
    )
    .await;
    assert!(answer.executed(GRAPHQL_RESPONSE_JSON_UTF8, 0)["viewer"].is_object());
}

/// Under the legacy media type every well-formed request is answered 200,
/// whatever errors it raises; a request error still carries no `data`.
#[tokio::test]
async fn under_application_json_a_well_formed_request_is_200_even_with_request_errors() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for request in [
        json!({ "query": "{ viewer { scopes }" }),
        json!({ "query": "{ viewer { noSuchField } }" }),
        json!({ "query": "query($first: Int) { customers(first: $first) { totalCount } }",
                "variables": { "first": "ten" } }),
        json!({ "query": "query A { __typename } query B { __typename }" }),
    ] {
        let answer = post(&app, Some("application/json"), &request).await;
        assert_eq!(answer.status, 200, "{request}: {answer:?}");
        assert_eq!(answer.content_type, JSON_UTF8);
        assert!(answer.body.get("data").is_none(), "{answer:?}");
        assert_eq!(answer.code(), "BAD_USER_INPUT", "{answer:?}");
    }
}

#[tokio::test]
async fn a_body_that_is_no_graphql_request_is_400_in_either_media_type() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for (accept, content_type) in MEDIA_TYPES {
        for body in [
            "NONSENSE",
            "{\"query\": \"{ __typename }\"",
            "{\"query\": 1}",
            "{\"query\": \"{ __typename }\", \"variables\": \"{}\"}",
            "{\"query\": \"{ __typename }\", \"operationName\": 7}",
            "{\"query\": \"{ __typename }\", \"extensions\": []}",
            "[{\"query\": \"{ __typename }\"}]",
        ] {
            let answer = post_raw(&app, Some(accept), Some("application/json"), body.into()).await;
            answer.refused(400, content_type);
            assert_eq!(
                answer.body["errors"][0]["message"],
                "the request body is not a GraphQL request in JSON",
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn a_request_without_a_query_is_400_in_either_media_type() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for (accept, content_type) in MEDIA_TYPES {
        for body in [
            json!({ "qeury": "{ __typename }" }),
            json!({ "query": "" }),
            json!({ "query": " \n" }),
            json!({}),
        ] {
            let answer = post(&app, Some(accept), &body).await;
            answer.refused(400, content_type);
            assert_eq!(
                answer.body["errors"][0]["message"],
                "the request has no query"
            );
        }
        let answer = get(&app, accept, &[("operationName", "A")]).await;
        answer.refused(400, content_type);
    }
}

/// Field errors are no request errors: execution began, so the answer is
/// 200 with `data`, partial or null.
#[tokio::test]
async fn field_errors_during_execution_are_200_with_data() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for (accept, content_type) in MEDIA_TYPES {
        // A nullable field's error: the rest of the data stands.
        let answer = post(
            &app,
            Some(accept),
            &json!({ "query": "{ __typename customer(id: \"nonsense\") { id } }" }),
        )
        .await;
        let data = answer.executed(content_type, 1);
        assert_eq!(data["__typename"], "Query", "{answer:?}");
        assert!(data["customer"].is_null(), "{answer:?}");
        assert_eq!(answer.code(), "BAD_USER_INPUT");
        // A non-null root field's error: data is null, and still there.
        let answer = post(
            &app,
            Some(accept),
            &json!({ "query": "{ customers(first: 101) { totalCount } }" }),
        )
        .await;
        assert_eq!(*answer.executed(content_type, 1), Value::Null);
        // An operation the caller may not run is refused field by field.
        let answer = app
            .client
            .post(app.url("/graphql"))
            .header("accept", accept)
            .json(&json!({ "query": "{ __typename viewer { scopes } }" }))
            .send()
            .await
            .unwrap();
        let answer = Answer::of(answer).await;
        assert!(answer.executed(content_type, 1)["viewer"].is_null());
        assert_eq!(answer.code(), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_post_without_a_json_content_type_is_415() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    let body = json!({ "query": CREATE_CUSTOMER }).to_string();
    for (accept, answered_in) in MEDIA_TYPES {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/graphql"),
            Some("application/jsonp"),
            Some("application/json; charset=iso-8859-1"),
            None,
        ] {
            let answer = post_raw(&app, Some(accept), content_type, body.clone()).await;
            answer.refused(415, answered_in);
            assert_eq!(
                answer.body["errors"][0]["message"], "send GraphQL requests as application/json",
                "{content_type:?}"
            );
        }
    }
    assert_eq!(app.snapshot().await, before, "nothing ran");
    // JSON, with or without its charset, is read.
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let body = json!({ "query": "{ __typename }" }).to_string();
        post_raw(&app, None, Some(content_type), body)
            .await
            .executed(GRAPHQL_RESPONSE_JSON_UTF8, 0);
    }
}

#[tokio::test]
async fn a_mutation_over_get_is_405_with_allow_post() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    let both = format!("query Q {{ __typename }} {CREATE_CUSTOMER}");
    for parameters in [
        vec![("query", CREATE_CUSTOMER)],
        vec![("query", CREATE_CUSTOMER), ("operationName", "Create")],
        vec![("query", both.as_str()), ("operationName", "Create")],
    ] {
        let response = app
            .client
            .get(app.url("/graphql"))
            .bearer_auth(&app.tenant.api_key)
            .header("accept", GRAPHQL_RESPONSE_JSON)
            .query(&parameters)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], "POST", "{parameters:?}");
        let answer = Answer::of(response).await;
        answer.refused(405, GRAPHQL_RESPONSE_JSON_UTF8);
    }
    assert_eq!(app.snapshot().await, before, "nothing ran");
    // The same document's query runs over GET.
    let answer = get(
        &app,
        GRAPHQL_RESPONSE_JSON,
        &[("query", both.as_str()), ("operationName", "Q")],
    )
    .await;
    assert_eq!(
        answer.executed(GRAPHQL_RESPONSE_JSON_UTF8, 0)["__typename"],
        "Query"
    );
}

#[tokio::test]
async fn a_query_over_get_is_answered() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    app.customer("Acme West", None).await;
    app.customer("Acme East", None).await;
    let query = "query Other { __typename }
        query Find($search: String, $first: Int) {
          customers(search: $search, first: $first) { totalCount nodes { title } } }";
    let variables = json!({ "search": "acme", "first": 1 }).to_string();
    for (accept, content_type) in [
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON_UTF8),
        ("application/json", JSON_UTF8),
        (BROWSER, GRAPHQL_RESPONSE_JSON_UTF8),
    ] {
        let answer = get(
            &app,
            accept,
            &[
                ("query", query),
                ("operationName", "Find"),
                ("variables", &variables),
                ("extensions", "{}"),
            ],
        )
        .await;
        let data = answer.executed(content_type, 0);
        assert_eq!(data["customers"]["totalCount"], 2, "{answer:?}");
        assert_eq!(data["customers"]["nodes"].as_array().unwrap().len(), 1);
        assert!(answer.body["extensions"]["cost"].is_u64(), "{answer:?}");
    }
    // GET follows the same status codes as POST.
    let answer = get(&app, GRAPHQL_RESPONSE_JSON, &[("query", "{ customers {")]).await;
    answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
    let answer = get(&app, "application/json", &[("query", "{ customers {")]).await;
    assert_eq!((answer.status, answer.body.get("data")), (200, None));
}

#[tokio::test]
async fn invalid_json_in_get_parameters_is_400() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for (accept, content_type) in MEDIA_TYPES {
        for (name, value, message) in [
            (
                "variables",
                "{\"first\": 1",
                "variables is not a JSON object",
            ),
            ("variables", "[1]", "variables is not a JSON object"),
            ("extensions", "nope", "extensions is not a JSON object"),
        ] {
            let answer = get(&app, accept, &[("query", "{ __typename }"), (name, value)]).await;
            answer.refused(400, content_type);
            assert_eq!(answer.body["errors"][0]["message"], message);
        }
    }
}

#[tokio::test]
async fn a_get_asking_for_html_without_a_query_serves_graphiql() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool.clone()).await;
    for accept in [BROWSER, "text/html", "*/*"] {
        let response = app
            .client
            .get(app.url("/graphql"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8",
            "{accept}"
        );
        assert!(response.text().await.unwrap().contains("graphiql"));
    }
    // A client that does not ask for a page is asked for a query.
    let answer = get(&app, GRAPHQL_RESPONSE_JSON, &[]).await;
    answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
    // A page alone cannot answer a query.
    let answer = get(&app, "text/html", &[("query", "{ __typename }")]).await;
    assert_eq!(answer.status, 406);
    drop(app);

    let closed = TestApp::spawn_with_env(pool, &[("CANOPY_GRAPHIQL", "false")]).await;
    let answer = get(&closed, BROWSER, &[]).await;
    answer.refused(400, GRAPHQL_RESPONSE_JSON_UTF8);
}

#[tokio::test]
async fn errors_before_execution_are_answered_in_the_negotiated_media_type() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    for (accept, content_type) in MEDIA_TYPES {
        let response = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth("not-a-key")
            .header("accept", accept)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        let answer = Answer::of(response).await;
        answer.refused(401, content_type);
        assert_eq!(answer.code(), "UNAUTHENTICATED");
    }
}
