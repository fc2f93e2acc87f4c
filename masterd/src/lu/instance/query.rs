//! `OP_INSTANCE_QUERY_DATA`.

use crate::error::Error;
use luxi::opcodes;
use objects::{AdminState, AdminStateSource};
use serde_json::{json, Value};

use super::*;
use crate::config::ConfigData;
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{expand_instance, get_instance, get_node};
use crate::lu::{Ctx, ExecFuture, LogicalUnit};

/// `OP_INSTANCE_QUERY_DATA`: everything `gnt-instance info` shows.
pub struct QueryData {
    op: opcodes::InstanceQueryData,
    uuids: Vec<String>,
}

impl QueryData {
    pub fn new(op: opcodes::InstanceQueryData) -> Self {
        QueryData {
            op,
            uuids: Vec::new(),
        }
    }
}

impl LogicalUnit for QueryData {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuids = if self.op.instances.is_empty() {
            cfg.instances.keys().cloned().collect()
        } else {
            self.op
                .instances
                .iter()
                .map(|n| expand_instance(cfg, n).map(|i| i.uuid.clone()))
                .collect::<Result<_, _>>()?
        };
        Ok(if self.op.use_locking {
            LockRequest::new().bgl(Mode::Shared).some(
                Level::Instance,
                self.uuids.clone(),
                Mode::Shared,
            )
        } else {
            LockRequest::new()
        })
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut out = serde_json::Map::new();
            for uuid in &self.uuids {
                let inst = get_instance(ctx, uuid)?;
                let pnode = get_node(ctx, &inst.primary_node)?;
                let run_state = if self.op.static_only {
                    Value::Null
                } else if pnode.offline {
                    ctx.feedback(format!(
                        "Warning: Primary node {} is marked offline, returning static \
                         information only for instance {}",
                        pnode.name, inst.name
                    ));
                    Value::Null
                } else {
                    let running = is_running(ctx, &inst, &pnode).await?;
                    json!(match (running, inst.admin_state, inst.admin_state_source) {
                        (true, _, _) => "up",
                        (false, AdminState::Down, AdminStateSource::User) => "user down",
                        (false, AdminState::Offline, _) => "offline",
                        (false, _, _) => "down",
                    })
                };
                {
                    let cfg = ctx.config().read();
                    let group_name = |g: &str| {
                        cfg.groups
                            .get(g)
                            .map(|g| g.name.clone())
                            .unwrap_or_default()
                    };
                    let snodes = inst.secondary_nodes();
                    let nics: Vec<Value> = inst
                        .nics
                        .iter()
                        .map(|n| {
                            let p = cfg.cluster.fill_nicparams(n);
                            json!([
                                n.name,
                                n.uuid,
                                n.ip,
                                n.mac,
                                p.get("mode"),
                                p.get("link"),
                                p.get("vlan"),
                                n.network,
                                n.network
                                    .as_deref()
                                    .and_then(|u| cfg.networks.get(u))
                                    .map_or(Value::Null, |net| json!(net))
                            ])
                        })
                        .collect();
                    let disks: Vec<Value> = inst
                        .disks
                        .iter()
                        .map(|d| static_disk(&cfg, &inst, d))
                        .collect();
                    let be_actual = cfg.cluster.fill_beparams(&inst);
                    out.insert(
                        inst.name.clone(),
                        json!({
                            "name": inst.name,
                            "config_state": inst.admin_state.as_str(),
                            "run_state": run_state,
                            "pnode": pnode.name,
                            "pnode_group_uuid": pnode.group,
                            "pnode_group_name": group_name(&pnode.group),
                            "snodes": snodes.iter().map(|s| cfg.node_name(s)).collect::<Vec<_>>(),
                            "snodes_group_uuids": snodes.iter().map(|s| cfg.nodes.get(s).map(|n| n.group.clone())).collect::<Vec<_>>(),
                            "snodes_group_names": snodes.iter().map(|s| cfg.nodes.get(s).map(|n| group_name(&n.group))).collect::<Vec<_>>(),
                            "os": inst.os,
                            "nics": nics,
                            "disk_template": inst.disk_template,
                            "disks": disks,
                            "hypervisor": inst.hypervisor,
                            "network_port": inst.network_port,
                            "hv_instance": inst.hvparams,
                            // Ganeti leaves out the cluster-wide
                            // (global) parameters here.
                            "hv_actual": without_globals(cfg.cluster.fill_hvparams(&inst)),
                            "be_instance": inst.beparams,
                            "be_actual": be_actual,
                            "os_instance": inst.osparams,
                            "os_actual": objects::params::fill(
                                &cfg.cluster.osparams.get(&inst.os).cloned().unwrap_or_default(),
                                &inst.osparams),
                            "serial_no": inst.serial_no,
                            "mtime": inst.mtime,
                            "ctime": inst.ctime,
                            "uuid": inst.uuid,
                        }),
                    );
                }
                if !self.op.static_only {
                    let statuses = disk_statuses(ctx, &inst).await?;
                    if let Some(disks) = out
                        .get_mut(&inst.name)
                        .and_then(|v| v.get_mut("disks"))
                        .and_then(Value::as_array_mut)
                    {
                        for (d, st) in disks.iter_mut().zip(statuses) {
                            fill_status(d, st);
                        }
                    }
                }
            }
            Ok(Value::Object(out))
        })
    }
}

