//! Out-of-band management: `gnt-node power` and `health`
//! (`OP_OOB_COMMAND`, which runs a node's `oob_program` on the master) and
//! `gnt-node powercycle` (`OP_NODE_POWERCYCLE`, which asks the node itself).

use std::time::Duration;

use luxi::opcodes;
use objects::{error_chain, Node};
use rpc::api;
use rpc::client::ClientError;
use serde_json::{json, Value};

use super::common::{expand_node, rpc_error};
use super::{inval, noent, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};
use crate::rpc::RpcFailure;

/// A query-style result status: a value (Ganeti's `RS_NORMAL`).
const RS_NORMAL: i64 = 0;
/// No data: the program failed or answered nonsense (`RS_NODATA`).
const RS_NODATA: i64 = 2;
/// The node has no out-of-band program (`RS_UNAVAIL`).
const RS_UNAVAIL: i64 = 3;

/// The commands of Ganeti's OOB API.
const POWER_ON: &str = "power-on";
const POWER_OFF: &str = "power-off";
const POWER_CYCLE: &str = "power-cycle";
const POWER_STATUS: &str = "power-status";
const HEALTH: &str = "health";
const COMMANDS: &[&str] = &[POWER_ON, POWER_OFF, POWER_CYCLE, POWER_STATUS, HEALTH];

/// Commands never run on the master unless asked for by the admin by hand.
const SKIP_MASTER: &[&str] = &[POWER_OFF, POWER_CYCLE];

/// The statuses an item of `health` may have.
const HEALTH_STATUSES: &[&str] = &["OK", "WARNING", "CRITICAL", "UNKNOWN"];

/// The node's `oob_program` (cluster, then group, then node ndparams), if
/// it has one.
pub fn oob_program(cfg: &ConfigData, node: &Node) -> Option<String> {
    let group = cfg
        .groups
        .get(&node.group)
        .map(|g| g.ndparams.clone())
        .unwrap_or_default();
    let nd = objects::params::fill(
        &objects::params::fill(&cfg.cluster.ndparams, &group),
        &node.ndparams,
    );
    nd.get("oob_program")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// Checks what `command` printed (already parsed from JSON); `Err` says
/// what is wrong with it.
fn check_payload(command: &str, payload: &Value) -> Result<(), String> {
    match command {
        HEALTH => {
            let Some(items) = payload.as_array() else {
                return Err(format!(
                    "command 'health' is expected to return a list but got {payload}"
                ));
            };
            let mut errs = Vec::new();
            for item in items {
                match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(name), Value::String(st)]) => {
                        if !HEALTH_STATUSES.contains(&st.as_str()) {
                            errs.push(format!("health item '{name}' has invalid status '{st}'"));
                        }
                    }
                    _ => errs.push(format!(
                        "health item {item} is not a pair of item and status"
                    )),
                }
            }
            if items.is_empty() {
                errs.push("command 'health' returned no items".to_string());
            }
            if errs.is_empty() {
                Ok(())
            } else {
                Err(errs.join(", "))
            }
        }
        POWER_STATUS => match payload.get("powered") {
            Some(Value::Bool(_)) if payload.is_object() => Ok(()),
            _ if payload.is_object() => Err(format!(
                "power-status is expected to return a dict with a boolean 'powered' but got {payload}"
            )),
            _ => Err(format!(
                "power-status is expected to return a dict but got {payload}"
            )),
        },
        _ if payload.is_null() => Ok(()),
        _ => Err(format!(
            "{command} is expected to not return payload but got '{payload}'"
        )),
    }
}

/// `OP_OOB_COMMAND`.
pub struct OobCommand {
    op: opcodes::OobCommand,
    /// The nodes named, or every node (less the master for power-off and
    /// power-cycle).
    uuids: Option<Vec<String>>,
    nodes: Vec<Node>,
    master: Option<Node>,
}

impl OobCommand {
    pub fn new(op: opcodes::OobCommand) -> Self {
        OobCommand {
            op,
            uuids: None,
            nodes: Vec::new(),
            master: None,
        }
    }
}

