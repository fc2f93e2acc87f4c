//! HTTP errors in Ganeti's shape: a status code and the JSON body
//! `{"code": 404, "message": "Not Found", "explain": "Nothing matches the
//! given URI"}` (`message` is the error's own text when it has one,
//! `explain` the status's standard explanation).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use luxi::{ErrorCode, GanetiError};
use serde_json::json;

use crate::master::MasterError;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The error's text; `None` gives the status's short name.
    pub message: Option<String>,
    /// `WWW-Authenticate` (401) or `Allow` (405).
    pub header: Option<(&'static str, String)>,
}

/// The realm of HTTP Basic authentication, as Ganeti names it.
pub const AUTH_REALM: &str = "Ganeti Remote API";

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: Some(message.into()),
            header: None,
        }
    }

    fn bare(status: StatusCode) -> Self {
        ApiError {
            status,
            message: None,
            header: None,
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 without a message.
    pub fn not_found() -> Self {
        ApiError::bare(StatusCode::NOT_FOUND)
    }

    /// 401 asking for Basic credentials.
    pub fn unauthorized() -> Self {
        ApiError {
            header: Some(("www-authenticate", format!("Basic realm=\"{AUTH_REALM}\""))),
            ..ApiError::bare(StatusCode::UNAUTHORIZED)
        }
    }

    /// 403 without a message.
    pub fn forbidden() -> Self {
        ApiError::bare(StatusCode::FORBIDDEN)
    }

    /// 405 naming the methods the resource has.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Self {
        ApiError {
            header: Some(("allow", allowed.join(", "))),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method {method} is unsupported for path {path}"),
            )
        }
    }

    /// The error body.
    pub fn body(&self) -> serde_json::Value {
        let (short, explain) = reason(self.status);
        json!({
            "code": self.status.as_u16(),
            "message": escape_html(self.message.as_deref().unwrap_or(short)),
            "explain": explain,
        })
    }
}

/// The standard short name and explanation of a status (Python's
/// `BaseHTTPRequestHandler.responses`, which Ganeti's error bodies use).
fn reason(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("Bad Request", "Bad request syntax or unsupported method"),
        401 => ("Unauthorized", "No permission -- see authorization schemes"),
        403 => (
            "Forbidden",
            "Request forbidden -- authorization will not help",
        ),
        404 => ("Not Found", "Nothing matches the given URI"),
        405 => (
            "Method Not Allowed",
            "Specified method is invalid for this resource",
        ),
        413 => ("Request Entity Too Large", "Entity is too large"),
        415 => (
            "Unsupported Media Type",
            "Entity body in unsupported format",
        ),
        500 => ("Internal Server Error", "Server got itself in trouble"),
        501 => ("Not Implemented", "Server does not support this operation"),
        502 => ("Bad Gateway", "Invalid responses from another server/proxy"),
        503 => (
            "Service Unavailable",
            "The server cannot process the request due to a high load",
        ),
        504 => (
            "Gateway Timeout",
            "The gateway server did not receive a timely response",
        ),
        _ => ("Unknown", "Unknown"),
    }
}

/// Ganeti escapes the message as HTML (`html.escape`, quotes included).
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some((name, value)) = &self.header {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(*name, v);
            }
        }
        resp
    }
}

/// How an error of the master reaches the client:
/// - a full or drained queue: 503, as in Ganeti;
/// - an unknown object (`OpPrereqError` with `unknown_entity`, a lost
///   job): 404;
/// - a request the master refuses as malformed (`wrong_input`, a bad
///   parameter or filter): 400;
/// - an opcode ganeti-rs does not run yet: 501 with the master's message;
/// - any other error of the master: 500 with its class and message;
/// - the master unreachable: 502; too slow: 504.
impl From<MasterError> for ApiError {
    fn from(e: MasterError) -> Self {
        match e {
            MasterError::Server(g) => from_ganeti(&g),
            MasterError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "Timeout while talking to the master daemon",
            ),
            other => ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "Can't connect to master daemon: {}",
                    objects::error_chain(&other)
                ),
            ),
        }
    }
}

fn from_ganeti(g: &GanetiError) -> ApiError {
    if g.is_queue_drained() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Job queue is drained, cannot submit",
        );
    }
    let status = match g.class.as_str() {
        "JobQueueFull" => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Job queue is full, needs archiving",
            )
        }
        "JobLost" => StatusCode::NOT_FOUND,
        "OpCodeUnknown" => StatusCode::NOT_IMPLEMENTED,
        "ParameterError" | "QueryFilterParseError" => StatusCode::BAD_REQUEST,
        "OpPrereqError" => match g.code() {
            Some(ErrorCode::NoEnt) => StatusCode::NOT_FOUND,
            Some(ErrorCode::Inval) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        g.to_string()
    } else {
        g.message()
    };
    ApiError::new(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_ganetis_three_keys() {
        assert_eq!(
            ApiError::not_found().body(),
            json!({"code": 404, "message": "Not Found",
                   "explain": "Nothing matches the given URI"})
        );
        assert_eq!(
            ApiError::bad_request("Can't set 'x<y>' role").body()["message"],
            "Can&#x27;t set &#x27;x&lt;y&gt;&#x27; role"
        );
    }

    #[test]
    fn the_masters_errors_map_to_statuses() {
        let st = |g: GanetiError| ApiError::from(MasterError::Server(g)).status;
        assert_eq!(
            st(GanetiError::prereq(
                "Instance 'x' not known",
                ErrorCode::NoEnt
            )),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            st(GanetiError::prereq("bad", ErrorCode::Inval)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            st(GanetiError::opcode_unknown("not yet")),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            st(GanetiError::queue_drained()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            st(GanetiError::exec("boom")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
