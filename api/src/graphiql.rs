//! GraphiQL, served whole by this binary: the page at GET /graphql and its
//! scripts and styles under /graphiql/, pinned and compiled in, so that it
//! works with no internet and loads nothing from anybody else.
//!
//! The files are in `api/assets/graphiql/` (versions and licences in its
//! README). Every asset's path names its version, or for our own mount
//! script a hash of its bytes, so it may be cached for a year: a new
//! version is a new URL.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// Where the assets are served from.
const PREFIX: &str = "/graphiql/";

/// The page's Content-Security-Policy: this server only. Styles may be
/// inline because GraphiQL's dialogs add `<style>` elements; the fonts are
/// `data:` URLs inside graphiql.min.css.
const CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const MOUNT: &[u8] = include_bytes!("../assets/graphiql/mount.js");

struct Asset {
    /// The path under `PREFIX`, e.g. `3.9.0/graphiql.min.js`.
    path: String,
    content_type: &'static str,
    body: &'static [u8],
}

/// The assets in the order the page loads them.
static ASSETS: LazyLock<[Asset; 5]> = LazyLock::new(|| {
    let asset = |path: String, content_type, body| Asset {
        path,
        content_type,
        body,
    };
    [
        asset(
            "react-18.3.1/react.production.min.js".into(),
            JS,
            include_bytes!("../assets/graphiql/react.production.min.js"),
        ),
        asset(
            "react-dom-18.3.1/react-dom.production.min.js".into(),
            JS,
            include_bytes!("../assets/graphiql/react-dom.production.min.js"),
        ),
        asset(
            "3.9.0/graphiql.min.css".into(),
            CSS,
            include_bytes!("../assets/graphiql/graphiql.min.css"),
        ),
        asset(
            "3.9.0/graphiql.min.js".into(),
            JS,
            include_bytes!("../assets/graphiql/graphiql.min.js"),
        ),
        asset(format!("canopy-{:016x}/mount.js", fnv1a(MOUNT)), JS, MOUNT),
    ]
});

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut head = String::new();
    let mut body = String::new();
    for asset in ASSETS.iter() {
        let url = format!("{PREFIX}{}", asset.path);
        if asset.content_type == CSS {
            head.push_str(&format!("    <link rel=\"stylesheet\" href=\"{url}\">\n"));
        } else {
            body.push_str(&format!("    <script src=\"{url}\"></script>\n"));
        }
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="same-origin">
    <title>Canopy · GraphiQL</title>
    <link rel="icon" href="data:,">
{head}    <style>
      body {{ margin: 0; height: 100%; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <noscript>GraphiQL needs JavaScript.</noscript>
{body}  </body>
</html>
"#
    )
});

/// GET /graphql: the page, which loads only what `routes` serves.
pub async fn page() -> Response {
    let mut page = Html(PAGE.as_str()).into_response();
    page.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    page
}

/// The assets, at `/graphiql/<version>/<file>`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(&format!("{PREFIX}{{*path}}"), get(asset))
}

async fn asset(Path(path): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
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

/// FNV-1a, 64 bits: enough to give our own script a new URL when it changes.
pub(crate) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_every_asset_and_nothing_else() {
        for asset in ASSETS.iter() {
            assert!(PAGE.contains(&format!("\"{PREFIX}{}\"", asset.path)));
            assert!(!asset.body.is_empty(), "{}", asset.path);
        }
        assert!(!PAGE.contains("http"), "{}", *PAGE);
        assert!(!CSP.contains("http"), "{CSP}");
        assert!(CSP.contains("script-src 'self';"), "{CSP}");
    }
}
