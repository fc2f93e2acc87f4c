//! Networks: `/2/networks` and `/2/networks/{network_name}[/...]`.

use luxi::query::ItemType;
use serde_json::{json, Value};

use super::{list as list_items, Items};
use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::opcode::{fixed, Spec};

/// The fields of a network (`bulk=1` and `GET /2/networks/{network_name}`).
pub const NET_FIELDS: [&str; 17] = [
    "name",
    "network",
    "gateway",
    "network6",
    "gateway6",
    "mac_prefix",
    "free_count",
    "reserved_count",
    "map",
    "group_list",
    "inst_list",
    "external_reservations",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
];

const NETWORKS: Items<'static> = Items {
    what: ItemType::Network,
    fields: &NET_FIELDS,
    fixup: None,
};

fn name(ctx: &Ctx) -> Value {
    json!(ctx.item(0))
}

/// `GET /2/networks`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    list_items(&ctx, &NETWORKS, "name", "/2/networks/").await
}

/// `GET /2/networks/{network_name}`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(Value::Object(NETWORKS.one(&ctx, ctx.item(0)).await?).into())
}

/// `POST /2/networks`: `OP_NETWORK_ADD` (`name` is the opcode's
/// `network_name`).
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NETWORK_ADD",
        body: ctx.body.as_ref(),
        rename: &[("name", "network_name")],
        fixed: fixed([("dry_run", json!(ctx.dry_run()?))]),
    })
    .await
}

/// `DELETE /2/networks/{network_name}`: `OP_NETWORK_REMOVE`.
pub async fn remove(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NETWORK_REMOVE",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("network_name", name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT /2/networks/{network_name}/connect`: `OP_NETWORK_CONNECT`.
pub async fn connect(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NETWORK_CONNECT",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("network_name", name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT /2/networks/{network_name}/disconnect`: `OP_NETWORK_DISCONNECT`.
pub async fn disconnect(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NETWORK_DISCONNECT",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("network_name", name(&ctx)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT /2/networks/{network_name}/modify`: `OP_NETWORK_SET_PARAMS`.
pub async fn modify(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_NETWORK_SET_PARAMS",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([("network_name", name(&ctx))]),
    })
    .await
}
