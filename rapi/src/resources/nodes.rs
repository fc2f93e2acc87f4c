//! Nodes: `/2/nodes` and `/2/nodes/{node_name}[/...]`.

use luxi::query::ItemType;
use serde_json::{json, Value};

use super::{list as list_items, Items};
use crate::ctx::{type_error, Ctx, Reply};
use crate::error::ApiError;
use crate::opcode::{fixed, Spec};

/// The fields of a node (`bulk=1` and `GET /2/nodes/{node_name}`).
pub const N_FIELDS: [&str; 31] = [
    "name",
    "offline",
    "master_candidate",
    "drained",
    "dtotal",
    "dfree",
    "sptotal",
    "spfree",
    "mtotal",
    "mnode",
    "mfree",
    "pinst_cnt",
    "sinst_cnt",
    "ctotal",
    "cnos",
    "cnodes",
    "csockets",
    "pip",
    "sip",
    "role",
    "pinst_list",
    "sinst_list",
    "master_capable",
    "vm_capable",
    "ndparams",
    "group.uuid",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
];

const NODES: Items<'static> = Items {
    what: ItemType::Node,
    fields: &N_FIELDS,
    fixup: None,
};

/// Node roles as RAPI names them, by the query's one-letter role.
const ROLES: [(&str, &str); 5] = [
    ("M", "master"),
    ("C", "master-candidate"),
    ("D", "drained"),
    ("O", "offline"),
    ("R", "regular"),
];

/// `GET /2/nodes`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    list_items(&ctx, &NODES, "id", "/2/nodes/").await
}

/// `GET /2/nodes/{node_name}`, with Ganeti's alias `secondary_ip` of `sip`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut node = NODES.one(&ctx, ctx.item(0)).await?;
    if let Some(sip) = node.get("sip").cloned() {
        node.insert("secondary_ip".into(), sip);
    }
    Ok(Value::Object(node).into())
}

fn node_name(ctx: &Ctx) -> Value {
    json!(ctx.item(0))
}

/// `POST /2/nodes/{node_name}/powercycle`: `OP_NODE_POWERCYCLE`.
pub async fn powercycle(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_POWERCYCLE",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("node_name", node_name(&ctx)),
            ("force", json!(ctx.force()?)),
        ]),
    })
    .await
}

/// `GET /2/nodes/{node_name}/role`.
pub async fn get_role(ctx: Ctx) -> Result<Reply, ApiError> {
    let items = Items {
        what: ItemType::Node,
        fields: &["role"],
        fixup: None,
    };
    let node = items.one(&ctx, ctx.item(0)).await?;
    let role = node.get("role").and_then(Value::as_str).unwrap_or("");
    let name = ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, n)| *n)
        .ok_or_else(|| ApiError::bad_request(format!("Unknown node role '{role}'")))?;
    Ok(json!(name).into())
}

/// `PUT /2/nodes/{node_name}/role`: the body is the new role, a string.
pub async fn set_role(ctx: Ctx) -> Result<Reply, ApiError> {
    let role = match &ctx.body {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(type_error("Body contents", other, "str")),
        None => return Err(type_error("Body contents", &Value::Null, "str")),
    };
    let (candidate, offline, drained) = match role.as_str() {
        "regular" => (json!(false), json!(false), json!(false)),
        "master-candidate" => (json!(true), Value::Null, Value::Null),
        "drained" => (Value::Null, Value::Null, json!(true)),
        "offline" => (Value::Null, json!(true), Value::Null),
        other => return Err(ApiError::bad_request(format!("Can't set '{other}' role"))),
    };
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_SET_PARAMS",
        body: None,
        rename: &[],
        fixed: fixed([
            ("node_name", node_name(&ctx)),
            ("master_candidate", candidate),
            ("offline", offline),
            ("drained", drained),
            ("force", json!(ctx.force()?)),
            ("auto_promote", json!(ctx.int_arg("auto-promote", 0)? != 0)),
        ]),
    })
    .await
}

