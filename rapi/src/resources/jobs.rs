//! Jobs: `/2/jobs`, `/2/jobs/{job_id}`, `/2/jobs/{job_id}/wait`.

use axum::http::StatusCode;
use luxi::request::Request;
use serde_json::{json, Map, Value};

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;

/// The fields of `GET /2/jobs?bulk=1`.
pub const J_FIELDS_BULK: [&str; 8] = [
    "id",
    "ops",
    "status",
    "summary",
    "opstatus",
    "received_ts",
    "start_ts",
    "end_ts",
];

/// The fields of `GET /2/jobs/{job_id}`.
pub const J_FIELDS: [&str; 10] = [
    "id",
    "ops",
    "status",
    "summary",
    "opstatus",
    "received_ts",
    "start_ts",
    "end_ts",
    "oplog",
    "opresult",
];

/// How long one `/wait` waits for a change, as in Ganeti.
const WAIT_TIMEOUT_SECS: f64 = 10.0;

const FINAL: [&str; 3] = ["success", "error", "canceled"];

fn strings(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| (*s).to_string()).collect()
}

fn dict(fields: &[&str], row: &Value) -> Value {
    let vals = row.as_array().cloned().unwrap_or_default();
    Value::Object(
        fields
            .iter()
            .map(|f| (*f).to_string())
            .zip(vals)
            .collect::<Map<String, Value>>(),
    )
}

fn job_id(ctx: &Ctx) -> Result<u64, ApiError> {
    // The path already matched `\d+`; only an overflow is left.
    ctx.item(0).parse().map_err(|_| ApiError::not_found())
}

/// `GET /2/jobs`: `[{"id", "uri"}]` sorted by id, or with `bulk=1` the
/// jobs' main fields.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let bulk = ctx.bulk()?;
    let fields: &[&str] = if bulk { &J_FIELDS_BULK } else { &["id"] };
    let rows = ctx
        .call(&Request::QueryJobs {
            ids: None,
            fields: strings(fields),
        })
        .await?;
    let rows: Vec<Value> = rows
        .as_array()
        .map(|r| r.iter().filter(|x| !x.is_null()).cloned().collect())
        .unwrap_or_default();
    if bulk {
        return Ok(Value::Array(rows.iter().map(|r| dict(fields, r)).collect()).into());
    }
    let mut ids: Vec<u64> = rows
        .iter()
        .filter_map(|r| r.get(0).and_then(Value::as_u64))
        .collect();
    ids.sort_unstable();
    Ok(Value::Array(
        ids.into_iter()
            .map(|id| json!({"id": id, "uri": format!("/2/jobs/{id}")}))
            .collect(),
    )
    .into())
}

/// `GET /2/jobs/{job_id}`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = job_id(&ctx)?;
    let rows = ctx
        .call(&Request::QueryJobs {
            ids: Some(vec![id]),
            fields: strings(&J_FIELDS),
        })
        .await?;
    match rows.get(0) {
        Some(row) if !row.is_null() => Ok(dict(&J_FIELDS, row).into()),
        _ => Err(ApiError::not_found()),
    }
}

/// `DELETE /2/jobs/{job_id}`: cancels a job; `[success, message]`.
pub async fn cancel(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = job_id(&ctx)?;
    Ok(ctx
        .call(&Request::CancelJob {
            job: id,
            kill: false,
        })
        .await?
        .into())
}

/// `GET /2/jobs/{job_id}/wait`: waits (up to 10 s) for the job to change
/// from what the client last saw; `null` when it did not, else
/// `{"job_info", "log_entries"}`. The body: `fields` (a list),
/// `previous_job_info` (a list or null), `previous_log_serial` (a number
/// or null).
pub async fn wait(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = job_id(&ctx)?;
    let body = ctx.body_dict()?;
    for key in body.keys() {
        if !["fields", "previous_job_info", "previous_log_serial"].contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unknown parameter '{key}' in the body"
            )));
        }
    }
    let fields = body
        .get("fields")
        .ok_or_else(|| ApiError::bad_request("Required parameter 'fields' is missing"))?;
    let fields: Vec<String> = match fields {
        Value::Array(a) => a
            .iter()
            .map(|f| f.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request("The 'fields' parameter should be a list"))?,
        _ => {
            return Err(ApiError::bad_request(
                "The 'fields' parameter should be a list",
            ))
        }
    };
    let prev_info = body
        .get("previous_job_info")
        .cloned()
        .unwrap_or(Value::Null);
    if !(prev_info.is_null() || prev_info.is_array()) {
        return Err(ApiError::bad_request(
            "The 'previous_job_info' parameter should be a list",
        ));
    }
    let prev_serial = body
        .get("previous_log_serial")
        .cloned()
        .unwrap_or(Value::Null);
    if !(prev_serial.is_null() || prev_serial.is_i64() || prev_serial.is_u64()) {
        return Err(ApiError::bad_request(
            "The 'previous_log_serial' parameter should be a number",
        ));
    }
    let result = ctx
        .call(&Request::WaitForJobChange {
            job: id,
            fields,
            prev_job_info: prev_info,
            prev_log_serial: prev_serial,
            timeout: WAIT_TIMEOUT_SECS,
        })
        .await?;
    match result {
        Value::Null | Value::Bool(false) => Err(ApiError::not_found()),
        Value::String(s) if s == "nochange" => Ok(Value::Null.into()),
        Value::Array(mut a) if a.len() == 2 => {
            let logs = a.pop().unwrap_or(Value::Null);
            let info = a.pop().unwrap_or(Value::Null);
            Ok(json!({"job_info": info, "log_entries": logs}).into())
        }
        other => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("Unexpected answer to WaitForJobChange: {other}"),
        )),
    }
}

/// Waits until job `id` ends; its results if it succeeded, else a 500
/// with what it said.
pub async fn wait_for_result(ctx: &Ctx, id: u64) -> Result<Value, ApiError> {
    let mut prev = Value::Null;
    loop {
        let r = ctx
            .call(&Request::WaitForJobChange {
                job: id,
                fields: vec!["status".into()],
                prev_job_info: prev.clone(),
                prev_log_serial: Value::Null,
                timeout: WAIT_TIMEOUT_SECS,
            })
            .await?;
        if let Some(info) = r.get(0) {
            let status = info.get(0).and_then(Value::as_str).unwrap_or_default();
            if FINAL.contains(&status) {
                break;
            }
            prev = info.clone();
        }
    }
    let rows = ctx
        .call(&Request::QueryJobs {
            ids: Some(vec![id]),
            fields: strings(&["status", "opresult"]),
        })
        .await?;
    let status = rows.pointer("/0/0").and_then(Value::as_str).unwrap_or("");
    let result = rows.pointer("/0/1").cloned().unwrap_or(Value::Null);
    if status == "success" {
        Ok(result)
    } else {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Job {id} ended with status {status}: {result}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::type_error;

    #[test]
    fn rows_become_dicts_of_the_fields() {
        assert_eq!(
            dict(&["id", "status"], &json!([3, "success"])),
            json!({"id": 3, "status": "success"})
        );
    }

    #[test]
    fn a_type_error_names_the_python_type() {
        let e = type_error("Body contents", &json!([1]), "dict");
        assert_eq!(
            e.message.unwrap(),
            "Body contents: Type is 'list', but 'dict' is expected"
        );
    }
}
