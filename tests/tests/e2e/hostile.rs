//! Hostile input: what a fuzzer found reaches nothing it should not, and
//! addresses are plain mailboxes.

use canopy_tests::{TestApp, TestDb};
use serde_json::json;

#[tokio::test]
async fn control_characters_are_bad_input_not_internal_errors() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let nul = "\u{0}w";
    let before = app.snapshot().await;
    for (query, variables, field) in [
        (
            "query($e: String!) { userByEmail(email: $e) { id } }",
            json!({ "e": nul }),
            "email",
        ),
        (
            "query($n: String!) { customerByNumber(number: $n) { id } }",
            json!({ "n": nul }),
            "number",
        ),
        (
            "query($s: String!) { customers(search: $s) { totalCount } }",
            json!({ "s": nul }),
            "search",
        ),
    ] {
        let error = app.error(query, variables).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{query}"
        );
    }
    for (query, variables) in [
        (
            "mutation($t: ID!, $e: String!) { requestPasswordReset(tenantId: $t, email: $e) }",
            json!({ "t": app.tenant.tenant_id, "e": nul }),
        ),
        (
            "mutation($t: ID!, $e: String!) { login(tenantId: $t, email: $e, password: \"whatever long\") { token } }",
            json!({ "t": app.tenant.tenant_id, "e": nul }),
        ),
    ] {
        let error = app.error_as(None, query, variables).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("email")),
            "{query}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn addresses_are_plain_mailboxes() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Globex", None).await;
    let before = app.snapshot().await;
    for address in [
        "\"boss@acme.test\" <x@evil.test>",
        "Boss <x@evil.test>",
        "\"boss\"@acme.test",
        "u@[10.0.0.5]",
    ] {
        let error = app
            .error(
                "mutation($c: ID!, $e: String!) { createUser(input: { customerId: $c, email: $e,
                   activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }",
                json!({ "c": customer, "e": address }),
            )
            .await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("BAD_USER_INPUT", Some("email")),
            "{address}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}