/// `POST /2/nodes/{node_name}/evacuate`: `OP_NODE_EVACUATE`.
pub async fn evacuate(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_EVACUATE",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("node_name", node_name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `POST /2/nodes/{node_name}/migrate`: `OP_NODE_MIGRATE` with the body's
/// parameters, or the old query arguments `live` or `mode`.
pub async fn migrate(ctx: Ctx) -> Result<Reply, ApiError> {
    let old_style = ctx.has_query("live") || ctx.has_query("mode");
    let body = if old_style {
        if ctx.has_query("live") && ctx.has_query("mode") {
            return Err(ApiError::bad_request(
                "Only one of 'live' and 'mode' should be passed",
            ));
        }
        let mode = if ctx.has_query("live") {
            if ctx.int_arg("live", 1)? != 0 {
                json!("live")
            } else {
                json!("non-live")
            }
        } else {
            ctx.query_str("mode").map_or(Value::Null, |m| json!(m))
        };
        Some(json!({ "mode": mode }))
    } else {
        ctx.body.clone()
    };
    let mut fixed_params = fixed([("node_name", node_name(&ctx))]);
    if ctx.has_query("dry-run") {
        fixed_params.insert("dry_run".into(), json!(ctx.dry_run()?));
    }
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_MIGRATE",
        body: body.as_ref(),
        rename: &[],
        fixed: fixed_params,
    })
    .await
}

/// `POST /2/nodes/{node_name}/modify`: `OP_NODE_SET_PARAMS`.
pub async fn modify(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_SET_PARAMS",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([("node_name", node_name(&ctx))]),
    })
    .await
}

fn storage_type(ctx: &Ctx) -> Value {
    ctx.query_str("storage_type")
        .map_or(Value::Null, |s| json!(s))
}

fn required_name(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.query_str("name")
        .map(|n| json!(n))
        .ok_or_else(|| ApiError::bad_request("Missing the required 'name' parameter"))
}

/// `GET /2/nodes/{node_name}/storage`: `OP_NODE_QUERY_STORAGE`; a job.
pub async fn storage(ctx: Ctx) -> Result<Reply, ApiError> {
    let fields = ctx
        .query_str("output_fields")
        .ok_or_else(|| ApiError::bad_request("Missing the required 'output_fields' parameter"))?;
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_QUERY_STORAGE",
        body: None,
        rename: &[],
        fixed: fixed([
            ("nodes", json!([ctx.item(0)])),
            ("storage_type", storage_type(&ctx)),
            (
                "output_fields",
                json!(fields.split(',').collect::<Vec<_>>()),
            ),
        ]),
    })
    .await
}

/// `PUT /2/nodes/{node_name}/storage/modify`: `OP_NODE_MODIFY_STORAGE`.
pub async fn storage_modify(ctx: Ctx) -> Result<Reply, ApiError> {
    let name = required_name(&ctx)?;
    let mut changes = serde_json::Map::new();
    if ctx.has_query("allocatable") {
        changes.insert(
            "allocatable".into(),
            json!(ctx.int_arg("allocatable", 1)? != 0),
        );
    }
    ctx.opcode_job(Spec {
        op_id: "OP_NODE_MODIFY_STORAGE",
        body: None,
        rename: &[],
        fixed: fixed([
            ("node_name", node_name(&ctx)),
            ("storage_type", storage_type(&ctx)),
            ("name", name),
            ("changes", Value::Object(changes)),
        ]),
    })
    .await
}

/// `PUT /2/nodes/{node_name}/storage/repair`: `OP_REPAIR_NODE_STORAGE`.
pub async fn storage_repair(ctx: Ctx) -> Result<Reply, ApiError> {
    let name = required_name(&ctx)?;
    ctx.opcode_job(Spec {
        op_id: "OP_REPAIR_NODE_STORAGE",
        body: None,
        rename: &[],
        fixed: fixed([
            ("node_name", node_name(&ctx)),
            ("storage_type", storage_type(&ctx)),
            ("name", name),
        ]),
    })
    .await
}
