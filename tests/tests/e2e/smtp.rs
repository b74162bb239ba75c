//! Mail over TLS and with credentials: STARTTLS, TLS from the first byte,
//! AUTH PLAIN and LOGIN, and what the worker refuses: a certificate it does
//! not trust, a server without STARTTLS when TLS is required, credentials
//! in clear. Each refusal is transient, so the job goes through once the
//! server is put right.

use canopy_tests::TestApp;
use canopy_tests::TestDb;
use canopy_tests::mail::{AuthMechanism, SinkTls, SmtpSink};
use canopy_tests::tls::TestCa;
use canopy_tests::worker_process::WorkerProcess;
use serde_json::json;
use sqlx::PgPool;

use crate::jobs::{delivery_in, invite};

const SUBJECT: &str = "set up your account";

/// Who every test invites.
const TO: &str = "ann@globex.test";

/// Invites `TO` to a new customer; returns the user's id.
async fn invite_one(app: &TestApp) -> String {
    let customer = app.customer("Globex", None).await;
    invite(app, &customer, TO).await
}

/// An app whose worker sends to `sink` with `env`, and `TO` invited;
/// returns the app and the user's id.
async fn invited(pool: PgPool, sink: SmtpSink, env: &[(&str, &str)]) -> (TestApp, String) {
    let app = TestApp::spawn_with_sink_and_env(pool, sink, env).await;
    let user = invite_one(&app).await;
    (app, user)
}

/// The cause the job's first attempt failed with; nothing was delivered.
async fn failed_once(app: &TestApp, user: &str) -> String {
    let failed = delivery_in(app, user, "FAILED").await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert!(app.mail().messages_to(TO).is_empty());
    failed["lastError"].as_str().unwrap().to_owned()
}

/// The credentials in SMTP_URL (user "mailer", password "hunter2-secret")
/// appear nowhere in `cause`.
fn assert_no_credentials(cause: &str) {
    assert!(
        !cause.contains("hunter2") && !cause.contains("mailer"),
        "{cause}"
    );
}

#[tokio::test]
async fn starttls_with_a_trusted_certificate_delivers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let ca = TestCa::new("Canopy test CA");
    let sink = SmtpSink::start().await;
    sink.offer_tls(Some(SinkTls::StartTls(ca.server_config())));
    let (app, user) = invited(pool, sink, &[("SMTP_CA_FILE", ca.file())]).await;

    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert!(email.tls, "upgraded with STARTTLS");
    assert_eq!(email.user, None);
    let done = delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 1);
    assert!(done["lastError"].is_null(), "{done}");
}

#[tokio::test]
async fn credentials_in_the_url_authenticate_over_starttls() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let ca = TestCa::new("Canopy test CA");
    let sink = SmtpSink::start().await;
    sink.offer_tls(Some(SinkTls::StartTls(ca.server_config())));
    sink.require_login("mailer@globex.test", "p@ss: w/rd", &[AuthMechanism::Plain]);
    // Percent-encoded in the URL, as reserved characters must be.
    let url = format!(
        "smtp://mailer%40globex.test:p%40ss%3A%20w%2Frd@127.0.0.1:{}",
        sink.port
    );
    let env = [("SMTP_URL", url.as_str()), ("SMTP_CA_FILE", ca.file())];
    let (app, _) = invited(pool, sink, &env).await;

    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert!(email.tls);
    assert_eq!(email.user.as_deref(), Some("mailer@globex.test"));
}

#[tokio::test]
async fn smtps_speaks_tls_from_the_first_byte() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let ca = TestCa::new("Canopy test CA");
    let sink = SmtpSink::start().await;
    sink.offer_tls(Some(SinkTls::Implicit(ca.server_config())));
    // LOGIN when it is all the server offers.
    sink.require_login("mailer", "secret", &[AuthMechanism::Login]);
    let url = format!("smtps://mailer:secret@127.0.0.1:{}", sink.port);
    let env = [("SMTP_URL", url.as_str()), ("SMTP_CA_FILE", ca.file())];
    let (app, user) = invited(pool, sink, &env).await;

    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert!(email.tls);
    assert_eq!(email.user.as_deref(), Some("mailer"));
    let done = delivery_in(&app, &user, "DONE").await;
    assert_eq!(done["attempts"], 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_retried_never_sent_past() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let trusted = TestCa::new("Canopy test CA");
    let stranger = TestCa::new("Someone else's CA");
    let sink = SmtpSink::start().await;
    sink.offer_tls(Some(SinkTls::StartTls(stranger.server_config())));
    let (app, user) = invited(pool, sink, &[("SMTP_CA_FILE", trusted.file())]).await;

    // Offered STARTTLS, the worker neither sends past a failed handshake
    // nor falls back to plain text.
    let cause = failed_once(&app, &user).await;
    assert!(
        cause.contains("TLS handshake with the SMTP server failed")
            && cause.contains("invalid peer certificate")
            && cause.contains("UnknownIssuer"),
        "{cause}"
    );

    // A certificate it trusts, and the retry goes through.
    app.mail()
        .offer_tls(Some(SinkTls::StartTls(trusted.server_config())));
    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert!(email.tls);
    let done = delivery_in(&app, &user, "DONE").await;
    assert!(done["attempts"].as_i64().unwrap() >= 2, "{done}");
    assert_eq!(app.mail().messages_to(TO).len(), 1);
}

