//! GraphQL over HTTP, as the GraphQL Foundation's draft specification
//! (graphql-over-http) has it: which media type /graphql answers in, the
//! status of each answer, and queries over GET. README's "HTTP endpoints"
//! says the same for callers.
//!
//! - `Accept` chooses `application/graphql-response+json` or
//!   `application/json`; a missing `Accept`, or a wildcard, gets the
//!   former; one that accepts neither is answered 406.
//! - A request that never reaches execution (unreadable, without a query,
//!   a syntax or validation error, an unknown operation, variables of the
//!   wrong type) is a request error: its answer has `errors` and no `data`,
//!   as the GraphQL specification asks of errors raised before execution.
//!   Under `application/graphql-response+json` it is answered 400; under
//!   `application/json` 200 once the request is well formed, 400 otherwise.
//! - Once execution began the answer is 200, field errors or not.

use async_graphql::ParseRequestError;
use async_graphql::parser::types::OperationType;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mediatype::{MediaType, MediaTypeList, Name, ReadParams, names};
use serde::Deserialize;
use serde_json::json;

const GRAPHQL_RESPONSE: Name = Name::new_unchecked("graphql-response");

/// `application/graphql-response+json`.
const GRAPHQL_RESPONSE_JSON: MediaType =
    MediaType::from_parts(names::APPLICATION, GRAPHQL_RESPONSE, Some(names::JSON), &[]);
const APPLICATION_JSON: MediaType = MediaType::new(names::APPLICATION, names::JSON);
const TEXT_HTML: MediaType = MediaType::new(names::TEXT, names::HTML);

/// The media types /graphql answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: a request error is answered 4xx.
    GraphQLResponse,
    /// `application/json`, for older clients: every well-formed request is
    /// answered 200.
    Json,
}

impl Media {
    /// The one `Accept` ranks higher by `q` (a more specific range
    /// overriding a wider one); `application/graphql-response+json` on a
    /// tie, for a wildcard, and when `Accept` is missing or unreadable.
    /// `None` when the client accepts neither.
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some([ours, json]) = qualities(headers, [GRAPHQL_RESPONSE_JSON, APPLICATION_JSON])
        else {
            return Some(Self::GraphQLResponse);
        };
        match (ours, json) {
            (0, 0) => None,
            (ours, json) if json > ours => Some(Self::Json),
            _ => Some(Self::GraphQLResponse),
        }
    }

    /// For answers given whatever `Accept` says (a refusal, a timeout): the
    /// negotiated type, else ours.
    pub fn for_errors(headers: &HeaderMap) -> Self {
        Self::negotiate(headers).unwrap_or(Self::GraphQLResponse)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }

    /// `body`, JSON text, in this media type.
    fn answer(self, status: StatusCode, body: String) -> Response {
        (status, [(header::CONTENT_TYPE, self.content_type())], body).into_response()
    }

    /// A request refused before execution: one coded error, no `data`.
    pub fn refuse(self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
        self.answer(status, body.to_string())
    }

    /// A request refused for one of its inputs outside the GraphQL
    /// document (a header): BAD_USER_INPUT naming it in `field`.
    pub fn refuse_input(self, status: StatusCode, field: &str, message: &str) -> Response {
        let extensions = json!({ "field": field });
        self.refuse_with(status, "BAD_USER_INPUT", message, extensions)
    }

    /// A refusal whose error carries more `extensions` than its code.
    pub fn refuse_with(
        self,
        status: StatusCode,
        code: &str,
        message: &str,
        extensions: serde_json::Value,
    ) -> Response {
        let mut extensions = match extensions {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        extensions.insert("code".into(), code.into());
        let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
        self.answer(status, body.to_string())
    }

    /// An answer kept from an earlier request, as it was.
    pub fn replay(self, status: StatusCode, body: String) -> Response {
        self.answer(status, body)
    }

    /// What the schema answered: 200 once execution began; before it, a
    /// request error, without `data`, 400 under
    /// `application/graphql-response+json` and 200 under `application/json`.
    pub fn respond(self, response: async_graphql::Response, executed: bool) -> Response {
        let status = match self {
            _ if executed => StatusCode::OK,
            Self::GraphQLResponse => StatusCode::BAD_REQUEST,
            Self::Json => StatusCode::OK,
        };
        // Written straight from the response, fields in the query's order.
        let body = if executed {
            serde_json::to_string(&response).expect("a response serializes")
        } else {
            let mut body = serde_json::to_value(&response).expect("a response serializes");
            if let Some(body) = body.as_object_mut() {
                body.remove("data");
            }
            body.to_string()
        };
        let mut http = self.answer(status, body);
        http.headers_mut().extend(response.http_headers);
        http
    }

    /// A body that is no GraphQL request (malformed JSON, a lone surrogate,
    /// too deep, too large): a coded error, never the parser's text.
    pub fn unreadable(self, error: &ParseRequestError) -> Response {
        match error {
            ParseRequestError::PayloadTooLarge => self.refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                "the request body is too large",
            ),
            _ => self.refuse(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "the request body is not a GraphQL request in JSON",
            ),
        }
    }
}

