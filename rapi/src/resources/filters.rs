//! Job filter rules: `/2/filters` and `/2/filters/{filter_uuid}`.

use luxi::request::Request;
use serde_json::{json, Map, Value};

use super::uri_list;
use crate::ctx::{type_error, Ctx, Reply};
use crate::error::ApiError;

/// The fields of a filter rule.
pub const FILTER_RULE_FIELDS: [&str; 6] = [
    "watermark",
    "priority",
    "predicates",
    "action",
    "reason_trail",
    "uuid",
];

fn strings(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| (*s).to_string()).collect()
}

fn dict(row: &Value) -> Value {
    let vals = row.as_array().cloned().unwrap_or_default();
    Value::Object(
        FILTER_RULE_FIELDS
            .iter()
            .map(|f| (*f).to_string())
            .zip(vals)
            .collect::<Map<String, Value>>(),
    )
}

/// `GET /2/filters`: `[{"uuid", "uri"}]`, or every field with `bulk=1`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let bulk = ctx.bulk()?;
    let fields: &[&str] = if bulk { &FILTER_RULE_FIELDS } else { &["uuid"] };
    let rows = ctx
        .call(&Request::QueryFilters {
            uuids: None,
            fields: strings(fields),
        })
        .await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    if bulk {
        return Ok(Value::Array(rows.iter().map(dict).collect()).into());
    }
    let uuids = rows
        .iter()
        .filter_map(|r| r.get(0).and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    Ok(uri_list(uuids, "uuid", "/2/filters/").into())
}

/// `GET /2/filters/{filter_uuid}`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let rows = ctx
        .call(&Request::QueryFilters {
            uuids: Some(vec![ctx.item(0).to_string()]),
            fields: strings(&FILTER_RULE_FIELDS),
        })
        .await?;
    match rows.get(0) {
        Some(r) if !r.is_null() => Ok(dict(r).into()),
        _ => Err(ApiError::not_found()),
    }
}

/// The rule of a body: `priority` (integer, default 0), `predicates` (a
/// list, default none), `action` (default `CONTINUE`), `reason` (a list).
fn rule(ctx: &Ctx, uuid: Option<String>) -> Result<Request, ApiError> {
    let body = match &ctx.body {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "Invalid body contents, not a dictionary",
            ))
        }
    };
    if let Some(k) = body
        .keys()
        .find(|k| !["priority", "predicates", "action", "reason"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid body parameters: filter rule doesn't support the parameter '{k}'"
        )));
    }
    let priority = match body.get("priority") {
        None => 0,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| type_error("'priority' parameter", v, "int"))?,
    };
    let predicates = match body.get("predicates") {
        None => json!([]),
        Some(v @ Value::Array(_)) => v.clone(),
        Some(v) => return Err(type_error("'predicates' parameter", v, "list")),
    };
    let reason = match body.get("reason") {
        None => json!([]),
        Some(v @ Value::Array(_)) => v.clone(),
        Some(v) => return Err(type_error("'reason' parameter", v, "list")),
    };
    Ok(Request::ReplaceFilter {
        uuid,
        priority,
        predicates,
        action: body.get("action").cloned().unwrap_or(json!("CONTINUE")),
        reason,
    })
}

/// `POST /2/filters`: adds a rule; answers with its UUID.
pub async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let req = rule(&ctx, None)?;
    Ok(ctx.call(&req).await?.into())
}

/// `PUT /2/filters/{filter_uuid}`: replaces (or adds) a rule.
pub async fn replace(ctx: Ctx) -> Result<Reply, ApiError> {
    let req = rule(&ctx, Some(ctx.item(0).to_string()))?;
    Ok(ctx.call(&req).await?.into())
}

/// `DELETE /2/filters/{filter_uuid}`.
pub async fn delete(ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(ctx
        .call(&Request::DeleteFilter(ctx.item(0).to_string()))
        .await?
        .into())
}
