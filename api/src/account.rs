//! Canopy's account pages, under `/account/<tenant id>`: the pages the
//! links in a tenant's emails open when the tenant has no portal of its
//! own (accept an invitation, confirm an address, choose a new password,
//! ask for a reset, sign in and out, and sign up where the tenant allows
//! it).
//!
//! Each page is a plain HTML form that works without JavaScript; what it
//! does, it does through the public GraphQL API (`app::operate`, the same
//! path as /graphql, with the same limits), so it can do nothing a caller
//! could not do by hand. Following a link only shows a form: a token is
//! spent when the person submits it, never when a mail scanner opens it.
//! Every form carries a CSRF token that must match its cookie; pages are
//! never cached, framed, or sent in a Referer; the session a sign-in makes
//! lives in an HttpOnly, SameSite=Strict cookie scoped to the tenant's
//! pages.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::{Environment, Value, context};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::actions::tenants::account_pages;
use crate::app::{AppState, Edge, Operated, operate};
use crate::graphiql::fnv1a;
use crate::ids;
use crate::limits::{Limit, client_key};
use canopy_core::store::tenants::{self, TenantRow};

const CSRF_COOKIE: &str = "canopy_csrf";
const SESSION_COOKIE: &str = "canopy_session";

/// Styles from this server only (the tenant's colour comes as a stylesheet
/// of its own); images from here or https (the tenant's logo); forms post
/// only here; nothing frames the pages, and no script runs at all.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data: https:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLES: &[u8] = include_bytes!("../assets/account/account.css");

static STYLES_PATH: LazyLock<String> =
    LazyLock::new(|| format!("account-{:016x}.css", fnv1a(STYLES)));

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("../assets/account/layout.html")),
        ("home.html", include_str!("../assets/account/home.html")),
        (
            "password.html",
            include_str!("../assets/account/password.html"),
        ),
        (
            "confirm.html",
            include_str!("../assets/account/confirm.html"),
        ),
        ("forgot.html", include_str!("../assets/account/forgot.html")),
        ("sent.html", include_str!("../assets/account/sent.html")),
        (
            "sign_up.html",
            include_str!("../assets/account/sign_up.html"),
        ),
        ("forged.html", include_str!("../assets/account/forged.html")),
        (
            "new_link.html",
            include_str!("../assets/account/new_link.html"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the account templates parse");
    }
    env
});

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/assets/{file}", get(styles))
        .route("/account/{tenant}", get(home))
        .route("/account/{tenant}/theme.css", get(theme))
        .route("/account/{tenant}/sign-in", post(sign_in))
        .route("/account/{tenant}/sign-out", post(sign_out))
        .route(
            "/account/{tenant}/activate",
            get(activate_page).post(activate),
        )
        .route(
            "/account/{tenant}/reset-password",
            get(reset_page).post(reset),
        )
        .route(
            "/account/{tenant}/validate-email",
            get(validate_page).post(validate),
        )
        .route(
            "/account/{tenant}/forgot-password",
            get(forgot_page).post(forgot),
        )
        .route("/account/{tenant}/new-link", post(new_link))
        .route("/account/{tenant}/sign-up", get(sign_up_page).post(sign_up))
}

async fn styles(Path(file): Path<String>) -> Response {
    if file != *STYLES_PATH {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        STYLES,
    )
        .into_response()
}

/// A page of one tenant: its row, where its pages are, and the cookies.
struct Page {
    tenant: TenantRow,
    /// The tenant id as the API names it.
    tenant_id: String,
    /// The path of the tenant's pages, e.g. `/account/VGVuYW50OjE`.
    base: String,
    jar: CookieJar,
    csrf: String,
    secure: bool,
    state: AppState,
    edge: Edge,
    /// Where the request says it came from (`Origin`, `Sec-Fetch-Site`).
    origin: Option<String>,
    fetch_site: Option<String>,
}

/// An error as the API gave it.
struct Refusal {
    code: String,
    message: String,
    field: Option<String>,
}

