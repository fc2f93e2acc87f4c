//! The steps that `drbd` (internally mirrored) disks add to failover and
//! migration, as Ganeti's `TLMigrateInstance` takes them: the target's
//! copy must be consistent; during a live migration both nodes accept
//! writes ("dual-master"), and afterwards the new primary is the sync
//! source.

use objects::{DiskTemplate, Instance, Node};
use rpc::api::{self, DiskSpec, LocalDiskStatus};

use crate::error::Error;
use crate::lu::Ctx;

/// Whether the instance has a disk mirrored between two nodes.
pub fn internally_mirrored(inst: &Instance) -> bool {
    inst.disks.iter().any(|d| d.dev_type == DiskTemplate::Drbd)
}

/// The mirrored disks among `disks` (the specs of an instance's disks).
fn mirrored(disks: &[DiskSpec]) -> Vec<DiskSpec> {
    disks
        .iter()
        .filter(|d| d.dev_type == DiskTemplate::Drbd)
        .cloned()
        .collect()
}

/// Refuses when a mirrored disk's copy on `node` is missing, degraded or
/// not known to be whole ("* checking disk consistency between source
/// and target").
pub async fn check_consistency(
    ctx: &Ctx,
    instance: &str,
    node: &Node,
    disks: &[DiskSpec],
) -> Result<(), Error> {
    let disks = mirrored(disks);
    if disks.is_empty() {
        return Ok(());
    }
    ctx.feedback("* checking disk consistency between source and target");
    let req = api::BlockdevGetMirrorStatus {
        instance_name: instance.to_string(),
        disks: disks.clone(),
    };
    let status = ctx.rpc().call(node, &req).await.map_err(|e| {
        Error::rpc(
            format!("Can't get the disk status on node {}", node.name),
            e,
        )
    })?;
    for (d, st) in disks.iter().zip(status) {
        let ok = st.is_some_and(|s| {
            !s.is_degraded && s.sync_percent.is_none() && s.ldisk_status == LocalDiskStatus::Okay
        });
        if !ok {
            return Err(Error::exec(format!(
                "Disk disk/{} is degraded or not fully synchronized on target node {}, \
                 aborting migration",
                d.index, node.name
            )));
        }
    }
    Ok(())
}

/// Connects the mirrored disks on `nodes` to their peers; `primary` is
/// the node whose copy is the source of any sync, `multimaster` lets both
/// accept writes (live migration).
pub async fn attach_net(
    ctx: &Ctx,
    instance: &str,
    nodes: &[Node],
    disks: &[DiskSpec],
    primary: &Node,
    multimaster: bool,
) -> Result<(), Error> {
    let disks = mirrored(disks);
    if disks.is_empty() {
        return Ok(());
    }
    ctx.feedback(format!(
        "* changing disks into {} mode",
        if multimaster {
            "dual-master"
        } else {
            "single-master"
        }
    ));
    let req = api::DrbdAttachNet {
        instance_name: instance.to_string(),
        disks,
        multimaster,
        primary: Some(primary.name.clone()),
    };
    for (node, answer) in nodes.iter().zip(ctx.rpc().call_many(nodes, &req).await) {
        answer.map_err(|e| {
            Error::rpc(
                format!("Cannot change disk to primary mode on node {}", node.name),
                e,
            )
        })?;
    }
    Ok(())
}

/// Waits until no mirrored disk syncs on `nodes` ("* wait until resync is
/// done").
pub async fn wait_until_sync(
    ctx: &Ctx,
    instance: &str,
    nodes: &[Node],
    disks: &[DiskSpec],
) -> Result<(), Error> {
    let disks = mirrored(disks);
    if disks.is_empty() {
        return Ok(());
    }
    ctx.feedback("* wait until resync is done");
    let req = api::DrbdWaitSync {
        instance_name: instance.to_string(),
        disks,
    };
    loop {
        let mut all_done = true;
        let mut min = 100.0f64;
        for (node, answer) in nodes.iter().zip(ctx.rpc().call_many(nodes, &req).await) {
            let st = answer
                .map_err(|e| Error::rpc(format!("Cannot resync disks on node {}", node.name), e))?;
            all_done &= st.all_done;
            min = min.min(st.min_resync);
        }
        if all_done {
            return Ok(());
        }
        ctx.feedback(format!("   - progress: {min:.1}%"));
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Shuts the instance's disks down on `node` (the old primary after a
/// failover); failures are warnings unless `strict`.
pub async fn shutdown_disks(
    ctx: &Ctx,
    instance: &str,
    node: &Node,
    disks: &[DiskSpec],
    strict: bool,
) -> Result<(), Error> {
    for d in disks {
        let req = api::BlockdevShutdown {
            instance_name: instance.to_string(),
            disk: d.clone(),
        };
        if let Err(e) = ctx.rpc().call(node, &req).await {
            if strict {
                return Err(Error::rpc(
                    format!(
                        "Could not shut down disk {} of instance {instance} on node {}",
                        d.index, node.name
                    ),
                    e,
                ));
            }
            ctx.feedback(format!(
                "Warning: could not shut down disk {} on node {}: {}",
                d.index,
                node.name,
                objects::error_chain(&e)
            ));
        }
    }
    Ok(())
}
