//! Instance disks on the nodes.

use rpc::api;

use crate::lu::Ctx;

/// Removes `disks` of instance `name` on `node`; returns the failures (each
/// also reported as a warning in the job log).
pub async fn remove_disks(
    ctx: &Ctx,
    name: &str,
    node: &objects::Node,
    disks: &[api::DiskSpec],
) -> Vec<String> {
    let mut failed = Vec::new();
    for d in disks {
        if let Err(e) = ctx
            .rpc()
            .call(
                node,
                &api::BlockdevRemove {
                    instance_name: name.to_string(),
                    disk: d.clone(),
                },
            )
            .await
        {
            let msg = format!(
                "Could not remove disk {} on node {}: {}",
                d.index,
                node.name,
                objects::error_chain(&e)
            );
            ctx.feedback(format!("Warning: {msg}"));
            failed.push(msg);
        }
    }
    failed
}

/// Removes disk `disk` of instance `name` on `node` (an undo step).
pub async fn remove_disk(
    ctx: &Ctx,
    name: String,
    node: objects::Node,
    disk: api::DiskSpec,
) -> Result<(), String> {
    let req = api::BlockdevRemove {
        instance_name: name,
        disk,
    };
    ctx.rpc()
        .call(&node, &req)
        .await
        .map(|_| ())
        .map_err(|e| objects::error_chain(&e))
}
