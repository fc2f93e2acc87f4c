//! Node groups: add, remove, rename, assign nodes, set parameters.

use crate::error::Error;
use luxi::opcodes;
use objects::validate::check_group_name;
use objects::NodeGroup;
use serde_json::{json, Value};

use super::common::{expand_group, expand_node};
use super::{exists, inval, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{new_uuid, timestamp, Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};

const ALLOC_POLICIES: &[&str] = &["preferred", "last_resort", "unallocable"];

fn check_alloc_policy(p: &Option<String>) -> Result<(), Error> {
    if let Some(p) = p {
        if !ALLOC_POLICIES.contains(&p.as_str()) {
            return Err(inval(format!(
                "Invalid allocation policy '{p}': expected one of {}",
                ALLOC_POLICIES.join(", ")
            )));
        }
    }
    Ok(())
}

/// `OP_GROUP_ADD`.
pub struct Add {
    op: opcodes::GroupAdd,
}

impl Add {
    pub fn new(op: opcodes::GroupAdd) -> Self {
        Add { op }
    }
}

impl LogicalUnit for Add {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_group_name(&self.op.group_name).map_err(|e| inval(e.to_string()))?;
        check_alloc_policy(&self.op.alloc_policy)
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .all(Level::NodeGroup, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        if let Some(g) = cfg.group_by_name(&self.op.group_name) {
            return Err(exists(format!(
                "Desired group name '{}' already exists as a node group (UUID: {})",
                self.op.group_name, g.uuid
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut g = NodeGroup::new(&new_uuid(), &self.op.group_name, timestamp());
            if let Some(p) = &self.op.alloc_policy {
                g.alloc_policy = p.clone();
            }
            if let Some(nd) = &self.op.ndparams {
                g.ndparams = nd.clone();
            }
            if let Some(ip) = &self.op.ipolicy {
                g.ipolicy = ip.clone();
            }
            if let Some(dp) = &self.op.diskparams {
                g.diskparams = dp.clone();
            }
            let mut ch = Changes::new();
            ch.group(g);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// `OP_GROUP_REMOVE`.
pub struct Remove {
    op: opcodes::GroupRemove,
    uuid: String,
}

impl Remove {
    pub fn new(op: opcodes::GroupRemove) -> Self {
        Remove {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Remove {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::NodeGroup, vec![self.uuid.clone()], Mode::Exclusive)
            .all(Level::Node, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let members: Vec<&str> = cfg
            .nodes
            .values()
            .filter(|n| n.group == self.uuid)
            .map(|n| n.name.as_str())
            .collect();
        if !members.is_empty() {
            return Err(wrong_state(format!(
                "Group '{}' not empty, has the following node(s): {}",
                self.op.group_name,
                members.join(", ")
            )));
        }
        if cfg.groups.len() == 1 {
            return Err(wrong_state(format!(
                "Group '{}' is the only group, cannot be removed",
                self.op.group_name
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut ch = Changes::new();
            ch.remove_group(&self.uuid);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// `OP_GROUP_RENAME`.
pub struct Rename {
    op: opcodes::GroupRename,
    uuid: String,
}

impl Rename {
    pub fn new(op: opcodes::GroupRename) -> Self {
        Rename {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Rename {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_group_name(&self.op.new_name).map_err(|e| inval(e.to_string()))
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .all(Level::NodeGroup, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        if let Some(g) = cfg.group_by_name(&self.op.new_name) {
            return Err(exists(format!(
                "Desired new name '{}' clashes with existing node group (UUID: {})",
                self.op.new_name, g.uuid
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut g = ctx
                .config()
                .read()
                .groups
                .get(&self.uuid)
                .cloned()
                .ok_or_else(|| Error::exec("Group vanished while locked"))?;
            g.name = self.op.new_name.clone();
            let mut ch = Changes::new();
            ch.group(g);
            ctx.commit(ch)?;
            Ok(json!(self.op.new_name))
        })
    }
}

/// `OP_GROUP_ASSIGN_NODES`.
pub struct AssignNodes {
    op: opcodes::GroupAssignNodes,
    uuid: String,
    nodes: Vec<String>,
}

impl AssignNodes {
    pub fn new(op: opcodes::GroupAssignNodes) -> Self {
        AssignNodes {
            op,
            uuid: String::new(),
            nodes: Vec::new(),
        }
    }
}

impl LogicalUnit for AssignNodes {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        self.nodes = self
            .op
            .nodes
            .iter()
            .map(|n| expand_node(cfg, n).map(|n| n.uuid.clone()))
            .collect::<Result<_, _>>()?;
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .all(Level::NodeGroup, Mode::Exclusive)
            .some(Level::Node, self.nodes.clone(), Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        // An instance whose nodes would end up in different groups is split;
        // Ganeti refuses that unless forced.
        if self.op.force {
            return Ok(());
        }
        let group_of = |uuid: &str| -> String {
            if self.nodes.iter().any(|n| n == uuid) {
                self.uuid.clone()
            } else {
                cfg.nodes
                    .get(uuid)
                    .map(|n| n.group.clone())
                    .unwrap_or_default()
            }
        };
        for inst in cfg.instances.values() {
            let nodes = inst.all_nodes();
            let first = group_of(&nodes[0]);
            if nodes.iter().any(|n| group_of(n) != first) {
                return Err(wrong_state(format!(
                    "Instance '{}' would be split across node groups; use --force to \
                     assign the nodes anyway",
                    inst.name
                )));
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut ch = Changes::new();
            {
                let cfg = ctx.config().read();
                for u in &self.nodes {
                    let mut n = cfg
                        .nodes
                        .get(u)
                        .cloned()
                        .ok_or_else(|| Error::exec("Node vanished while locked"))?;
                    if n.group != self.uuid {
                        n.group = self.uuid.clone();
                        ch.node(n);
                    }
                }
            }
            if !ch.is_empty() {
                ctx.commit(ch)?;
            }
            Ok(Value::Null)
        })
    }
}

/// `OP_GROUP_SET_PARAMS`.
pub struct SetParams {
    op: opcodes::GroupSetParams,
    uuid: String,
}

impl SetParams {
    pub fn new(op: opcodes::GroupSetParams) -> Self {
        SetParams {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_alloc_policy(&self.op.alloc_policy)
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        Ok(LockRequest::new().bgl(Mode::Shared).some(
            Level::NodeGroup,
            vec![self.uuid.clone()],
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        if self.op.alloc_policy.is_none() && self.op.ndparams.is_none() {
            return Err(inval("Please pass at least one modification"));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut g = ctx
                .config()
                .read()
                .groups
                .get(&self.uuid)
                .cloned()
                .ok_or_else(|| Error::exec("Group vanished while locked"))?;
            let mut result = Vec::new();
            if let Some(p) = &self.op.alloc_policy {
                g.alloc_policy = p.clone();
                result.push(json!(["alloc_policy", p]));
            }
            if let Some(nd) = &self.op.ndparams {
                g.ndparams = objects::params::update(&g.ndparams, nd);
                result.push(json!(["ndparams", g.ndparams]));
            }
            let mut ch = Changes::new();
            ch.group(g);
            ctx.commit(ch)?;
            Ok(Value::Array(result))
        })
    }
}
