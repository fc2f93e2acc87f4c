//! Who may do what, as in Ganeti's RAPI:
//!
//! - a resource method asks for no right (most reads), for `read` or
//!   `write` (`/2/query`, a console), or for `write` (every change, and
//!   the reads that hold locks or block: `/2/jobs/N/wait`,
//!   `/2/nodes/N/storage`);
//! - credentials are checked when the method asks for a right, when the
//!   daemon runs with `--require-authentication`, or when the request
//!   carries them anyway;
//! - missing, unknown or wrong credentials get 401 with a Basic
//!   challenge; a user without the right gets 403.
//!
//! Credentials are HTTP Basic (a user of the users file) or, beyond
//! Ganeti, `Bearer` API tokens ([`crate::tokens`]).

use std::collections::HashMap;

use base64::Engine;

use crate::error::ApiError;
use crate::users::{check_password, User};

/// The right a resource method asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// None: anyone may, unless authentication is required.
    Anyone,
    /// `read` or `write`.
    ReadOrWrite,
    /// `write`.
    Write,
}

impl Access {
    /// The users-file options that grant it (Ganeti's `*_ACCESS` lists).
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Access::Anyone => &[],
            Access::ReadOrWrite => &["write", "read"],
            Access::Write => &["write"],
        }
    }
}

/// Whoever the credentials name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's or the token's name.
    pub name: String,
    pub read: bool,
    pub write: bool,
    /// The opcodes it may submit; `None`: any.
    pub opcodes: Option<Vec<String>>,
}

impl Principal {
    fn from_user(u: &User) -> Self {
        Principal {
            name: u.name.clone(),
            read: u.has_option("read"),
            write: u.has_option("write"),
            opcodes: None,
        }
    }

    /// Whether it has the right `access` asks for.
    pub fn allows(&self, access: Access) -> bool {
        match access {
            Access::Anyone => true,
            Access::ReadOrWrite => self.read || self.write,
            Access::Write => self.write,
        }
    }

    /// Whether it may submit opcode `op_id`.
    pub fn may_submit(&self, op_id: &str) -> bool {
        self.write
            && self
                .opcodes
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|o| o == op_id))
    }
}

/// Checks a request's credentials against what the method asks for.
/// `authorization` is the header's value; `bearer` looks an API token up.
pub fn authorize(
    access: Access,
    require_auth: bool,
    authorization: Option<&[u8]>,
    users: &HashMap<String, User>,
    bearer: impl Fn(&str) -> Option<Principal>,
) -> Result<Option<Principal>, ApiError> {
    if access == Access::Anyone && !require_auth && authorization.is_none() {
        return Ok(None);
    }
    let principal = authorization
        .map(|h| credentials(h, users, bearer))
        .transpose()?
        .flatten()
        .ok_or_else(ApiError::unauthorized)?;
    if principal.allows(access) {
        Ok(Some(principal))
    } else {
        Err(ApiError::forbidden())
    }
}

/// The principal named by an `Authorization` header, `None` when the
/// credentials are not valid.
fn credentials(
    header: &[u8],
    users: &HashMap<String, User>,
    bearer: impl Fn(&str) -> Option<Principal>,
) -> Result<Option<Principal>, ApiError> {
    let Ok(header) = std::str::from_utf8(header) else {
        return Ok(None);
    };
    let mut parts = header.split_whitespace();
    let scheme = parts.next().unwrap_or("").to_ascii_lowercase();
    let data = parts.next();
    match scheme.as_str() {
        "basic" => {
            let data = data.ok_or_else(|| {
                ApiError::bad_request("Basic authentication requires credentials")
            })?;
            Ok(basic(data, users))
        }
        "bearer" => Ok(data.and_then(bearer)),
        _ => Ok(None),
    }
}

fn basic(data: &str, users: &HashMap<String, User>) -> Option<Principal> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let creds = String::from_utf8(decoded).ok()?;
    let (name, password) = creds.split_once(':')?;
    let user = users.get(name)?;
    check_password(name, password, &user.password).then(|| Principal::from_user(user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::parse;
    use axum::http::StatusCode;

    fn basic_header(user: &str, pw: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
        .into_bytes()
    }

    fn status(r: Result<Option<Principal>, ApiError>) -> StatusCode {
        r.map_or_else(|e| e.status, |_| StatusCode::OK)
    }

    #[test]
    fn ganetis_rules() {
        let users = parse("writer wpw write\nreader rpw read\nnobody npw\n");
        let none = |_: &str| None;
        let auth = |access, req, h: Option<Vec<u8>>| {
            status(authorize(access, req, h.as_deref(), &users, none))
        };
        // Reads need nothing, unless authentication is required.
        assert_eq!(auth(Access::Anyone, false, None), StatusCode::OK);
        assert_eq!(auth(Access::Anyone, true, None), StatusCode::UNAUTHORIZED);
        assert_eq!(
            auth(Access::Anyone, true, Some(basic_header("nobody", "npw"))),
            StatusCode::OK
        );
        // Credentials sent anyway are checked.
        assert_eq!(
            auth(Access::Anyone, false, Some(basic_header("writer", "bad"))),
            StatusCode::UNAUTHORIZED
        );
        // Writes need a user with `write`.
        assert_eq!(auth(Access::Write, false, None), StatusCode::UNAUTHORIZED);
        assert_eq!(
            auth(Access::Write, false, Some(basic_header("writer", "wpw"))),
            StatusCode::OK
        );
        assert_eq!(
            auth(Access::Write, false, Some(basic_header("reader", "rpw"))),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            auth(Access::Write, false, Some(basic_header("ghost", "x"))),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth(
                Access::ReadOrWrite,
                false,
                Some(basic_header("reader", "rpw"))
            ),
            StatusCode::OK
        );
        assert_eq!(
            auth(
                Access::ReadOrWrite,
                false,
                Some(basic_header("nobody", "npw"))
            ),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            auth(Access::Write, false, Some(b"Digest abc".to_vec())),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth(Access::Write, false, Some(b"Basic".to_vec())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            auth(Access::Write, false, Some(b"Basic !!!".to_vec())),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn a_token_limited_to_opcodes_submits_only_those() {
        let p = Principal {
            name: "t".into(),
            read: true,
            write: true,
            opcodes: Some(vec!["OP_INSTANCE_STARTUP".into()]),
        };
        assert!(p.may_submit("OP_INSTANCE_STARTUP"));
        assert!(!p.may_submit("OP_INSTANCE_REMOVE"));
    }
}
