//! The cluster: `/`, `/2`, `/version`, `/2/info`, `/2/features`, `/2/os`,
//! `/2/redistribute-config`, `/2/modify`.

use axum::http::StatusCode;
use luxi::request::Request;
use serde_json::{json, Value};

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::opcode::{fixed, Spec};

/// RAPI's version.
pub const RAPI_VERSION: u64 = 2;

/// The optional features Ganeti 3.0 announces, which its client checks
/// before sending the newer request bodies.
pub const FEATURES: [&str; 4] = [
    "instance-create-reqv1",
    "instance-reinstall-reqv1",
    "node-migrate-reqv1",
    "node-evac-res1",
];

/// `GET /` and `GET /2`: kept for old clients; `null`.
pub async fn root(_ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(Value::Null.into())
}

/// `GET /version`.
pub async fn version(_ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(json!(RAPI_VERSION).into())
}

/// `GET /2/features`.
pub async fn features(_ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(json!(FEATURES).into())
}

/// `GET /2/info`: `QueryClusterInfo`, plus Ganeti's aliases `vg_name` and
/// `drbd_helper`.
pub async fn info(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut info = ctx.call(&Request::QueryClusterInfo).await?;
    if let Value::Object(m) = &mut info {
        for (name, alias) in [
            ("volume_group_name", "vg_name"),
            ("drbd_usermode_helper", "drbd_helper"),
        ] {
            if let Some(v) = m.get(name).cloned() {
                if m.contains_key(alias) {
                    return Err(ApiError::bad_request(format!(
                        "Parameter '{name}' has an alias of '{alias}', but both values are present in response"
                    )));
                }
                m.insert(alias.to_string(), v);
            }
        }
    }
    Ok(info.into())
}

/// `GET /2/os`: runs `OP_OS_DIAGNOSE` and answers with the OS names, one
/// per variant (`debootstrap+default`).
pub async fn os(ctx: Ctx) -> Result<Reply, ApiError> {
    let op = crate::opcode::fill(
        Spec {
            op_id: "OP_OS_DIAGNOSE",
            body: None,
            rename: &[],
            fixed: fixed([
                ("output_fields", json!(["name", "variants"])),
                ("names", json!([])),
            ]),
        },
        Some(ctx.reason_trail()),
    )?;
    let job =
        ctx.submit_job(vec![op]).await?.as_u64().ok_or_else(|| {
            ApiError::new(StatusCode::BAD_GATEWAY, "The master returned no job id")
        })?;
    let result = super::jobs::wait_for_result(&ctx, job).await?;
    let Some(Value::Array(rows)) = result.as_array().and_then(|r| r.first()).cloned() else {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, "Can't get OS list"));
    };
    let mut names = Vec::new();
    for row in rows {
        let name = row.get(0).and_then(Value::as_str).unwrap_or_default();
        let variants: Vec<&str> = row
            .get(1)
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if variants.is_empty() {
            names.push(name.to_string());
        } else {
            names.extend(variants.iter().map(|v| format!("{name}+{v}")));
        }
    }
    Ok(json!(names).into())
}

/// `PUT /2/redistribute-config`: `OP_CLUSTER_REDIST_CONF`.
pub async fn redistribute_config(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_CLUSTER_REDIST_CONF",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: Default::default(),
    })
    .await
}

/// `PUT /2/modify`: `OP_CLUSTER_SET_PARAMS` with the body's parameters;
/// `compression_tools` cannot be set over RAPI.
pub async fn modify(ctx: Ctx) -> Result<Reply, ApiError> {
    let in_body =
        matches!(&ctx.body, Some(Value::Object(m)) if m.contains_key("compression_tools"));
    if in_body || ctx.has_query("compression_tools") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "The parameter compression_tools cannot be set via RAPI",
        ));
    }
    ctx.opcode_job(Spec {
        op_id: "OP_CLUSTER_SET_PARAMS",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: Default::default(),
    })
    .await
}