/// The tenant `tenant` names and the address of its pages, when it exists
/// and has no portal of its own (a tenant with one answers as if it did not
/// exist).
async fn hosted_tenant(state: &AppState, tenant: &str) -> Result<(TenantRow, url::Url), Response> {
    let not_found = || (StatusCode::NOT_FOUND, no_cache(), "Not found").into_response();
    let id = ids::tenant(tenant).ok_or_else(not_found)?;
    let row = tenants::by_id(&state.pool, id)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE.into_response())?
        .ok_or_else(not_found)?;
    let hosted = account_pages(&state.config.public_url, id);
    if row.portal_url != hosted.as_str() {
        return Err(not_found());
    }
    Ok((row, hosted))
}

impl Page {
    /// The tenant's pages, when the tenant exists and has no portal of its
    /// own (a tenant with one answers as if it did not exist).
    async fn open(
        state: AppState,
        edge: Edge,
        tenant: &str,
        jar: CookieJar,
        headers: &HeaderMap,
    ) -> Result<Self, Response> {
        // Every page counts against the client's budget for public calls,
        // so walking tenant ids to read their names is slow.
        let verdict = state
            .limiter
            .check(Limit::PublicClient, &client_key(edge.client), 1)
            .await;
        if !verdict.allowed {
            let wait = crate::error::retry_after_seconds(verdict.retry_after);
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, wait.to_string())],
                no_cache(),
                "Too many requests; try again later.",
            )
                .into_response());
        }
        let (row, hosted) = hosted_tenant(&state, tenant).await?;
        let id = row.id;
        let csrf = jar
            .get(CSRF_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| v.len() == 32)
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Self {
            origin: header("origin"),
            fetch_site: header("sec-fetch-site"),
            tenant_id: ids::of(id),
            base: hosted.path().trim_end_matches('/').to_owned(),
            secure: state.config.public_url.scheme() == "https",
            tenant: row,
            jar,
            csrf,
            state,
            edge,
        })
    }

    /// Whether a posted form came from these pages: the browser says it
    /// came from this origin (a sibling host could plant a cookie, but not
    /// post with this `Origin`), and it carries this browser's CSRF token.
    fn genuine(&self, sent: &str) -> bool {
        let public = self.state.config.public_url.origin().ascii_serialization();
        // Under `Referrer-Policy: no-referrer` a browser sends `Origin:
        // null` even from the page itself; then `Sec-Fetch-Site` decides
        // (a sibling host is "same-site", not "same-origin").
        let same_origin = match self.origin.as_deref() {
            Some(origin) if origin != "null" => origin == public,
            _ => self
                .fetch_site
                .as_deref()
                .is_none_or(|site| matches!(site, "same-origin" | "none")),
        } && self
            .fetch_site
            .as_deref()
            .is_none_or(|site| matches!(site, "same-origin" | "none"));
        same_origin
            && self
                .jar
                .get(CSRF_COOKIE)
                .is_some_and(|c| bool::from(c.value().as_bytes().ct_eq(sent.as_bytes())))
    }

    /// Whether a link's token was made for this page's tenant.
    fn owns(&self, token: &str) -> bool {
        canopy_core::secrets::link_token_tenant(token.trim()) == Some(self.tenant.id)
    }

    fn cookie(&self, name: &'static str, value: String, path: &str) -> Cookie<'static> {
        Cookie::build((name, value))
            .path(path.to_owned())
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .build()
    }

    fn session(&self) -> Option<String> {
        self.jar.get(SESSION_COOKIE).map(|c| c.value().to_owned())
    }

    /// Runs `query` through the public API, as `bearer` when given.
    async fn call(
        &self,
        bearer: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<serde_json::Value, Refusal> {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        let authorization = bearer.map(|b| format!("Bearer {b}"));
        match operate(
            &self.state,
            &self.edge,
            authorization.as_deref(),
            request,
            None,
        )
        .await
        {
            Operated::Refused(_, code, message) => Err(Refusal {
                code: code.to_owned(),
                message: message.to_owned(),
                field: None,
            }),
            // The pages send no Idempotency-Key, so nothing is kept for them.
            Operated::Kept(kept) => Err(Refusal {
                code: "INTERNAL".to_owned(),
                message: format!("unexpected answer: {kept:?}"),
                field: None,
            }),
            Operated::Ran { response, .. } => {
                if let Some(error) = response.errors.first() {
                    let extension = |name: &str| {
                        error
                            .extensions
                            .as_ref()
                            .and_then(|x| x.get(name))
                            .and_then(|v| match v {
                                async_graphql::Value::String(s) => Some(s.clone()),
                                _ => None,
                            })
                    };
                    return Err(Refusal {
                        code: extension("code").unwrap_or_else(|| "INTERNAL".into()),
                        message: error.message.clone(),
                        field: extension("field"),
                    });
                }
                Ok(response.data.into_json().unwrap_or_default())
            }
        }
    }

    /// The page `template` with `values`, the CSRF cookie set.
    fn render(self, status: StatusCode, template: &str, values: Value) -> Response {
        let common = context! {
            tenant => self.tenant.name,
            sign_up => self.tenant.self_sign_up,
            logo_url => self.tenant.logo_url,
            base => self.base,
            csrf => self.csrf,
            styles => format!("/account/assets/{}", *STYLES_PATH),
        };
        let html = TEMPLATES
            .get_template(template)
            .and_then(|t| t.render(context! { ..values, ..common }));
        let html = match html {
            Ok(html) => html,
            Err(error) => {
                tracing::error!(%error, template, "cannot render an account page");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let csrf = self.cookie(CSRF_COOKIE, self.csrf.clone(), "/account");
        (status, self.jar.add(csrf), no_cache(), Html(html)).into_response()
    }

    fn forged(self) -> Response {
        self.render(
            StatusCode::FORBIDDEN,
            "forged.html",
            context! { error => "This page was open too long or came from elsewhere. Reload it and try again." },
        )
    }
}

/// A tenant's page from a request: the tenant in its path, its cookies and
/// where it says it came from.
impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path(tenant) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let edge = parts
            .extensions
            .get::<Edge>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let jar = CookieJar::from_headers(&parts.headers);
        Page::open(state.clone(), edge, &tenant, jar, &parts.headers).await
    }
}

/// A form that carries a CSRF token.
trait Guarded {
    fn csrf(&self) -> &str;
}

/// A posted form of a tenant's page, from these pages (CSRF token and
/// origin checked); anything else is answered 403 and does nothing.
struct Posted<F>(Page, F);

impl<F: Guarded + DeserializeOwned + Send> FromRequest<AppState> for Posted<F> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let page = Page::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<F>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !page.genuine(form.csrf()) {
            return Err(page.forged());
        }
        Ok(Posted(page, form))
    }
}

