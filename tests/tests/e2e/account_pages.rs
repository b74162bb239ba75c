//! Canopy's account pages, as a browser without JavaScript uses them: the
//! links in real emails open forms; a form spends its token only when
//! posted with its CSRF token; sign-in keeps a session in a cookie.

use std::collections::BTreeMap;

use canopy_tests::{TestApp, TestDb, eventually, global_id_number};
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, REFERRER_POLICY, SET_COOKIE,
};
use serde_json::json;

/// A browser: it keeps cookies and follows no redirect on its own.
struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    /// The value of the form field `name` (a hidden input).
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }

    fn header(&self, name: reqwest::header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Browser {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn keep(&mut self, response: reqwest::Response) -> Page {
        for cookie in response.headers().get_all(SET_COOKIE) {
            let cookie = cookie.to_str().unwrap();
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, url: &str) -> Page {
        let response = self
            .client
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }
}

/// An app with a tenant ("Hosted") whose portal is Canopy's account
/// pages; answers the app, the tenant's key and the pages' address.
async fn hosted(db: &TestDb) -> (TestApp, String, String) {
    let app = TestApp::spawn_with_mail(db.pool()).await;
    let tenant = app.create_tenant_with_portal("Hosted", None).await;
    let base = app.url(&format!("/account/{}", tenant.tenant_id));
    assert!(
        tenant
            .activation_link
            .starts_with(&format!("{base}/activate?token=")),
        "{}",
        tenant.activation_link
    );
    let data = app
        .data_as(
            &tenant.api_key,
            "query { viewer { tenant { portalUrl } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["tenant"]["portalUrl"], base);
    (app, tenant.api_key, base)
}

async fn invite(app: &TestApp, key: &str, email: &str) -> String {
    let data = app
        .data_as(
            key,
            "mutation { createCustomer(input: { title: \"Globex\" }) { customer { id } } }",
            json!({}),
        )
        .await;
    let customer = data["createCustomer"]["customer"]["id"].clone();
    app.data_as(
        key,
        "mutation($c: ID!, $e: String!) { createUser(input: { customerId: $c, email: $e,
           activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
        json!({ "c": customer, "e": email }),
    )
    .await;
    app.mail()
        .wait_for(email, "set up your account")
        .await
        .link()
}

async fn status_of(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT status FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_invitation_opens_a_page_that_sets_a_password_and_signs_in() {
    let db = TestDb::new().await;
    let (app, key, base) = hosted(&db).await;
    let link = invite(&app, &key, "ann@globex.test").await;
    assert!(
        link.starts_with(&format!("{base}/activate?token=")),
        "{link}"
    );

    // Opening the link (a mail scanner, then the person) only shows a form.
    let mut scanner = Browser::new();
    scanner.get(&link).await;
    let mut browser = Browser::new();
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Set up your account"), "{}", page.body);
    assert!(page.body.contains("Hosted"), "the tenant's name");
    assert_eq!(page.header(CACHE_CONTROL), "no-store");
    assert_eq!(page.header(REFERRER_POLICY), "no-referrer");
    assert!(
        page.header(CONTENT_SECURITY_POLICY)
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(
        status_of(&app, "ann@globex.test").await,
        "PENDING_EMAIL_VALIDATION"
    );
    let token = page.field("token");
    let csrf = page.field("csrf");
    let activate = format!("{base}/activate");

    // A form posted from elsewhere (no matching CSRF token) changes nothing.
    let mut forger = Browser::new();
    let forged = forger
        .post(
            &activate,
            &[
                ("csrf", "0123456789abcdef0123456789abcdef"),
                ("token", &token),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        status_of(&app, "ann@globex.test").await,
        "PENDING_EMAIL_VALIDATION"
    );

    // So is one posted from another origin, even with the right token
    // (a sibling host may have planted the cookie).
    let cross = browser
        .client
        .post(&activate)
        .header("cookie", browser.cookie_header())
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf", csrf.as_str()),
            ("token", &token),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // A sibling host's page, its origin hidden: the browser still says
    // where the post came from.
    let sibling = browser
        .client
        .post(&activate)
        .header("cookie", browser.cookie_header())
        .header("origin", "null")
        .header("sec-fetch-site", "same-site")
        .form(&[
            ("csrf", csrf.as_str()),
            ("token", &token),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sibling.status(), StatusCode::FORBIDDEN);
    // A link of another tenant is no link here.
    let foreign = canopy_tests::link_token(&app.tenant.activation_link);
    let other = browser
        .post(
            &activate,
            &[
                ("csrf", &csrf),
                ("token", &foreign),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert!(
        other.body.contains("this link is not valid"),
        "{}",
        other.body
    );
    assert_eq!(
        status_of(&app, "admin@acme.test").await,
        "PENDING_EMAIL_VALIDATION"
    );
    assert_eq!(
        status_of(&app, "ann@globex.test").await,
        "PENDING_EMAIL_VALIDATION"
    );

    // A weak password says why, and keeps the form.
    let weak = browser
        .post(
            &activate,
            &[("csrf", &csrf), ("token", &token), ("password", "short")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("role=\"alert\""), "{}", weak.body);
    assert!(
        weak.body.to_lowercase().contains("password"),
        "{}",
        weak.body
    );
    assert_eq!(weak.field("token"), token);

    let done = browser
        .post(
            &activate,
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.header(LOCATION),
        reqwest::Url::parse(&base).unwrap().path()
    );
    let session_cookie = done
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("canopy_session="))
        .expect("a session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );
    assert_eq!(status_of(&app, "ann@globex.test").await, "ACTIVE");
    let home = browser.get(&base).await;
    assert!(
        home.body
            .contains("Signed in as <strong>ann@globex.test</strong>"),
        "{}",
        home.body
    );

    // The link is spent: it says so and offers a new one.
    let again = browser
        .post(
            &activate,
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "another horse battery"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("expired or was used"), "{}", again.body);

    // Signing out ends the session itself, not just the cookie.
    let session = browser.cookies["canopy_session"].clone();
    let out = browser
        .post(&format!("{base}/sign-out"), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!browser.cookies.contains_key("canopy_session"));
    let ended = app
        .post(
            Some(&session),
            "query { viewer { user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(ended["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_forgotten_password_is_chosen_anew_and_signs_in() {
    let db = TestDb::new().await;
    let (app, key, base) = hosted(&db).await;
    let link = invite(&app, &key, "bo@globex.test").await;
    let mut browser = Browser::new();
    let page = browser.get(&link).await;
    let csrf = page.field("csrf");
    browser
        .post(
            &format!("{base}/activate"),
            &[
                ("csrf", &csrf),
                ("token", &page.field("token")),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    browser
        .post(&format!("{base}/sign-out"), &[("csrf", &csrf)])
        .await;

    // The same answer for an address with an account and one without.
    let forgot = format!("{base}/forgot-password");
    let page = browser.get(&forgot).await;
    assert!(page.body.contains("Reset your password"));
    let known = browser
        .post(&forgot, &[("csrf", &csrf), ("email", "bo@globex.test")])
        .await;
    let unknown = browser
        .post(&forgot, &[("csrf", &csrf), ("email", "nobody@globex.test")])
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(
        known.body, unknown.body,
        "nothing reveals whether an address has an account"
    );

    let reset_link = app.mail().wait_for("bo@globex.test", "reset").await.link();
    assert!(
        reset_link.starts_with(&format!("{base}/reset-password?token=")),
        "{reset_link}"
    );
    let page = browser.get(&reset_link).await;
    assert!(page.body.contains("Choose a new password"));
    let changed = browser
        .post(
            &format!("{base}/reset-password"),
            &[
                ("csrf", &csrf),
                ("token", &page.field("token")),
                ("password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert!(
        changed.body.contains("Your password is changed"),
        "{}",
        changed.body
    );

    let wrong = browser
        .post(
            &format!("{base}/sign-in"),
            &[
                ("csrf", &csrf),
                ("email", "bo@globex.test"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("role=\"alert\""));
    let right = browser
        .post(
            &format!("{base}/sign-in"),
            &[
                ("csrf", &csrf),
                ("email", "bo@globex.test"),
                ("password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    let home = browser.get(&base).await;
    assert!(home.body.contains("bo@globex.test"), "{}", home.body);
}

#[tokio::test]
async fn a_tenant_with_a_portal_of_its_own_has_no_account_pages() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(db.pool()).await;
    let mut browser = Browser::new();
    let own = browser
        .get(&app.url(&format!("/account/{}", app.tenant.tenant_id)))
        .await;
    assert_eq!(own.status, StatusCode::NOT_FOUND);
    let none = browser.get(&app.url("/account/VGVuYW50Ojk5OTk")).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(global_id_number("VGVuYW50Ojk5OTk"), 9999);
}

#[tokio::test]
async fn an_expired_invitation_offers_a_new_one_to_the_same_address() {
    let db = TestDb::new().await;
    let (app, key, base) = hosted(&db).await;
    let link = invite(&app, &key, "cy@globex.test").await;
    sqlx::query("UPDATE user_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut browser = Browser::new();
    let page = browser.get(&link).await;
    let (csrf, token) = (page.field("csrf"), page.field("token"));
    let expired = browser
        .post(
            &format!("{base}/activate"),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(
        expired.body.contains("this link has expired"),
        "{}",
        expired.body
    );
    assert!(
        expired.body.contains("Send me a new link"),
        "{}",
        expired.body
    );
    assert_eq!(
        expired.field("token"),
        token,
        "the new-link form names the old link"
    );

    let sent = browser
        .post(
            &format!("{base}/new-link"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(
        sent.body.contains("a new one is on its way"),
        "{}",
        sent.body
    );
    let invitations = eventually("a second invitation", async || {
        let invitations = app.mail().messages_to("cy@globex.test");
        if invitations.len() == 2 {
            Ok(invitations)
        } else {
            Err(invitations.len())
        }
    })
    .await;
    let fresh = invitations[1].link();
    assert_ne!(fresh, link);
    let page = browser.get(&fresh).await;
    let done = browser
        .post(
            &format!("{base}/activate"),
            &[
                ("csrf", &csrf),
                ("token", &page.field("token")),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, "cy@globex.test").await, "ACTIVE");

    // Accepted, the invitation is not sent again; a token that is not
    // Canopy's is refused as such, through the API as through the page.
    let again = browser
        .post(
            &format!("{base}/new-link"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let bogus = app
        .error_as(
            None,
            "mutation { requestNewLink(token: \"1.bogus\") }",
            json!({}),
        )
        .await;
    assert_eq!(
        (bogus.code.as_str(), bogus.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
    assert_eq!(app.mail().messages_to("cy@globex.test").len(), 2);
}

#[tokio::test]
async fn a_sign_up_is_confirmed_from_its_email_and_signs_in() {
    let db = TestDb::new().await;
    let (app, key, base) = hosted(&db).await;
    let mut browser = Browser::new();
    let home = browser.get(&base).await;
    assert!(home.body.contains("Create an account"), "{}", home.body);
    let csrf = home.field("csrf");
    let sign_up = format!("{base}/sign-up");
    assert!(
        browser
            .get(&sign_up)
            .await
            .body
            .contains("Create my account")
    );

    // A weak password says why; what was typed stays.
    let weak = browser
        .post(
            &sign_up,
            &[
                ("csrf", &csrf),
                ("organization", "Dee's Bikes"),
                ("email", "dee@bikes.test"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("aria-invalid=\"true\""), "{}", weak.body);
    assert!(
        weak.body.contains("value=\"Dee&#x27;s Bikes\""),
        "{}",
        weak.body
    );

    let done = browser
        .post(
            &sign_up,
            &[
                ("csrf", &csrf),
                ("organization", "Dee's Bikes"),
                ("first_name", "Dee"),
                ("email", "dee@bikes.test"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(
        done.body
            .contains("we sent a link to <strong>dee@bikes.test</strong>"),
        "{}",
        done.body
    );

    let link = app
        .mail()
        .wait_for("dee@bikes.test", "confirm your email")
        .await
        .link();
    assert!(
        link.starts_with(&format!("{base}/validate-email?token=")),
        "{link}"
    );
    // Opened, not submitted: nothing is spent.
    let page = browser.get(&link).await;
    assert!(page.body.contains("Confirm my address"));
    assert_eq!(
        status_of(&app, "dee@bikes.test").await,
        "PENDING_EMAIL_VALIDATION"
    );
    let confirmed = browser
        .post(
            &format!("{base}/validate-email"),
            &[("csrf", &csrf), ("token", &page.field("token"))],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert!(
        confirmed.body.contains("You can sign in"),
        "{}",
        confirmed.body
    );
    let signed_in = browser
        .post(
            &format!("{base}/sign-in"),
            &[
                ("csrf", &csrf),
                ("email", "dee@bikes.test"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);

    // A tenant that lets nobody sign up has no such page.
    app.data_as(
        &key,
        "mutation { updateTenant(input: { selfSignUp: false }) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(browser.get(&sign_up).await.status, StatusCode::NOT_FOUND);
    assert!(!browser.get(&base).await.body.contains("Create an account"));
}

#[tokio::test]
async fn the_pages_and_the_emails_wear_the_tenants_brand() {
    let db = TestDb::new().await;
    let (app, key, base) = hosted(&db).await;
    let update = "mutation($input: UpdateTenantInput!) { updateTenant(input: $input) { logoUrl accentColor } }";
    for (input, field) in [
        (
            json!({ "logoUrl": "http://cdn.example.com/logo.png" }),
            "logoUrl",
        ),
        (json!({ "accentColor": "green" }), "accentColor"),
    ] {
        let before = app.snapshot().await;
        let refused = app
            .error_as(Some(&key), update, json!({ "input": input }))
            .await;
        assert_eq!(
            (refused.code.as_str(), refused.field.as_deref()),
            ("BAD_USER_INPUT", Some(field))
        );
        assert_eq!(app.snapshot().await, before);
    }
    let data = app
        .data_as(
            &key,
            update,
            json!({ "input": { "logoUrl": "https://cdn.example.com/logo.png", "accentColor": "#AA3300" } }),
        )
        .await;
    assert_eq!(
        data["updateTenant"],
        json!({ "logoUrl": "https://cdn.example.com/logo.png", "accentColor": "#aa3300" })
    );

    let mut browser = Browser::new();
    let home = browser.get(&base).await;
    assert!(
        home.body
            .contains("class=\"logo\" src=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;logo.png\""),
        "{}",
        home.body
    );
    let theme = browser.get(&format!("{base}/theme.css")).await;
    assert_eq!(theme.body.trim(), ":root { --accent: #aa3300; }");

    let link = invite(&app, &key, "eve@globex.test").await;
    let email = app
        .mail()
        .wait_for("eve@globex.test", "set up your account")
        .await;
    assert!(email.html.contains("background:#aa3300"), "{}", email.html);
    assert!(email.html.contains("cdn.example.com"), "{}", email.html);
    assert!(email.text.contains(&link), "the text part says the same");
    assert!(
        email.raw.contains("Auto-Submitted: auto-generated"),
        "{}",
        email.raw
    );

    // Emptied, the brand is gone.
    let data = app
        .data_as(
            &key,
            update,
            json!({ "input": { "logoUrl": "", "accentColor": "" } }),
        )
        .await;
    assert_eq!(
        data["updateTenant"],
        json!({ "logoUrl": null, "accentColor": null })
    );
    assert_eq!(browser.get(&format!("{base}/theme.css")).await.body, "");
}