/// A disk as `gnt-instance info --static` shows it (Ganeti's
/// `_ComputeDiskStatusInner` without the node calls): a `drbd` disk's
/// nodes and port, its children.
fn static_disk(cfg: &ConfigData, inst: &objects::Instance, d: &objects::Disk) -> Value {
    let mut drbd_info = Value::Null;
    let mut logical_id = d.logical_id.clone();
    if d.dev_type == objects::DiskTemplate::Drbd {
        let id = |i: usize| d.logical_id.get(i).cloned().unwrap_or(Value::Null);
        let (snode, pminor, sminor) = if id(0).as_str() == Some(inst.primary_node.as_str()) {
            (id(1), id(3), id(4))
        } else {
            (id(0), id(4), id(3))
        };
        drbd_info = json!({
            "primary_node": cfg.node_name(&inst.primary_node),
            "primary_minor": pminor,
            "secondary_node": snode.as_str().map(|u| cfg.node_name(u)),
            "secondary_minor": sminor,
            "port": id(2),
        });
        // The secret is never shown.
        if let Some(a) = logical_id.as_array_mut() {
            if let Some(last) = a.last_mut() {
                *last = Value::Null;
            }
        }
    }
    json!({
        "iv_name": d.iv_name, "dev_type": d.dev_type,
        "logical_id": logical_id, "drbd_info": drbd_info,
        "pstatus": null, "sstatus": null,
        "children": d.children.iter().map(|c| static_disk(cfg, inst, c)).collect::<Vec<_>>(),
        "mode": d.mode, "size": d.size, "spindles": d.spindles,
        "name": d.name, "uuid": d.uuid,
    })
}

/// A disk's status on its primary and (for a mirrored disk) its
/// secondary, and its children's.
struct DiskStatus {
    primary: Option<rpc::api::BlockDevStatus>,
    secondary: Option<rpc::api::BlockDevStatus>,
    children: Vec<DiskStatus>,
}

/// Ganeti's status tuple `(dev_path, major, minor, sync_percent,
/// estimated_time, is_degraded, ldisk_status)`; no device numbers here.
fn status_tuple(st: &Option<rpc::api::BlockDevStatus>) -> Value {
    let Some(st) = st else {
        return Value::Null;
    };
    let lds = match st.ldisk_status {
        rpc::api::LocalDiskStatus::Okay => 1,
        rpc::api::LocalDiskStatus::Unknown => 3,
        rpc::api::LocalDiskStatus::Faulty => 4,
    };
    json!([
        st.dev_path,
        null,
        null,
        st.sync_percent,
        st.estimated_time,
        st.is_degraded,
        lds
    ])
}

fn fill_status(disk: &mut Value, st: DiskStatus) {
    disk["pstatus"] = status_tuple(&st.primary);
    disk["sstatus"] = status_tuple(&st.secondary);
    if let Some(children) = disk.get_mut("children").and_then(Value::as_array_mut) {
        for (c, s) in children.iter_mut().zip(st.children) {
            fill_status(c, s);
        }
    }
}

/// Asks the instance's nodes for its disks' status (`blockdev_find`); an
/// offline node answers nothing.
async fn disk_statuses(ctx: &Ctx, inst: &objects::Instance) -> Result<Vec<DiskStatus>, Error> {
    let (pnode, snode, specs) = {
        let cfg = ctx.config().read();
        let snode = inst
            .secondary_nodes()
            .first()
            .and_then(|u| cfg.nodes.get(u).cloned());
        let specs = inst
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| crate::lu::common::disk_spec(&cfg, d, i))
            .collect::<Result<Vec<_>, _>>()?;
        (cfg.nodes[&inst.primary_node].clone(), snode, specs)
    };
    let find = |node: objects::Node, disk: rpc::api::DiskSpec| async move {
        if node.offline {
            return Ok(None);
        }
        let req = rpc::api::BlockdevFind {
            instance_name: inst.name.clone(),
            disk,
        };
        ctx.rpc()
            .call(&node, &req)
            .await
            .map_err(|e| Error::rpc(format!("Can't compute disk status for {}", inst.name), e))
    };
    let mut out = Vec::new();
    for (d, spec) in inst.disks.iter().zip(specs) {
        let mirrored = d.dev_type == objects::DiskTemplate::Drbd;
        let secondary = match (&snode, mirrored) {
            (Some(s), true) => find(s.clone(), spec.clone()).await?,
            _ => None,
        };
        let mut children = Vec::new();
        for c in &spec.children {
            children.push(DiskStatus {
                primary: find(pnode.clone(), c.clone()).await.unwrap_or(None),
                secondary: match &snode {
                    Some(s) => find(s.clone(), c.clone()).await.unwrap_or(None),
                    None => None,
                },
                children: Vec::new(),
            });
        }
        out.push(DiskStatus {
            primary: find(pnode.clone(), spec).await?,
            secondary,
            children,
        });
    }
    Ok(out)
}

/// Hypervisor parameters without Ganeti's `HVC_GLOBALS`, which only the
/// cluster sets.
fn without_globals(mut hv: objects::params::ParamDict) -> objects::params::ParamDict {
    for k in [
        "migration_port",
        "migration_bandwidth",
        "migration_mode",
        "xen_cmd",
    ] {
        hv.remove(k);
    }
    hv
}
