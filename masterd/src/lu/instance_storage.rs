//! Instance disks on the nodes.

use std::collections::BTreeMap;

use objects::{Disk, DiskTemplate};
use rpc::api;

use crate::error::Error;
use crate::lu::common::rpc_error;
use crate::lu::Ctx;

/// The volume group and volume name of a `plain` disk (`[vg, lv]`).
pub fn plain_volume(disk: &Disk) -> Option<(&str, &str)> {
    if disk.dev_type != DiskTemplate::Plain {
        return None;
    }
    let a = disk.logical_id.as_array()?;
    Some((a.first()?.as_str()?, a.get(1)?.as_str()?))
}

/// Refuses, with Ganeti's message, when `node` lacks the space in some
/// volume group for the `plain` disks among `disks` (`extra` MiB each
/// when growing, their size when creating: `sizes`).
pub async fn check_vg_space_for(
    ctx: &Ctx,
    node: &objects::Node,
    sizes: &BTreeMap<String, u64>,
) -> Result<(), Error> {
    if sizes.is_empty() {
        return Ok(());
    }
    let req = api::NodeInfo {
        hypervisors: Vec::new(),
        storage: sizes
            .keys()
            .map(|vg| api::StorageUnit {
                kind: DiskTemplate::Plain,
                name: Some(vg.clone()),
            })
            .collect(),
    };
    let info = ctx.rpc().call(node, &req).await.map_err(|e| {
        rpc_error(
            &format!(
                "Cannot get the volume groups' free space on node {}",
                node.name
            ),
            e,
        )
    })?;
    for (vg, need) in sizes {
        let unit = info
            .storage
            .iter()
            .find(|s| s.kind == DiskTemplate::Plain && s.path == *vg);
        if let Some(e) = unit.and_then(|u| u.error.as_deref()) {
            return Err(Error::prereq(
                format!("Cannot use volume group {vg} on node {}: {e}", node.name),
                luxi::ErrorCode::Environ,
            ));
        }
        let free = unit.map_or(0, |s| s.free_mib);
        if *need > free {
            return Err(Error::prereq(
                format!(
                    "Not enough disk space on target node {} vg {vg}: required {need} MiB, \
                     available {free} MiB",
                    node.name
                ),
                luxi::ErrorCode::NoRes,
            ));
        }
    }
    Ok(())
}

/// [`check_vg_space_for`] the `plain` disks among `disks` at their sizes.
pub async fn check_vg_space(ctx: &Ctx, node: &objects::Node, disks: &[Disk]) -> Result<(), Error> {
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for d in disks {
        if let Some((vg, _)) = plain_volume(d) {
            *sizes.entry(vg.to_string()).or_default() += d.size;
        }
    }
    check_vg_space_for(ctx, node, &sizes).await
}

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