/// What every account page is sent with.
fn no_cache() -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

/// The status a refusal is shown with.
fn status_of(refusal: &Refusal) -> StatusCode {
    match refusal.code.as_str() {
        "BAD_USER_INPUT" => StatusCode::BAD_REQUEST,
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "FAILED_PRECONDITION" | "CONFLICT" => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A token of another tenant, refused as the API refuses a bad link.
fn foreign() -> Refusal {
    Refusal {
        code: "BAD_USER_INPUT".into(),
        message: "this link is not valid".into(),
        field: Some("token".into()),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: String,
    email: String,
    password: String,
}

impl Guarded for SignInForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

impl Guarded for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    token: String,
    password: String,
}

impl Guarded for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
    token: String,
}

impl Guarded for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Deserialize)]
struct EmailForm {
    csrf: String,
    email: String,
}

impl Guarded for EmailForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn home(page: Page) -> Response {
    if let Some(session) = page.session() {
        let viewer = page
            .call(
                Some(&session),
                "query { viewer { user { email } } }",
                json!({}),
            )
            .await;
        if let Ok(data) = viewer
            && let Some(email) = data["viewer"]["user"]["email"].as_str()
        {
            let email = email.to_owned();
            return page.render(StatusCode::OK, "home.html", context! { email });
        }
    }
    let mut page = page;
    page.jar = page
        .jar
        .remove(Cookie::build(SESSION_COOKIE).path(page.base.clone()));
    page.render(StatusCode::OK, "home.html", context! {})
}

async fn sign_in(Posted(page, form): Posted<SignInForm>) -> Response {
    let login = page
        .call(
            None,
            "mutation($t: ID!, $e: String!, $p: String!) {
               login(tenantId: $t, email: $e, password: $p) { token } }",
            json!({ "t": page.tenant_id, "e": form.email, "p": form.password }),
        )
        .await;
    match login {
        Ok(data) => signed_in(page, &data["login"]["token"]),
        Err(refusal) => page.render(
            status_of(&refusal),
            "home.html",
            context! { error => refusal.message, entered_email => form.email },
        ),
    }
}