/// 406: the client accepts neither media type. Said in JSON all the same.
pub fn not_acceptable() -> Response {
    Media::Json.refuse(
        StatusCode::NOT_ACCEPTABLE,
        "BAD_USER_INPUT",
        "accept application/graphql-response+json or application/json",
    )
}

/// 405 with `Allow: POST`: GET may not carry a mutation, which a link or
/// a prefetch could otherwise set off.
pub fn mutation_over_get(media: Media) -> Response {
    let mut response = media.refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "BAD_USER_INPUT",
        "send mutations with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Whether `Accept` asks for a web page: `text/html`, or a wildcard over it.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    qualities(headers, [TEXT_HTML]).is_some_and(|[html]| html > 0)
}

/// Whether a POST body is declared JSON: `application/json`, in UTF-8 when
/// a charset is named.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| MediaType::parse(v.trim()).ok())
        .is_some_and(|ty| ty.essence() == APPLICATION_JSON && is_utf8(&ty))
}

/// How much `Accept` wants each of `types`, in thousandths (0: not at
/// all); `None` when there is no `Accept`, or one that cannot be read,
/// which is taken as none.
fn qualities<const N: usize>(headers: &HeaderMap, types: [MediaType; N]) -> Option<[u16; N]> {
    let mut accept = String::new();
    for value in headers.get_all(header::ACCEPT) {
        if !accept.is_empty() {
            accept.push(',');
        }
        accept.push_str(value.to_str().ok()?);
    }
    if accept.trim().is_empty() {
        return None;
    }
    let ranges: Vec<MediaType> = MediaTypeList::new(&accept).collect::<Result<_, _>>().ok()?;
    Some(types.map(|ty| quality(&ranges, &ty)))
}

/// The `q` of the most specific range that covers `ty` (RFC 9110,
/// 12.5.1), in thousandths; 0 when none does. A range that names a
/// charset other than UTF-8 covers nothing: every answer is UTF-8.
fn quality(ranges: &[MediaType], ty: &MediaType) -> u16 {
    ranges
        .iter()
        .filter_map(|range| {
            let specificity = if range.ty == names::_STAR {
                0
            } else if range.ty != ty.ty {
                return None;
            } else if range.subty == names::_STAR {
                1
            } else if range.subty == ty.subty && range.suffix == ty.suffix {
                2
            } else {
                return None;
            };
            if !is_utf8(range) {
                return None;
            }
            let q = match range.get_param(names::Q) {
                None => 1000,
                Some(q) => {
                    let q: f32 = q.unquoted_str().parse().ok()?;
                    if !(0.0..=1.0).contains(&q) {
                        return None;
                    }
                    (q * 1000.0).round() as u16
                }
            };
            Some((specificity, q))
        })
        .max_by_key(|&(specificity, _)| specificity)
        .map_or(0, |(_, q)| q)
}

fn is_utf8(ty: &MediaType) -> bool {
    ty.get_param(names::CHARSET)
        .is_none_or(|charset| charset.unquoted_str().eq_ignore_ascii_case("utf-8"))
}