impl LogicalUnit for OobCommand {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if !COMMANDS.contains(&self.op.command.as_str()) {
            return Err(inval(format!(
                "Invalid out-of-band command '{}': expected one of {}",
                self.op.command,
                COMMANDS.join(", ")
            )));
        }
        if !self.op.power_delay.is_finite() || self.op.power_delay < 0.0 {
            return Err(inval(format!(
                "Invalid power delay {}: expected a non-negative number of seconds",
                self.op.power_delay
            )));
        }
        if self.op.timeout == 0 {
            return Err(inval("The out-of-band timeout must be at least one second"));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let req = LockRequest::new();
        if self.op.node_names.is_empty() {
            self.uuids = None;
            return Ok(req.all(Level::Node, Mode::Exclusive));
        }
        let uuids = self
            .op
            .node_names
            .iter()
            .map(|n| expand_node(cfg, n).map(|n| n.uuid.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        self.uuids = Some(uuids.clone());
        Ok(req.some(Level::Node, uuids, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let master = cfg
            .master_node()
            .cloned()
            .ok_or_else(|| Error::programmer("the cluster has no master node"))?;
        let skip_master = SKIP_MASTER.contains(&self.op.command.as_str());
        let uuids: Vec<String> = match &self.uuids {
            Some(uuids) => {
                if skip_master && uuids.contains(&master.uuid) {
                    let more = match oob_program(cfg, &master) {
                        Some(p) => format!(
                            "run '{p} {} {}' if you want to operate on the master regardless",
                            self.op.command, master.name
                        ),
                        None => "it does not support out-of-band operations".to_string(),
                    };
                    return Err(inval(format!(
                        "Operating on the master node {} is not allowed for {}; {more}",
                        master.name, self.op.command
                    )));
                }
                uuids.clone()
            }
            None => cfg
                .nodes
                .keys()
                .filter(|u| !(skip_master && **u == master.uuid))
                .cloned()
                .collect(),
        };
        let mut nodes = Vec::new();
        for uuid in &uuids {
            let node = cfg
                .nodes
                .get(uuid)
                .cloned()
                .ok_or_else(|| noent(format!("Node {uuid} not found")))?;
            if !self.op.ignore_status && self.op.command == POWER_OFF && !node.offline {
                return Err(wrong_state(format!(
                    "Cannot power off node {} because it is not marked offline",
                    node.name
                )));
            }
            nodes.push(node);
        }
        luxi::query::nice_sort_by(&mut nodes, |n| &n.name);
        nodes.dedup_by(|a, b| a.uuid == b.uuid);
        self.nodes = nodes;
        self.master = Some(master);
        Ok(())
    }

    fn settled_fields(&self) -> Vec<(&'static str, Value)> {
        let uuids: Vec<&str> = self.nodes.iter().map(|n| n.uuid.as_str()).collect();
        vec![("node_uuids", json!(uuids))]
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let master = self
                .master
                .clone()
                .ok_or_else(|| Error::programmer("exec before check_prereq"))?;
            let command = self.op.command.clone();
            let mut out = Vec::new();
            let count = self.nodes.len();
            for (idx, node) in self.nodes.iter().enumerate() {
                let program = {
                    let cfg = ctx.config().read();
                    oob_program(&cfg, node)
                };
                let Some(program) = program else {
                    out.push(json!([[RS_NORMAL, node.name], [RS_UNAVAIL, null]]));
                    continue;
                };
                tracing::info!(%command, %program, node = %node.name, "running out-of-band command");
                let req = api::RunOob {
                    program,
                    command: command.clone(),
                    node: node.name.clone(),
                    timeout: self.op.timeout,
                };
                // The program runs on the master, whatever the node's state.
                let stdout = match ctx.rpc().call_anyway(&master, &req).await {
                    Ok(s) => s,
                    Err(e) => {
                        // The program's own failure reads as itself; a
                        // master that did not answer, with the whole chain.
                        let why = match &e {
                            RpcFailure::Call(ClientError::Remote { error, .. })
                                if error.kind == api::ErrorKind::Failed =>
                            {
                                error.message.clone()
                            }
                            _ => error_chain(&e),
                        };
                        ctx.log_warning(format!(
                            "Out-of-band RPC failed on node '{}': {why}",
                            node.name
                        ));
                        out.push(json!([[RS_NORMAL, node.name], [RS_NODATA, null]]));
                        continue;
                    }
                };
                let payload = if stdout.trim().is_empty() {
                    Ok(Value::Null)
                } else {
                    serde_json::from_str::<Value>(&stdout)
                        .map_err(|e| format!("output is not JSON ({e}): {}", stdout.trim_end()))
                };
                let checked = payload.and_then(|p| check_payload(&command, &p).map(|()| p));
                let payload = match checked {
                    Ok(p) => p,
                    Err(why) => {
                        ctx.log_warning(format!(
                            "Payload returned by node '{}' is not valid: Check of out-of-band \
                             payload failed due to {why}",
                            node.name
                        ));
                        out.push(json!([[RS_NORMAL, node.name], [RS_NODATA, null]]));
                        continue;
                    }
                };
                match command.as_str() {
                    HEALTH => {
                        for item in payload.as_array().into_iter().flatten() {
                            let (name, st) = (&item[0], item[1].as_str().unwrap_or(""));
                            if st == "WARNING" || st == "CRITICAL" {
                                ctx.log_warning(format!(
                                    "Item '{}' on node '{}' has status '{st}'",
                                    name.as_str().unwrap_or(""),
                                    node.name
                                ));
                            }
                        }
                    }
                    POWER_STATUS => {
                        let powered = payload["powered"].as_bool() == Some(true);
                        if powered != node.powered {
                            tracing::warn!(
                                node = %node.name,
                                recorded = node.powered,
                                actual = powered,
                                "recorded power state does not match the actual one"
                            );
                        }
                    }
                    POWER_ON | POWER_OFF => {
                        let powered = command == POWER_ON;
                        let current = ctx.config().read().nodes.get(&node.uuid).cloned();
                        if let Some(mut n) = current {
                            if n.powered != powered {
                                n.powered = powered;
                                let mut changes = Changes::new();
                                changes.node(n);
                                ctx.commit(changes)?;
                            }
                        }
                    }
                    _ => {}
                }
                out.push(json!([[RS_NORMAL, node.name], [RS_NORMAL, payload]]));
                if command == POWER_ON && idx + 1 < count && self.op.power_delay > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(self.op.power_delay)).await;
                }
            }
            Ok(Value::Array(out))
        })
    }
}