/// Keeps the session a sign-in made, and goes to the account's page.
fn signed_in(page: Page, token: &serde_json::Value) -> Response {
    let Some(token) = token.as_str() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let session = page.cookie(SESSION_COOKIE, token.to_owned(), &page.base);
    let to = page.base.clone();
    (page.jar.add(session), no_cache(), Redirect::to(&to)).into_response()
}

async fn sign_out(Posted(page, _): Posted<CsrfForm>) -> Response {
    if let Some(session) = page.session() {
        // Ended here either way; an already dead session is no error.
        let _ = page
            .call(Some(&session), "mutation { logout }", json!({}))
            .await;
    }
    let to = page.base.clone();
    let jar = page
        .jar
        .remove(Cookie::build(SESSION_COOKIE).path(page.base.clone()));
    (jar, no_cache(), Redirect::to(&to)).into_response()
}

/// The form that sets a password with a link's token; `page_name` is where
/// it posts.
fn password_form(
    page: Page,
    status: StatusCode,
    page_name: &str,
    token: Option<String>,
    expired: bool,
    error: Option<String>,
) -> Response {
    let (heading, intro, action) = if page_name == "activate" {
        (
            "Set up your account",
            "Choose a password to finish setting up your account.",
            "Set my password",
        )
    } else {
        (
            "Choose a new password",
            "Choose a new password for your account.",
            "Change my password",
        )
    };
    let expired = expired || token.is_none();
    page.render(
        status,
        "password.html",
        context! { heading, intro, action, page => page_name, token, expired, error },
    )
}

async fn activate_page(page: Page, Query(query): Query<TokenQuery>) -> Response {
    password_form(page, StatusCode::OK, "activate", query.token, false, None)
}

async fn activate(Posted(page, form): Posted<PasswordForm>) -> Response {
    if !page.owns(&form.token) {
        return refused_password(page, "activate", form.token, foreign());
    }
    let activated = page
        .call(
            None,
            "mutation($t: String!, $p: String!) { activateAccount(token: $t, password: $p) { token } }",
            json!({ "t": form.token, "p": form.password }),
        )
        .await;
    match activated {
        Ok(data) => signed_in(page, &data["activateAccount"]["token"]),
        Err(refusal) => refused_password(page, "activate", form.token, refusal),
    }
}

/// A refused password form: an expired or used link says so; a weak
/// password says why, the form kept.
fn refused_password(page: Page, page_name: &str, token: String, refusal: Refusal) -> Response {
    let status = status_of(&refusal);
    let expired = refusal.field.as_deref() == Some("token");
    password_form(
        page,
        status,
        page_name,
        Some(token),
        expired,
        Some(refusal.message),
    )
}

async fn reset_page(page: Page, Query(query): Query<TokenQuery>) -> Response {
    password_form(
        page,
        StatusCode::OK,
        "reset-password",
        query.token,
        false,
        None,
    )
}

async fn reset(Posted(page, form): Posted<PasswordForm>) -> Response {
    if !page.owns(&form.token) {
        return refused_password(page, "reset-password", form.token, foreign());
    }
    let reset = page
        .call(
            None,
            "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) }",
            json!({ "t": form.token, "p": form.password }),
        )
        .await;
    match reset {
        Ok(_) => page.render(
            StatusCode::OK,
            "home.html",
            context! { notice => "Your password is changed. Sign in with it." },
        ),
        Err(refusal) => refused_password(page, "reset-password", form.token, refusal),
    }
}

async fn validate_page(page: Page, Query(query): Query<TokenQuery>) -> Response {
    let expired = query.token.is_none();
    page.render(
        StatusCode::OK,
        "confirm.html",
        context! { token => query.token, expired },
    )
}

