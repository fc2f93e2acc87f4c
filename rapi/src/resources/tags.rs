//! Tags of the cluster and of every object: `/2/tags`,
//! `/2/{nodes,instances,groups,networks}/{name}/tags`. `GET` lists them;
//! `PUT` and `DELETE` add and remove the `tag` query arguments, as jobs.

use luxi::request::Request;
use serde_json::{json, Value};

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::opcode::{fixed, Spec};

/// The tag kind (Ganeti's `TAG_*`) of the resource, from its name.
fn kind(ctx: &Ctx) -> &'static str {
    let name = ctx.route.name;
    if name.starts_with("nodes_") {
        "node"
    } else if name.starts_with("instances_") {
        "instance"
    } else if name.starts_with("groups_") {
        "nodegroup"
    } else if name.starts_with("networks_") {
        "network"
    } else {
        "cluster"
    }
}

/// The object's name; none for the cluster.
fn object(ctx: &Ctx) -> Option<String> {
    (kind(ctx) != "cluster").then(|| ctx.item(0).to_string())
}

/// `GET .../tags`: the list of tags.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let tags = ctx
        .call(&Request::QueryTags {
            kind: kind(&ctx).to_string(),
            name: object(&ctx),
        })
        .await?;
    Ok(tags.into())
}

async fn change(ctx: Ctx, op_id: &'static str) -> Result<Reply, ApiError> {
    let name = object(&ctx).map_or(Value::Null, Value::from);
    ctx.opcode_job(Spec {
        op_id,
        body: None,
        rename: &[],
        fixed: fixed([
            ("kind", json!(kind(&ctx))),
            ("name", name),
            ("tags", json!(ctx.query_all("tag"))),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT .../tags?tag=a&tag=b`: `OP_TAGS_SET`.
pub async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    change(ctx, "OP_TAGS_SET").await
}

/// `DELETE .../tags?tag=a&tag=b`: `OP_TAGS_DEL`.
pub async fn remove(ctx: Ctx) -> Result<Reply, ApiError> {
    change(ctx, "OP_TAGS_DEL").await
}
