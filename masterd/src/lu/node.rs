//! Nodes: add, remove, set parameters.

use luxi::error::{ErrorCode, GanetiError};
use luxi::opcodes;
use objects::validate::check_host_name;
use objects::Node;
use serde_json::{json, Value};

use super::common::{expand_group, expand_node, rpc_error};
use super::{exists, inval, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{new_uuid, timestamp, Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};

/// `OP_NODE_ADD`.
pub struct Add {
    op: opcodes::NodeAdd,
    ip: String,
    group: String,
}

impl Add {
    pub fn new(op: opcodes::NodeAdd) -> Self {
        Add {
            op,
            ip: String::new(),
            group: String::new(),
        }
    }
}

impl LogicalUnit for Add {
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        check_host_name("node", &self.op.node_name).map_err(|e| inval(e.to_string()))
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        // Adding a node changes the cluster's membership: take it all.
        Ok(LockRequest::new()
            .bgl(Mode::Exclusive)
            .all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        let existing = cfg.node_by_name(&self.op.node_name);
        match (existing, self.op.readd) {
            (Some(_), false) => {
                return Err(exists(format!(
                    "Node {} is already in the configuration",
                    self.op.node_name
                )))
            }
            (None, true) => {
                return Err(GanetiError::prereq(
                    format!("Node {} is not in the configuration", self.op.node_name),
                    ErrorCode::NoEnt,
                ))
            }
            _ => {}
        }
        self.group = match &self.op.group {
            Some(g) => expand_group(cfg, g)?.uuid.clone(),
            None => match existing {
                Some(n) => n.group.clone(),
                None => cfg
                    .master_node()
                    .map(|m| m.group.clone())
                    .or_else(|| cfg.groups.keys().next().cloned())
                    .ok_or_else(|| wrong_state("The cluster has no node group"))?,
            },
        };
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let master = &ctx.master;
            let ip = match &self.op.primary_ip {
                Some(ip) => ip.clone(),
                None => crate::resolver::resolve(&master.paths, &self.op.node_name)
                    .map(|ip| ip.to_string())
                    .ok_or_else(|| {
                        GanetiError::prereq(
                            format!(
                                "Node name '{}' cannot be resolved to an address",
                                self.op.node_name
                            ),
                            ErrorCode::Resolver,
                        )
                    })?,
            };
            objects::validate::check_ipv4(&ip).map_err(|e| inval(e.to_string()))?;
            self.ip = ip;
            {
                let cfg = master.config.read();
                if let Some(other) = cfg
                    .nodes
                    .values()
                    .find(|n| n.primary_ip == self.ip && n.name != self.op.node_name)
                {
                    return Err(exists(format!(
                        "New node ip address(es) conflict with existing node {}",
                        other.name
                    )));
                }
            }
            let existing = master
                .config
                .read()
                .node_by_name(&self.op.node_name)
                .cloned();
            let now = timestamp();
            let mut node = existing.unwrap_or_else(|| {
                Node::new(&new_uuid(), &self.op.node_name, &self.ip, &self.group, now)
            });
            node.primary_ip = self.ip.clone();
            node.secondary_ip = self
                .op
                .secondary_ip
                .clone()
                .unwrap_or_else(|| self.ip.clone());
            node.group = self.group.clone();
            node.offline = false;
            node.drained = false;
            if let Some(v) = self.op.vm_capable {
                node.vm_capable = v;
            }
            if let Some(v) = self.op.master_capable {
                node.master_capable = v;
            }
            if let Some(nd) = &self.op.ndparams {
                node.ndparams = nd.clone();
            }
            // The node must answer with a matching protocol before it joins.
            ctx.feedback(format!(
                "Contacting node {} at {}",
                node.name, node.primary_ip
            ));
            let version = master
                .rpc
                .call_anyway(&node, &noded::api::Version {})
                .await
                .map_err(|e| rpc_error(&format!("Node {} does not answer", node.name), e))?;
            if version.protocol != noded::api::PROTOCOL_VERSION {
                return Err(GanetiError::exec(format!(
                    "Node {} speaks node RPC protocol {}, the master speaks {}",
                    node.name,
                    version.protocol,
                    noded::api::PROTOCOL_VERSION
                )));
            }
            {
                let cfg = master.config.read();
                let candidates = cfg.nodes.values().filter(|n| n.master_candidate).count();
                node.master_candidate =
                    node.master_capable && candidates < cfg.cluster.candidate_pool_size as usize;
            }
            let mut ch = Changes::new();
            ch.node(node.clone());
            master.commit(ch)?;
            ctx.feedback(format!("Node {} added to the cluster", node.name));
            Ok(Value::Null)
        })
    }
}

/// `OP_NODE_REMOVE`.
pub struct Remove {
    op: opcodes::NodeRemove,
    uuid: String,
}

