//! The operator console at /console: one page and its script and styles,
//! compiled in (no build step, nothing from anybody else), that speaks
//! only the public GraphQL API with the credential its user signs in with,
//! so it can do nothing that caller could not do by hand.
//!
//! It shows text that anonymous callers wrote (sign-up names, titles)
//! while holding a powerful credential, so the page runs under a strict
//! Content-Security-Policy: scripts and styles from this server only, no
//! inline code, and Trusted Types required, so no string can ever become
//! HTML (the script builds every element with the DOM and sets text as
//! text).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::graphiql::fnv1a;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const PAGE_TEMPLATE: &str = include_str!("../assets/console/index.html");
const SCRIPT: &[u8] = include_bytes!("../assets/console/console.js");
const STYLES: &[u8] = include_bytes!("../assets/console/console.css");

struct Asset {
    /// The path below `/console/assets/`, naming a hash of the bytes so
    /// that a changed file is a new URL and each may be cached for a year.
    path: String,
    content_type: &'static str,
    body: &'static [u8],
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        Asset {
            path: format!("console-{:016x}.js", fnv1a(SCRIPT)),
            content_type: "text/javascript; charset=utf-8",
            body: SCRIPT,
        },
        Asset {
            path: format!("console-{:016x}.css", fnv1a(STYLES)),
            content_type: "text/css; charset=utf-8",
            body: STYLES,
        },
    ]
});

static PAGE: LazyLock<String> = LazyLock::new(|| {
    PAGE_TEMPLATE
        .replace("{{script}}", &format!("/console/assets/{}", ASSETS[0].path))
        .replace("{{styles}}", &format!("/console/assets/{}", ASSETS[1].path))
});

/// GET /console and the assets it loads.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/assets/{file}", get(asset))
}

async fn page() -> Response {
    let mut page = Html(PAGE.as_str()).into_response();
    let headers = page.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    page
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_two_assets_and_nothing_else() {
        for asset in ASSETS.iter() {
            assert!(PAGE.contains(&format!("\"/console/assets/{}\"", asset.path)));
        }
        assert!(!PAGE.contains("{{"), "every placeholder filled");
        assert!(!PAGE.contains("http"), "nothing from elsewhere");
        assert!(!PAGE.contains("<script>"), "no inline script");
        assert!(!PAGE.contains("style="), "no inline style");
        let script = std::str::from_utf8(SCRIPT).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(
                !script.contains(sink),
                "the console never makes HTML of text: {sink}"
            );
        }
    }
}
