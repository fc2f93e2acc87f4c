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
                            Value::Null
                        ])
                    })
                    .collect();
                let disks: Vec<Value> = inst
                    .disks
                    .iter()
                    .map(|d| {
                        json!({
                            "iv_name": d.iv_name, "dev_type": d.dev_type,
                            "logical_id": d.logical_id, "drbd_info": null,
                            "pstatus": null, "sstatus": null, "children": [],
                            "mode": d.mode, "size": d.size, "spindles": d.spindles,
                            "name": d.name, "uuid": d.uuid,
                        })
                    })
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
                        "hv_actual": cfg.cluster.fill_hvparams(&inst),
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
            Ok(Value::Object(out))
        })
    }
}
