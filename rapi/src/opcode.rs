//! Building an opcode from a request, as Ganeti's RAPI does: the body's
//! parameters, some renamed (`name` becomes `instance_name`), then the
//! parameters the resource fixes (the name from the path, `dry_run` from
//! the query), which the body may not set too.
//!
//! Parameter names are checked against Ganeti 3.0's opcode (every opcode,
//! including those ganeti-rs does not run yet): an unknown one is a 400
//! that names it. Types and values are the master's to check when the job
//! is submitted; an opcode the master does not run yet is still submitted,
//! and the master's refusal is the answer.

use serde_json::{Map, Value};

use crate::ctx::{type_error, Ctx, Reply};
use crate::error::ApiError;

/// How a resource builds its opcode.
pub struct Spec<'a> {
    pub op_id: &'static str,
    /// The body's parameters, `None` when the resource takes none.
    pub body: Option<&'a Value>,
    /// `(name in the body, opcode parameter)`.
    pub rename: &'static [(&'static str, &'static str)],
    /// Parameters the resource sets itself.
    pub fixed: Map<String, Value>,
}

/// The opcode dict of `spec`; `trail` is the reason trail, if it gets one.
pub fn fill(spec: Spec<'_>, trail: Option<Value>) -> Result<Value, ApiError> {
    let mut params = match spec.body {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(type_error("Body contents", other, "dict")),
    };
    for (old, new) in spec.rename {
        if params.contains_key(*old) && params.contains_key(*new) {
            return Err(ApiError::bad_request(format!(
                "Parameter '{old}' was renamed to '{new}', but both are specified"
            )));
        }
        if let Some(v) = params.remove(*old) {
            params.insert((*new).to_string(), v);
        }
    }
    let mut fixed = spec.fixed;
    if let Some(trail) = trail {
        fixed.insert("reason".into(), trail);
    }
    let mut overwritten: Vec<&str> = fixed
        .keys()
        .filter(|k| params.contains_key(k.as_str()))
        .map(String::as_str)
        .collect();
    if !overwritten.is_empty() {
        overwritten.sort_unstable();
        let list: Vec<String> = overwritten.iter().map(|k| format!("'{k}'")).collect();
        return Err(ApiError::bad_request(format!(
            "Can't overwrite static parameters {{{}}}",
            list.join(", ")
        )));
    }
    params.extend(fixed);
    let Some(known) = luxi::opcodes::opcode_params(spec.op_id) else {
        // Our own table and Ganeti's disagree: a bug, not bad input.
        return Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("Unknown opcode {}", spec.op_id),
        ));
    };
    let mut unknown: Vec<&String> = params
        .keys()
        .filter(|k| !luxi::opcodes::is_common_field(k) && !known.iter().any(|(p, _)| p == k))
        .collect();
    unknown.sort();
    if let Some(k) = unknown.first() {
        return Err(ApiError::bad_request(format!(
            "Invalid body parameters: {} has no parameter '{k}'",
            spec.op_id
        )));
    }
    if params.contains_key("OP_ID") {
        return Err(ApiError::bad_request(
            "Invalid body parameters: OP_ID cannot be set",
        ));
    }
    params.insert("OP_ID".into(), Value::from(spec.op_id));
    Ok(Value::Object(params))
}

/// Ganeti takes `depends` from any dict body, even of resources that
/// otherwise ignore their body.
pub fn depends_of(ctx: &Ctx) -> Option<Value> {
    match &ctx.body {
        Some(Value::Object(m)) => m.get("depends").filter(|d| is_truthy(d)).cloned(),
        _ => None,
    }
}

fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
    }
}

impl Ctx {
    /// Submits the one-opcode job of `spec`; answers with its id.
    pub async fn opcode_job(&self, mut spec: Spec<'_>) -> Result<Reply, ApiError> {
        // `depends` rides along in the body of the resources that read one,
        // and is added to the others.
        let in_body = matches!(spec.body, Some(Value::Object(m)) if m.contains_key("depends"));
        if !in_body {
            if let Some(d) = depends_of(self) {
                spec.fixed.insert("depends".into(), d);
            }
        }
        let op = fill(spec, Some(self.reason_trail()))?;
        self.submit(vec![op]).await
    }
}

/// A `Map` from pairs, for the fixed parameters.
pub fn fixed<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec<'a>(op_id: &'static str, body: Option<&'a Value>) -> Spec<'a> {
        Spec {
            op_id,
            body,
            rename: &[("name", "instance_name"), ("os", "os_type")],
            fixed: fixed([("dry_run", json!(false))]),
        }
    }

    #[test]
    fn body_renamed_and_fixed_parameters_make_the_opcode() {
        let body = json!({"name": "web1", "os": "tiny", "disk_template": "diskless"});
        let op = fill(spec("OP_INSTANCE_CREATE", Some(&body)), Some(json!([]))).unwrap();
        assert_eq!(
            op,
            json!({"OP_ID": "OP_INSTANCE_CREATE", "instance_name": "web1", "os_type": "tiny",
                   "disk_template": "diskless", "dry_run": false, "reason": []})
        );
    }

    #[test]
    fn an_unknown_parameter_is_refused_by_name() {
        let body = json!({"name": "web1", "bogus": 1});
        let e = fill(spec("OP_INSTANCE_CREATE", Some(&body)), Some(json!([]))).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message.unwrap(),
            "Invalid body parameters: OP_INSTANCE_CREATE has no parameter 'bogus'"
        );
    }

    #[test]
    fn renamed_twice_or_fixed_parameters_are_refused() {
        let body = json!({"name": "a", "instance_name": "b"});
        let e = fill(spec("OP_INSTANCE_CREATE", Some(&body)), Some(json!([]))).unwrap_err();
        assert!(e.message.unwrap().contains("renamed to 'instance_name'"));
        let body = json!({"dry_run": true});
        let e = fill(spec("OP_INSTANCE_CREATE", Some(&body)), Some(json!([]))).unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "Can't overwrite static parameters {'dry_run'}"
        );
    }

    #[test]
    fn a_body_that_is_not_a_dict_is_refused() {
        let body = json!(["x"]);
        let e = fill(spec("OP_INSTANCE_CREATE", Some(&body)), Some(json!([]))).unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "Body contents: Type is 'list', but 'dict' is expected"
        );
    }

    #[test]
    fn an_opcode_ganeti_rs_does_not_run_is_still_built() {
        let body = json!({"amount": 1024});
        let op = fill(
            Spec {
                op_id: "OP_INSTANCE_GROW_DISK",
                body: Some(&body),
                rename: &[],
                fixed: fixed([("instance_name", json!("i1")), ("disk", json!(0))]),
            },
            Some(json!([])),
        )
        .unwrap();
        assert_eq!(op["OP_ID"], "OP_INSTANCE_GROW_DISK");
        assert_eq!(op["amount"], 1024);
    }
}
