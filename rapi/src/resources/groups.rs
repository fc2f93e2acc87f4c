//! Node groups: `/2/groups` and `/2/groups/{group_name}[/...]`.

use luxi::query::ItemType;
use serde_json::{json, Value};

use super::{list as list_items, Items};
use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::opcode::{fixed, Spec};

/// The fields of a group (`bulk=1` and `GET /2/groups/{group_name}`).
pub const G_FIELDS: [&str; 15] = [
    "alloc_policy",
    "name",
    "node_cnt",
    "node_list",
    "ipolicy",
    "custom_ipolicy",
    "diskparams",
    "custom_diskparams",
    "ndparams",
    "custom_ndparams",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
];

const GROUPS: Items<'static> = Items {
    what: ItemType::Group,
    fields: &G_FIELDS,
    fixup: None,
};

fn name(ctx: &Ctx) -> Value {
    json!(ctx.item(0))
}

/// `GET /2/groups`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    list_items(&ctx, &GROUPS, "name", "/2/groups/").await
}

/// `GET /2/groups/{group_name}`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(Value::Object(GROUPS.one(&ctx, ctx.item(0)).await?).into())
}

/// `POST /2/groups`: `OP_GROUP_ADD` (`name` is the opcode's `group_name`).
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_GROUP_ADD",
        body: ctx.body.as_ref(),
        rename: &[("name", "group_name")],
        fixed: fixed([("dry_run", json!(ctx.dry_run()?))]),
    })
    .await
}

/// `DELETE /2/groups/{group_name}`: `OP_GROUP_REMOVE`.
pub async fn remove(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_GROUP_REMOVE",
        body: None,
        rename: &[],
        fixed: fixed([
            ("group_name", name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT /2/groups/{group_name}/modify`: `OP_GROUP_SET_PARAMS` (the
/// `custom_*` names are the opcode's parameters without the prefix).
pub async fn modify(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_GROUP_SET_PARAMS",
        body: ctx.body.as_ref(),
        rename: &[
            ("custom_ndparams", "ndparams"),
            ("custom_ipolicy", "ipolicy"),
            ("custom_diskparams", "diskparams"),
        ],
        fixed: fixed([("group_name", name(&ctx))]),
    })
    .await
}

/// `PUT /2/groups/{group_name}/rename`: `OP_GROUP_RENAME` (`new_name`).
pub async fn rename(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_GROUP_RENAME",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("group_name", name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT /2/groups/{group_name}/assign-nodes`: `OP_GROUP_ASSIGN_NODES`
/// (`nodes`).
pub async fn assign_nodes(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_GROUP_ASSIGN_NODES",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("group_name", name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
            ("force", json!(ctx.force()?)),
        ]),
    })
    .await
}