/// `OP_NODE_POWERCYCLE`.
pub struct NodePowercycle {
    op: opcodes::NodePowercycle,
    uuid: String,
}

impl NodePowercycle {
    pub fn new(op: opcodes::NodePowercycle) -> Self {
        NodePowercycle {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for NodePowercycle {
    /// A last resort: it takes no locks, so that no job can block it.
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let node = expand_node(cfg, &self.op.node_name)?;
        if node.uuid == cfg.cluster.master_node && !self.op.force {
            return Err(inval(
                "The node is the master and the force parameter was not set",
            ));
        }
        self.uuid = node.uuid.clone();
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (node, req) = {
                let cfg = ctx.config().read();
                let node = cfg
                    .nodes
                    .get(&self.uuid)
                    .cloned()
                    .ok_or_else(|| noent(format!("Node '{}' not known", self.op.node_name)))?;
                let hypervisor = cfg
                    .cluster
                    .enabled_hypervisors
                    .first()
                    .cloned()
                    .ok_or_else(|| inval("The cluster has no enabled hypervisor"))?;
                let hvparams = cfg
                    .cluster
                    .hvparams
                    .get(&hypervisor)
                    .cloned()
                    .unwrap_or_default();
                let req = api::NodePowercycle {
                    hypervisor,
                    hvparams: hvparams.into_iter().collect(),
                };
                (node, req)
            };
            let msg = ctx
                .rpc()
                .call(&node, &req)
                .await
                .map_err(|e| rpc_error("Failed to schedule the reboot", e))?;
            Ok(Value::from(msg))
        })
    }
}
