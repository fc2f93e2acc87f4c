//! Requests and responses of the LUXI protocol.

use serde_json::{json, Map, Value};

use crate::error::GanetiError;

/// The protocol version Ganeti 3.0 speaks (`BuildVersion 3 0 0`).
pub const LUXI_VERSION: u64 = 3_000_000;

/// A parsed request: the method name, its positional arguments and the
/// client's protocol version, if it sent one.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRequest {
    pub method: String,
    pub args: Value,
    pub version: Option<Value>,
}

/// Parses a request message; a message that is not a JSON object with
/// `method` and `args` is a protocol error.
pub fn parse_request(msg: &str) -> Result<RawRequest, GanetiError> {
    let v: Value = serde_json::from_str(msg)
        .map_err(|e| GanetiError::luxi(format!("Invalid RPC request (parsing error): {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(GanetiError::luxi("Invalid RPC request (not a dict)"));
    };
    let method = obj.remove("method");
    let args = obj.remove("args");
    let version = obj.remove("version");
    match (method, args) {
        (Some(Value::String(method)), Some(args)) => Ok(RawRequest {
            method,
            args,
            version,
        }),
        (Some(m), Some(_)) => Err(GanetiError::luxi(format!(
            "Invalid RPC request (method must be a string, got {m})"
        ))),
        _ => Err(GanetiError::luxi(
            "Invalid RPC request (no method or arguments in request)",
        )),
    }
}

/// Formats a request message.
pub fn format_request(method: &str, args: &Value, version: Option<u64>) -> String {
    let mut obj = Map::new();
    obj.insert("method".into(), json!(method));
    obj.insert("args".into(), args.clone());
    if let Some(v) = version {
        obj.insert("version".into(), json!(v));
    }
    Value::Object(obj).to_string()
}

/// Formats a response: success with a result, or failure with an encoded error.
pub fn format_response(result: Result<Value, GanetiError>, version: Option<u64>) -> String {
    let (success, result) = match result {
        Ok(v) => (true, v),
        Err(e) => (false, e.encode()),
    };
    let mut obj = Map::new();
    obj.insert("success".into(), json!(success));
    obj.insert("result".into(), result);
    if let Some(v) = version {
        obj.insert("version".into(), json!(v));
    }
    Value::Object(obj).to_string()
}

/// Formats a successful response whose result is already JSON text (a big
/// query response serialized straight from its rows); the same message as
/// [`format_response`] of the parsed value.
pub fn format_response_json(result_json: &str, version: Option<u64>) -> String {
    let mut out = String::with_capacity(result_json.len() + 48);
    out.push_str(r#"{"result":"#);
    out.push_str(result_json);
    out.push_str(r#","success":true"#);
    if let Some(v) = version {
        out.push_str(&format!(r#","version":{v}"#));
    }
    out.push('}');
    out
}

/// Starts a successful response in `out`; the caller appends the result
/// as JSON text, then calls [`finish_response_json`]. Together they write
/// what [`format_response_json`] does, without copying the result.
pub fn start_response_json(out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"result":"#);
}

/// Ends the response that [`start_response_json`] began.
pub fn finish_response_json(out: &mut Vec<u8>, version: Option<u64>) {
    out.extend_from_slice(br#","success":true"#);
    if let Some(v) = version {
        out.extend_from_slice(format!(r#","version":{v}"#).as_bytes());
    }
    out.push(b'}');
}

/// Parses a response message into the result or the server's error.
pub fn parse_response(msg: &str) -> Result<Result<Value, GanetiError>, GanetiError> {
    let v: Value = serde_json::from_str(msg)
        .map_err(|e| GanetiError::luxi(format!("Error while deserializing response: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(GanetiError::luxi(format!(
            "Invalid response from server: {msg}"
        )));
    };
    let (Some(success), Some(result)) = (obj.remove("success"), obj.remove("result")) else {
        return Err(GanetiError::luxi(format!(
            "Invalid response from server: {msg}"
        )));
    };
    if success.as_bool() == Some(true) {
        Ok(Ok(result))
    } else {
        Ok(Err(GanetiError::decode(&result)))
    }
}

/// Parses a response message, leaving a successful result as JSON text
/// (a slice of `msg`), for callers that read big answers straight into
/// their own types. `None` when the message is anything but a well-formed
/// success: [`parse_response`] then tells what it is.
pub fn success_text(msg: &str) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct Reply<'a> {
        success: bool,
        #[serde(borrow)]
        result: &'a serde_json::value::RawValue,
    }
    match serde_json::from_str::<Reply<'_>>(msg) {
        Ok(r) if r.success => Some(r.result.get()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_of_json_text_equals_the_formatted_value() {
        let result = json!({"fields": [], "data": [[[0, "inst1"], [2, null]]]});
        for version in [None, Some(LUXI_VERSION)] {
            let text = format_response_json(&result.to_string(), version);
            let direct = format_response(Ok(result.clone()), version);
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                serde_json::from_str::<Value>(&direct).unwrap()
            );
        }
    }

    #[test]
    fn a_response_written_around_its_result_equals_the_formatted_text() {
        let result = r#"{"fields":[],"data":[[[0,"inst1"],[2,null]]]}"#;
        for version in [None, Some(LUXI_VERSION)] {
            let mut out = Vec::new();
            start_response_json(&mut out);
            out.extend_from_slice(result.as_bytes());
            finish_response_json(&mut out, version);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format_response_json(result, version)
            );
        }
    }

    #[test]
    fn a_success_gives_its_result_as_text_and_anything_else_none() {
        let result = r#"{"fields": [], "data": [[[0, "inst1"]]]}"#;
        let msg = format_response_json(result, Some(LUXI_VERSION));
        assert_eq!(success_text(&msg), Some(result));
        let failure = format_response(Err(GanetiError::queue_drained()), None);
        assert_eq!(success_text(&failure), None);
        assert_eq!(success_text("[1, 2]"), None);
        assert_eq!(success_text("{not json"), None);
    }

    #[test]
    fn request_round_trip() {
        let msg = format_request("QueryJobs", &json!([[1], ["status"]]), Some(LUXI_VERSION));
        let r = parse_request(&msg).unwrap();
        assert_eq!(r.method, "QueryJobs");
        assert_eq!(r.args, json!([[1], ["status"]]));
        assert_eq!(r.version, Some(json!(LUXI_VERSION)));
    }

    #[test]
    fn request_without_args_is_refused() {
        let e = parse_request(r#"{"method": "QueryJobs"}"#).unwrap_err();
        assert_eq!(e.class, "LuxiError");
        assert!(e.message().contains("no method or arguments"));
    }

    #[test]
    fn request_that_is_not_json_is_refused() {
        let e = parse_request("{not json").unwrap_err();
        assert!(e.message().contains("parsing error"), "{e}");
    }

    #[test]
    fn failure_response_carries_encoded_error() {
        let msg = format_response(Err(GanetiError::queue_drained()), None);
        let r = parse_response(&msg).unwrap().unwrap_err();
        assert_eq!(r, GanetiError::queue_drained());
    }
}