impl Remove {
    pub fn new(op: opcodes::NodeRemove) -> Self {
        Remove {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Remove {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_node(cfg, &self.op.node_name)?.uuid.clone();
        Ok(LockRequest::new()
            .bgl(Mode::Exclusive)
            .all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        if cfg.cluster.master_node == self.uuid {
            return Err(wrong_state(
                "Node is the master node, failover to another node is required",
            ));
        }
        if let Some(i) = cfg
            .instances
            .values()
            .find(|i| i.all_nodes().contains(&self.uuid))
        {
            return Err(wrong_state(format!(
                "Instance {} is still running on the node, please remove first",
                i.name
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut ch = Changes::new();
            ch.remove_node(&self.uuid);
            ctx.master.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// `OP_NODE_SET_PARAMS`.
pub struct SetParams {
    op: opcodes::NodeSetParams,
    uuid: String,
}

impl SetParams {
    pub fn new(op: opcodes::NodeSetParams) -> Self {
        SetParams {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        let o = &self.op;
        let set_true = [o.offline, o.drained, o.master_candidate]
            .iter()
            .filter(|v| **v == Some(true))
            .count();
        if set_true > 1 {
            return Err(inval(
                "Can't set the node into more than one state at the same time",
            ));
        }
        if o.offline.is_none()
            && o.drained.is_none()
            && o.master_candidate.is_none()
            && o.master_capable.is_none()
            && o.vm_capable.is_none()
            && o.ndparams.is_none()
            && o.powered.is_none()
        {
            return Err(inval("Please pass at least one modification"));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_node(cfg, &self.op.node_name)?.uuid.clone();
        Ok(LockRequest::new().bgl(Mode::Shared).some(
            Level::Node,
            vec![self.uuid.clone()],
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        let node = &cfg.nodes[&self.uuid];
        let is_master = cfg.cluster.master_node == self.uuid;
        let demoting = self.op.offline == Some(true)
            || self.op.drained == Some(true)
            || self.op.master_candidate == Some(false)
            || self.op.master_capable == Some(false);
        if is_master && demoting {
            return Err(inval(format!(
                "The master role can be changed only via master-failover (node {})",
                node.name
            )));
        }
        if self.op.master_candidate == Some(true)
            && !node.master_capable
            && self.op.master_capable != Some(true)
        {
            return Err(inval(format!(
                "Node {} is not master capable, cannot promote it",
                node.name
            )));
        }
        if self.op.vm_capable == Some(false)
            && cfg
                .instances
                .values()
                .any(|i| i.all_nodes().contains(&self.uuid))
        {
            return Err(wrong_state(format!(
                "Node {} hosts instances, cannot unset vm_capable",
                node.name
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut n = ctx.master.config.read().nodes[&self.uuid].clone();
            let mut result: Vec<Value> = Vec::new();
            let set = |name: &str, old: &mut bool, new: bool, result: &mut Vec<Value>| {
                if *old != new {
                    *old = new;
                    result.push(json!([name, if new { "True" } else { "False" }]));
                }
            };
            if let Some(v) = self.op.offline {
                set("offline", &mut n.offline, v, &mut result);
                if v {
                    set(
                        "master_candidate",
                        &mut n.master_candidate,
                        false,
                        &mut result,
                    );
                    set("drained", &mut n.drained, false, &mut result);
                }
            }
            if let Some(v) = self.op.drained {
                set("drained", &mut n.drained, v, &mut result);
                if v {
                    set(
                        "master_candidate",
                        &mut n.master_candidate,
                        false,
                        &mut result,
                    );
                    set("offline", &mut n.offline, false, &mut result);
                }
            }
            if let Some(v) = self.op.master_capable {
                set("master_capable", &mut n.master_capable, v, &mut result);
                if !v {
                    set(
                        "master_candidate",
                        &mut n.master_candidate,
                        false,
                        &mut result,
                    );
                }
            }
            if let Some(v) = self.op.master_candidate {
                set("master_candidate", &mut n.master_candidate, v, &mut result);
                if v {
                    set("offline", &mut n.offline, false, &mut result);
                    set("drained", &mut n.drained, false, &mut result);
                }
            }
            if let Some(v) = self.op.vm_capable {
                set("vm_capable", &mut n.vm_capable, v, &mut result);
            }
            if let Some(v) = self.op.powered {
                set("powered", &mut n.powered, v, &mut result);
            }
            if let Some(nd) = &self.op.ndparams {
                n.ndparams = objects::params::update(&n.ndparams, nd);
                result.push(json!(["ndparams", n.ndparams]));
            }
            let mut ch = Changes::new();
            ch.node(n);
            ctx.master.commit(ch)?;
            Ok(Value::Array(result))
        })
    }
}