async fn validate(Posted(page, form): Posted<TokenForm>) -> Response {
    if !page.owns(&form.token) {
        return page.render(
            StatusCode::BAD_REQUEST,
            "confirm.html",
            context! { expired => true },
        );
    }
    let validated = page
        .call(
            None,
            "mutation($t: String!) { validateEmail(token: $t) { user { status } } }",
            json!({ "t": form.token }),
        )
        .await;
    match validated {
        Ok(data) => {
            let confirmed = if data["validateEmail"]["user"]["status"] == "PENDING_APPROVAL" {
                "Your address is confirmed. An administrator reviews your request; you can \
                 sign in once it is approved."
            } else {
                "Your address is confirmed. You can sign in."
            };
            page.render(StatusCode::OK, "confirm.html", context! { confirmed })
        }
        Err(refusal) if refusal.field.as_deref() == Some("token") => page.render(
            status_of(&refusal),
            "confirm.html",
            context! { expired => true, token => form.token, error => refusal.message },
        ),
        Err(refusal) => page.render(
            status_of(&refusal),
            "confirm.html",
            context! { token => form.token, error => refusal.message },
        ),
    }
}

async fn forgot_page(page: Page) -> Response {
    page.render(StatusCode::OK, "forgot.html", context! {})
}

async fn forgot(Posted(page, form): Posted<EmailForm>) -> Response {
    let asked = page
        .call(
            None,
            "mutation($t: ID!, $e: String!) { requestPasswordReset(tenantId: $t, email: $e) }",
            json!({ "t": page.tenant_id, "e": form.email }),
        )
        .await;
    // The answer is the same whether or not the address has an account.
    match asked {
        Ok(_) => page.render(StatusCode::OK, "forgot.html", context! { sent => true }),
        Err(refusal) => page.render(
            status_of(&refusal),
            "forgot.html",
            context! { error => refusal.message },
        ),
    }
}

async fn new_link(Posted(page, form): Posted<TokenForm>) -> Response {
    if !page.owns(&form.token) {
        return page.render(
            StatusCode::BAD_REQUEST,
            "sent.html",
            context! { error => foreign().message },
        );
    }
    let asked = page
        .call(
            None,
            "mutation($t: String!) { requestNewLink(token: $t) }",
            json!({ "t": form.token }),
        )
        .await;
    match asked {
        Ok(_) => page.render(StatusCode::OK, "sent.html", context! {}),
        Err(refusal) => page.render(
            status_of(&refusal),
            "sent.html",
            context! { error => refusal.message },
        ),
    }
}

#[derive(Deserialize, serde::Serialize, Default)]
struct SignUpForm {
    #[serde(default, skip_serializing)]
    csrf: String,
    organization: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    email: String,
    #[serde(default, skip_serializing)]
    password: String,
}

impl Guarded for SignUpForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A tenant that lets nobody sign up has no sign-up page.
fn no_sign_up() -> Response {
    (StatusCode::NOT_FOUND, no_cache(), "Not found").into_response()
}

async fn sign_up_page(page: Page) -> Response {
    if !page.tenant.self_sign_up {
        return no_sign_up();
    }
    page.render(
        StatusCode::OK,
        "sign_up.html",
        context! { form => SignUpForm::default() },
    )
}

async fn sign_up(Posted(page, form): Posted<SignUpForm>) -> Response {
    if !page.tenant.self_sign_up {
        return no_sign_up();
    }
    let optional = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
    let signed_up = page
        .call(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) { user { email } } }",
            json!({ "input": {
                "tenantId": page.tenant_id,
                "customerTitle": form.organization,
                "email": form.email,
                "password": form.password,
                "firstName": optional(&form.first_name),
                "lastName": optional(&form.last_name),
            } }),
        )
        .await;
    // A taken address gets the same answer as a new one (the API's rule).
    match signed_up {
        Ok(data) => {
            let sent_to = data["signUp"]["user"]["email"]
                .as_str()
                .unwrap_or(form.email.as_str())
                .to_owned();
            let approval = page.tenant.require_approval;
            page.render(
                StatusCode::OK,
                "sign_up.html",
                context! { sent_to, approval },
            )
        }
        Err(refusal) => page.render(
            status_of(&refusal),
            "sign_up.html",
            context! { error => refusal.message, field => refusal.field, form },
        ),
    }
}

/// The tenant's accent colour as a stylesheet (`#rrggbb`, checked when it
/// was set), so the pages need no inline style.
async fn theme(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    let row = match hosted_tenant(&state, &tenant).await {
        Ok((row, _)) => row,
        Err(response) => return response,
    };
    let css = row
        .accent_color
        .map(|accent| format!(":root {{ --accent: {accent}; }}\n"))
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        css,
    )
        .into_response()
}
