//! The node's storage as `gnt-node volumes`, `list-storage`,
//! `modify-storage` and `repair-storage` see it: LVM volume groups,
//! physical and logical volumes, and file storage directories.

use std::collections::BTreeMap;

use rpc::api::*;
use storage::lvm::Lvm;

use crate::handlers::{st_err, CallResult, State};

fn refused(msg: String) -> RpcError {
    RpcError::new(ErrorKind::Unsupported, msg)
}

/// `vg_list`: the volume groups and their sizes.
pub fn vg_list(_s: &State, _r: VgList) -> CallResult<BTreeMap<String, u64>> {
    Ok(Lvm::new()
        .vgs()
        .map_err(st_err)?
        .into_iter()
        .map(|vg| (vg.name, vg.size_mib))
        .collect())
}

/// `node_volumes`: every logical volume, once per device.
pub fn node_volumes(_s: &State, _r: NodeVolumes) -> CallResult<Vec<NodeVolume>> {
    let mut vols: Vec<NodeVolume> = Lvm::new()
        .volumes()
        .map_err(st_err)?
        .into_iter()
        .map(|v| NodeVolume {
            vg: v.vg,
            name: v.name,
            size_mib: v.size_mib,
            device: v.device,
        })
        .collect();
    vols.sort_by(|a, b| (&a.device, &a.vg, &a.name).cmp(&(&b.device, &b.vg, &b.name)));
    Ok(vols)
}

/// `storage_list`: the units of one storage type.
pub fn storage_list(s: &State, r: StorageList) -> CallResult<Vec<StorageUnitInfo>> {
    let want = |name: &str| r.name.as_deref().is_none_or(|n| n == name);
    match r.kind {
        StorageType::LvmVg => {
            let mut out = Vec::new();
            for vg in Lvm::new().vgs().map_err(st_err)? {
                if want(&vg.name) {
                    out.push(StorageUnitInfo {
                        used: vg.size_mib.saturating_sub(vg.free_mib),
                        name: vg.name,
                        size: vg.size_mib,
                        free: vg.free_mib,
                        allocatable: true,
                    });
                }
            }
            Ok(out)
        }
        StorageType::LvmPv => {
            let mut out = Vec::new();
            for pv in Lvm::new().pvs().map_err(st_err)? {
                if want(&pv.name) {
                    out.push(StorageUnitInfo {
                        used: pv.size_mib.saturating_sub(pv.free_mib),
                        name: pv.name,
                        size: pv.size_mib,
                        free: pv.free_mib,
                        allocatable: pv.allocatable,
                    });
                }
            }
            Ok(out)
        }
        StorageType::File => {
            let ctx = s.storage()?;
            let dirs = match &r.name {
                Some(dir) => vec![(dir.clone(), ctx.node_path(dir).map_err(st_err)?)],
                None => vec![(
                    ctx.file_storage_dir().display().to_string(),
                    ctx.file_storage_dir().to_path_buf(),
                )],
            };
            let mut out = Vec::new();
            for (name, dir) in dirs {
                let space = storage::space::space_info(&dir).map_err(st_err)?;
                out.push(StorageUnitInfo {
                    name,
                    size: space.total_mib,
                    used: storage::space::dir_usage_mib(&dir).map_err(st_err)?,
                    free: space.free_mib,
                    allocatable: true,
                });
            }
            Ok(out)
        }
    }
}

/// `storage_modify`: an LVM physical volume's `allocatable`.
pub fn storage_modify(_s: &State, r: StorageModify) -> CallResult<()> {
    match r.kind {
        StorageType::LvmPv => Lvm::new()
            .set_allocatable(&r.name, r.allocatable)
            .map_err(st_err),
        other => Err(refused(format!(
            "storage units of type '{}' cannot be modified",
            other.as_str()
        ))),
    }
}

/// `storage_execute`: `fix-consistency` of an LVM volume group.
pub fn storage_repair(_s: &State, r: StorageRepair) -> CallResult<()> {
    match r.kind {
        StorageType::LvmVg => Lvm::new().repair_vg(&r.name).map_err(st_err),
        other => Err(refused(format!(
            "storage units of type '{}' cannot be repaired",
            other.as_str()
        ))),
    }
}