#[tokio::test]
async fn tls_required_refuses_a_server_without_starttls() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let ca = TestCa::new("Canopy test CA");
    let sink = SmtpSink::start().await;
    let url = format!("{}?tls=required", sink.url());
    let env = [("SMTP_URL", url.as_str()), ("SMTP_CA_FILE", ca.file())];
    let (app, user) = invited(pool, sink, &env).await;

    let cause = failed_once(&app, &user).await;
    assert!(
        cause.contains("does not offer STARTTLS") && cause.contains("nothing was sent"),
        "{cause}"
    );

    app.mail()
        .offer_tls(Some(SinkTls::StartTls(ca.server_config())));
    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert!(email.tls);
}

#[tokio::test]
async fn credentials_are_never_sent_in_clear() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let sink = SmtpSink::start().await;
    let url = format!("smtp://mailer:hunter2-secret@127.0.0.1:{}", sink.port);
    let (app, user) = invited(pool, sink, &[("SMTP_URL", url.as_str())]).await;

    // The server is never put right: the job retries after the test.
    app.expect_unfinished_jobs();
    let cause = failed_once(&app, &user).await;
    assert!(cause.contains("does not offer STARTTLS"), "{cause}");
    assert_no_credentials(&cause);
}

#[tokio::test]
async fn refused_credentials_are_retried_and_never_shown() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let ca = TestCa::new("Canopy test CA");
    let sink = SmtpSink::start().await;
    sink.offer_tls(Some(SinkTls::StartTls(ca.server_config())));
    sink.require_login(
        "mailer",
        "the-right-one",
        &[AuthMechanism::Plain, AuthMechanism::Login],
    );
    let url = format!("smtp://mailer:hunter2-secret@127.0.0.1:{}", sink.port);
    let env = [("SMTP_URL", url.as_str()), ("SMTP_CA_FILE", ca.file())];
    let (app, user) = invited(pool, sink, &env).await;

    // Transient: the credentials are the installation's, not the message's;
    // put right, the retries go through.
    let cause = failed_once(&app, &user).await;
    assert!(
        cause.contains("refused the credentials") && cause.contains("SMTP 535"),
        "{cause}"
    );
    assert_no_credentials(&cause);
    let queue = app
        .data(
            "{ jobQueue { jobs(state: FAILED, first: 5) { nodes { lastError } } } }",
            json!({}),
        )
        .await;
    assert!(!queue.to_string().contains("hunter2"), "{queue}");

    app.mail().require_login(
        "mailer",
        "hunter2-secret",
        &[AuthMechanism::Plain, AuthMechanism::Login],
    );
    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert_eq!(email.user.as_deref(), Some("mailer"));
}

/// Operators may trust a private CA the standard way too: the system's
/// roots honour `SSL_CERT_FILE`.
#[tokio::test]
async fn ssl_cert_file_is_honoured() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let ca = TestCa::new("Canopy test CA");
    let app = TestApp::spawn_with_mail_stopped(pool).await;
    app.mail()
        .offer_tls(Some(SinkTls::StartTls(ca.server_config())));
    let url = format!("{}?tls=required", app.mail().url());
    let _worker = WorkerProcess::start_with_env(
        &app,
        &[("SMTP_URL", url.as_str()), ("SSL_CERT_FILE", ca.file())],
    )
    .await;
    invite_one(&app).await;

    let email = app.mail().wait_for(TO, SUBJECT).await;
    assert!(email.tls);
    // Before the worker process goes, with the test.
    app.jobs_settled().await;
}
