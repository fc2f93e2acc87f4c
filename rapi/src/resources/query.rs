//! The query language: `/2/query/{resource}` (`GET` with `fields`, `PUT`
//! with `fields` and a filter `qfilter`) and `/2/query/{resource}/fields`.
//! The answers are the master's, passed on as they are.

use luxi::query::{Filter, ItemType, QueryFieldsRequest, QueryRequest};
use luxi::request::Request;
use serde_json::Value;

use crate::ctx::{type_error, Ctx, Reply};
use crate::error::ApiError;

fn resource(ctx: &Ctx) -> Result<ItemType, ApiError> {
    ItemType::parse(ctx.item(0)).ok_or_else(ApiError::not_found)
}

fn split_fields(s: &str) -> Vec<String> {
    s.split(',').map(|f| f.trim().to_string()).collect()
}

fn query_fields(ctx: &Ctx) -> Result<Vec<String>, ApiError> {
    ctx.query_str("fields")
        .map(split_fields)
        .ok_or_else(|| ApiError::bad_request("Missing 'fields' query argument"))
}

async fn run(ctx: &Ctx, fields: Vec<String>, filter: &Value) -> Result<Reply, ApiError> {
    let filter = Filter::from_json(filter)
        .map_err(|e| ApiError::bad_request(format!("Invalid query filter: {e}")))?;
    let req = Request::Query(QueryRequest {
        what: resource(ctx)?,
        fields,
        filter,
    });
    Ok(Reply::Json(ctx.call_text(&req).await?))
}

/// `GET /2/query/{resource}?fields=a,b`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    resource(&ctx)?;
    let fields = query_fields(&ctx)?;
    run(&ctx, fields, &Value::Null).await
}

/// `PUT /2/query/{resource}` with `{"fields": [...], "qfilter": [...]}`
/// (`filter` is the old name of `qfilter`; `fields` may be a query
/// argument instead).
pub async fn put(ctx: Ctx) -> Result<Reply, ApiError> {
    resource(&ctx)?;
    let body = match &ctx.body {
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(type_error("Body contents", other, "dict")),
        None => return Err(type_error("Body contents", &Value::Null, "dict")),
    };
    if let Some(k) = body
        .keys()
        .find(|k| !["fields", "qfilter", "filter"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Unknown parameter '{k}' in the body"
        )));
    }
    let fields = match body.get("fields") {
        None => query_fields(&ctx)?,
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| f.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request("'fields' must be a list of strings"))?,
        Some(other) => return Err(type_error("'fields' parameter", other, "list")),
    };
    let filter = match body.get("qfilter") {
        Some(f) if !f.is_null() => f.clone(),
        _ => body.get("filter").cloned().unwrap_or(Value::Null),
    };
    run(&ctx, fields, &filter).await
}

/// `GET /2/query/{resource}/fields[?fields=a,b]`: field definitions.
pub async fn fields(ctx: Ctx) -> Result<Reply, ApiError> {
    let req = Request::QueryFields(QueryFieldsRequest {
        what: resource(&ctx)?,
        fields: ctx
            .query_str("fields")
            .map(split_fields)
            .unwrap_or_default(),
    });
    Ok(Reply::Json(ctx.call_text(&req).await?))
}