/// The parameters of a GET: `variables` and `extensions` are URL-encoded
/// JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParameters {
    pub query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParameters {
    /// The parameters in `uri`'s query string; the message says what is
    /// wrong with them.
    pub fn of(uri: &Uri) -> Result<Self, &'static str> {
        Query::try_from_uri(uri)
            .map(|Query(parameters)| parameters)
            .map_err(|_| "the query string is not a GraphQL request")
    }

    /// The GraphQL request they make.
    pub fn into_request(self) -> Result<async_graphql::Request, &'static str> {
        let mut request = async_graphql::Request::new(self.query.unwrap_or_default());
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables =
                serde_json::from_str(&variables).map_err(|_| "variables is not a JSON object")?;
        }
        if let Some(extensions) = self.extensions {
            request.extensions =
                serde_json::from_str(&extensions).map_err(|_| "extensions is not a JSON object")?;
        }
        Ok(request)
    }
}

/// Whether the operation `request` would run is a mutation. A document
/// that does not parse, or names no operation that it has, is not: the
/// schema refuses it as a request error.
pub fn is_mutation(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    crate::graphql::operation(document, name.as_deref())
        .is_some_and(|operation| operation.node.ty == OperationType::Mutation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiate(accept: Option<&str>) -> Option<Media> {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, accept.parse().unwrap());
        }
        Media::negotiate(&headers)
    }

    #[test]
    fn accept_chooses_the_media_type() {
        use Media::{GraphQLResponse as Ours, Json};
        for (accept, expected) in [
            (None, Some(Ours)),
            (Some(""), Some(Ours)),
            (Some("*/*"), Some(Ours)),
            (Some("application/*"), Some(Ours)),
            (Some("application/graphql-response+json"), Some(Ours)),
            (Some("application/json"), Some(Json)),
            (Some("APPLICATION/JSON"), Some(Json)),
            (Some("application/json; charset=utf-8"), Some(Json)),
            (Some("application/json; charset=UTF-8"), Some(Json)),
            (
                Some(
                    "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8",
                ),
                Some(Ours),
            ),
            (
                Some("application/json, application/graphql-response+json"),
                Some(Ours),
            ),
            (
                Some("application/graphql-response+json;q=0.5, application/json;q=0.9"),
                Some(Json),
            ),
            (
                Some("application/json;q=0.5, application/graphql-response+json"),
                Some(Ours),
            ),
            (Some("application/json, */*;q=0.1"), Some(Json)),
            (
                Some("application/graphql-response+json;q=0, */*"),
                Some(Json),
            ),
            (Some("application/json, multipart/mixed"), Some(Json)),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Some(Ours),
            ),
            (Some("text/html"), None),
            (Some("application/xml, text/*"), None),
            (Some("application/json;q=0"), None),
            (Some("application/json; charset=iso-8859-1"), None),
            (Some("application/json;q=2"), None),
            (Some("not a media type"), Some(Ours)),
        ] {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn html_is_asked_for_by_name_or_wildcard() {
        let accepts = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, accept.parse().unwrap());
            accepts_html(&headers)
        };
        assert!(accepts("text/html"));
        assert!(accepts("*/*"));
        assert!(accepts("text/*"));
        assert!(!accepts("application/json"));
        assert!(!accepts("text/html;q=0, application/json"));
        assert!(!accepts_html(&HeaderMap::new()));
    }

    #[test]
    fn only_json_in_utf8_is_json() {
        let json = |content_type: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
            is_json(&headers)
        };
        assert!(json("application/json"));
        assert!(json("Application/JSON; charset=UTF-8"));
        assert!(json("application/json;charset=\"utf-8\""));
        assert!(!json("application/json; charset=latin1"));
        assert!(!json("application/jsonp"));
        assert!(!json("application/graphql"));
        assert!(!json("text/plain"));
        assert!(!json("multipart/form-data; boundary=x"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn the_operation_run_decides_what_is_a_mutation() {
        let mutation = |query: &str, name: Option<&str>| {
            let mut request = async_graphql::Request::new(query);
            request.operation_name = name.map(str::to_owned);
            is_mutation(&mut request)
        };
        assert!(mutation("mutation { a }", None));
        assert!(mutation("mutation M { a }", None));
        assert!(!mutation("{ a }", None));
        let both = "query Q { a } mutation M { b }";
        assert!(mutation(both, Some("M")));
        assert!(!mutation(both, Some("Q")));
        assert!(!mutation(both, None));
        assert!(!mutation("mutation {", None));
    }
}
