//! `OP_CLUSTER_REPAIR_DISK_SIZES` (`gnt-cluster repair-disk-sizes`): the
//! size of each disk as its primary node finds it, recorded where the
//! configuration says otherwise, as Ganeti's `LUClusterRepairDiskSizes`.
//! Returns `[[instance, disk index, "size", MiB], ...]` for what changed.

use luxi::opcodes;
use objects::{Disk, DiskTemplate, Instance};
use rpc::api;
use serde_json::{json, Value};

use super::common::{disk_spec, expand_instance};
use super::{Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

pub struct RepairDiskSizes {
    op: opcodes::ClusterRepairDiskSizes,
    /// The instances' UUIDs; `None`: all of them.
    wanted: Option<Vec<String>>,
}

impl RepairDiskSizes {
    pub fn new(op: opcodes::ClusterRepairDiskSizes) -> Self {
        RepairDiskSizes { op, wanted: None }
    }
}

/// A mirrored disk's data child must be as large as the disk (Ganeti's
/// `_EnsureChildSizes`); says whether it had to change, and logs each fix
/// into `log`.
fn ensure_child_sizes(disk: &mut Disk, log: &mut Vec<String>) -> bool {
    if disk.dev_type != DiskTemplate::Drbd {
        return false;
    }
    let size = disk.size;
    let Some(child) = disk.children.first_mut() else {
        return false;
    };
    let mismatch = child.size < size;
    if mismatch {
        log.push(format!(
            " - INFO: Child disk has size {}, parent {size}, fixing",
            child.size
        ));
        child.size = size;
    }
    ensure_child_sizes(child, log) || mismatch
}

impl LogicalUnit for RepairDiskSizes {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        if self.op.instances.is_empty() {
            self.wanted = None;
            return Ok(LockRequest::new()
                .all(Level::Instance, Mode::Exclusive)
                .all(Level::NodeRes, Mode::Shared));
        }
        let mut uuids = Vec::new();
        let mut nodes = Vec::new();
        for name in &self.op.instances {
            let inst = expand_instance(cfg, name)?;
            uuids.push(inst.uuid.clone());
            nodes.push(inst.primary_node.clone());
        }
        nodes.sort();
        nodes.dedup();
        self.wanted = Some(uuids.clone());
        Ok(LockRequest::new()
            .some(Level::Instance, uuids, Mode::Exclusive)
            .some(Level::NodeRes, nodes, Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut instances: Vec<Instance> = {
                let cfg = ctx.config().read();
                match &self.wanted {
                    Some(uuids) => uuids
                        .iter()
                        .filter_map(|u| cfg.instances.get(u).cloned())
                        .collect(),
                    None => cfg.instances.values().cloned().collect(),
                }
            };
            instances.sort_by(|a, b| a.name.cmp(&b.name));
            let mut changed: Vec<Value> = Vec::new();
            let mut ch = Changes::new();
            for mut inst in instances {
                if inst.disks.is_empty() {
                    continue;
                }
                let (pnode, specs) = {
                    let cfg = ctx.config().read();
                    let specs: Result<Vec<api::DiskSpec>, Error> = inst
                        .disks
                        .iter()
                        .enumerate()
                        .map(|(i, d)| disk_spec(&cfg, d, i))
                        .collect();
                    (cfg.nodes.get(&inst.primary_node).cloned(), specs)
                };
                let (Some(pnode), Ok(specs)) = (pnode, specs) else {
                    continue;
                };
                if pnode.offline {
                    continue;
                }
                let req = api::BlockdevInfo {
                    instance_name: inst.name.clone(),
                    disks: specs,
                };
                let infos = match ctx.rpc().call(&pnode, &req).await {
                    Ok(i) if i.len() == inst.disks.len() => i,
                    Ok(_) => {
                        ctx.feedback(format!(
                            " - WARNING: Invalid result from node {}, ignoring node results",
                            pnode.name
                        ));
                        continue;
                    }
                    Err(_) => {
                        ctx.feedback(format!(
                            " - WARNING: Failure in blockdev_getdimensions call to node {}, \
                             ignoring",
                            pnode.name
                        ));
                        continue;
                    }
                };
                let mut touched = false;
                for (idx, info) in infos.iter().enumerate() {
                    let Some(info) = info else {
                        ctx.feedback(format!(
                            " - WARNING: Disk {idx} of instance {} did not return size \
                             information, ignoring",
                            inst.name
                        ));
                        continue;
                    };
                    let disk = &mut inst.disks[idx];
                    let mut fixed = false;
                    if info.size_mib != disk.size {
                        ctx.feedback(format!(
                            " - INFO: Disk {idx} of instance {} has mismatched size, \
                             correcting: recorded {}, actual {}",
                            inst.name, disk.size, info.size_mib
                        ));
                        disk.size = info.size_mib;
                        fixed = true;
                        changed.push(json!([inst.name, idx, "size", info.size_mib]));
                    }
                    let mut log = Vec::new();
                    let child_fixed = ensure_child_sizes(disk, &mut log);
                    for line in log {
                        ctx.feedback(line);
                    }
                    if child_fixed {
                        fixed = true;
                        changed.push(json!([inst.name, idx, "size", disk.size]));
                    }
                    if fixed {
                        disk.serial_no += 1;
                        touched = true;
                    }
                }
                if touched {
                    ch.instance(inst);
                }
            }
            if !changed.is_empty() {
                ctx.commit(ch)?;
            }
            Ok(Value::Array(changed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(template: DiskTemplate, size: u64, children: Vec<Disk>) -> Disk {
        Disk {
            uuid: "d".into(),
            name: None,
            dev_type: template,
            logical_id: Value::Null,
            nodes: Vec::new(),
            iv_name: "disk/0".into(),
            size,
            mode: objects::DiskMode::Rw,
            params: Default::default(),
            spindles: None,
            children,
            serial_no: 1,
            ctime: Default::default(),
            mtime: Default::default(),
        }
    }

    #[test]
    fn a_mirrored_disks_data_child_grows_to_the_disk_and_its_meta_child_does_not() {
        let mut d = disk(
            DiskTemplate::Drbd,
            48,
            vec![
                disk(DiskTemplate::Plain, 32, vec![]),
                disk(DiskTemplate::Plain, 128, vec![]),
            ],
        );
        let mut log = Vec::new();
        assert!(ensure_child_sizes(&mut d, &mut log));
        assert_eq!(d.children[0].size, 48);
        assert_eq!(d.children[1].size, 128);
        assert_eq!(log, [" - INFO: Child disk has size 32, parent 48, fixing"]);
        // Once right, nothing more changes; other templates never do.
        assert!(!ensure_child_sizes(&mut d, &mut log));
        let mut plain = disk(DiskTemplate::Plain, 48, vec![]);
        assert!(!ensure_child_sizes(&mut plain, &mut log));
        assert_eq!(log.len(), 1);
    }
}
