//! One request as a resource handler sees it: the names in its path, its
//! query arguments (Ganeti's `dry-run`, `force`, `bulk`, `lock`, `reason`,
//! ...), its JSON body, who made it, and the ways to answer (a value, JSON
//! text, a submitted job).

use std::sync::Arc;

use axum::http::StatusCode;
use luxi::request::Request;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::Route;
use crate::state::State;

/// A handler's answer: a value, JSON text passed on as it is, or a whole
/// response of its own (a stream, plain text).
#[derive(Debug)]
pub enum Reply {
    Value(Value),
    Json(String),
    Response(axum::response::Response),
}

impl From<Value> for Reply {
    fn from(v: Value) -> Self {
        Reply::Value(v)
    }
}

/// A request, parsed.
pub struct Ctx {
    pub state: Arc<State>,
    pub route: &'static Route,
    /// The names in the path, in order (`/2/instances/{instance_name}/disk/{disk_index}/grow`).
    pub items: Vec<String>,
    /// The query arguments, in order; blank values are dropped, as
    /// Python's `parse_qs` does.
    pub query: Vec<(String, String)>,
    /// The JSON body; `None` when the body is empty.
    pub body: Option<Value>,
    /// Who made the request, when it carried credentials.
    pub principal: Option<Principal>,
    /// The request's headers.
    pub headers: axum::http::HeaderMap,
}

/// Python's name of a JSON value's type, as Ganeti's messages use it.
pub fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Ganeti's message for a value of the wrong type.
pub fn type_error(descr: &str, v: &Value, expected: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{descr}: Type is '{}', but '{expected}' is expected",
        py_type(v)
    ))
}

impl Ctx {
    /// The `i`-th name of the path.
    pub fn item(&self, i: usize) -> &str {
        self.items.get(i).map_or("", String::as_str)
    }

    /// The first value of query argument `name`.
    pub fn query_str(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of query argument `name`.
    pub fn query_all(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// An integer query argument, `default` when absent.
    pub fn int_arg(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.query_str(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ApiError::bad_request(format!("Invalid value for the '{name}' parameter"))
            }),
        }
    }

    /// A 0/1 query argument (any non-zero integer is true).
    pub fn flag_arg(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.int_arg(name, 0)? != 0)
    }

    pub fn bulk(&self) -> Result<bool, ApiError> {
        self.flag_arg("bulk")
    }

    pub fn force(&self) -> Result<bool, ApiError> {
        self.flag_arg("force")
    }

    pub fn dry_run(&self) -> Result<bool, ApiError> {
        self.flag_arg("dry-run")
    }

    pub fn locking(&self) -> Result<bool, ApiError> {
        self.flag_arg("lock")
    }

    /// The body as a dict; no body is an empty one.
    pub fn body_dict(&self) -> Result<Map<String, Value>, ApiError> {
        match &self.body {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(type_error("Body contents", other, "dict")),
        }
    }

    /// Asks the master.
    pub async fn call(&self, req: &Request) -> Result<Value, ApiError> {
        Ok(self.state.master.call(req).await?)
    }

    /// Asks the master; its whole reply message (see
    /// [`crate::master::Master::call_message`]).
    pub async fn call_message(&self, req: &Request) -> Result<String, ApiError> {
        Ok(self.state.master.call_message(req).await?)
    }

    /// Asks the master; the result as JSON text.
    pub async fn call_text(&self, req: &Request) -> Result<String, ApiError> {
        Ok(self.state.master.call_text(req).await?)
    }

    /// The reason trail every opcode of a RAPI request carries: the
    /// user's `reason` argument, then this resource.
    pub fn reason_trail(&self) -> Value {
        let now = epoch_nanos();
        let mut trail = Vec::new();
        if let Some(r) = self.query_str("reason") {
            trail.push(json!(["gnt:user", r, now]));
        }
        trail.push(json!([
            format!("gnt:library:rlib2:{}", self.route.name),
            "",
            now
        ]));
        Value::Array(trail)
    }

    /// Submits a job of `ops`; answers with its id.
    pub async fn submit(&self, ops: Vec<Value>) -> Result<Reply, ApiError> {
        Ok(Reply::Value(self.submit_job(ops).await?))
    }

    /// Submits a job of `ops`; its id. A token limited to some opcodes
    /// may submit only those.
    pub async fn submit_job(&self, ops: Vec<Value>) -> Result<Value, ApiError> {
        if let Some(p) = &self.principal {
            for op in &ops {
                let id = op.get("OP_ID").and_then(Value::as_str).unwrap_or("");
                if !p.may_submit(id) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!("The credentials used may not submit {id}"),
                    ));
                }
            }
        }
        self.call(&Request::SubmitJob(ops)).await
    }
}

/// Nanoseconds since the epoch (the reason trail's timestamps).
pub fn epoch_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
