//! Nodes: add, remove, set parameters.

use luxi::error::ErrorCode;

use crate::error::Error;
use luxi::opcodes::{self, Input, OpCode};
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
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_host_name("node", &self.op.node_name).map_err(|e| inval(e.to_string()))
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        // Adding a node changes the cluster's membership: take it all.
        Ok(LockRequest::new()
            .bgl(Mode::Exclusive)
            .all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let existing = cfg.node_by_name(&self.op.node_name);
        match (existing, self.op.readd) {
            (Some(_), false) => {
                return Err(exists(format!(
                    "Node {} is already in the configuration",
                    self.op.node_name
                )))
            }
            (None, true) => {
                return Err(Error::prereq(
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
            let ip = match &self.op.primary_ip {
                Some(ip) => ip.clone(),
                None => objects::resolver::resolve(ctx.paths(), &self.op.node_name)
                    .map(|ip| ip.to_string())
                    .ok_or_else(|| {
                        Error::prereq(
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
                let cfg = ctx.config().read();
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
            let existing = ctx
                .config()
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
            let version = ctx
                .rpc()
                .call_anyway(&node, &rpc::api::Version {})
                .await
                .map_err(|e| rpc_error(&format!("Node {} does not answer", node.name), e))?;
            if version.protocol != rpc::api::PROTOCOL_VERSION {
                return Err(Error::exec(format!(
                    "Node {} speaks node RPC protocol {}, the master speaks {}",
                    node.name,
                    version.protocol,
                    rpc::api::PROTOCOL_VERSION
                )));
            }
            {
                let cfg = ctx.config().read();
                let candidates = cfg.nodes.values().filter(|n| n.master_candidate).count();
                node.master_candidate =
                    node.master_capable && candidates < cfg.cluster.candidate_pool_size as usize;
            }
            // A node added again may have lost its ssconf files.
            ctx.ssconf_resend(&node.uuid);
            let mut ch = Changes::new();
            ch.node(node.clone());
            ctx.commit(ch)?;
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
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_node(cfg, &self.op.node_name)?.uuid.clone();
        Ok(LockRequest::new()
            .bgl(Mode::Exclusive)
            .all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
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
            let node = ctx.config().read().nodes[&self.uuid].clone();
            let mut ch = Changes::new();
            ch.remove_node(&self.uuid);
            ctx.commit(ch)?;
            // The node forgets the cluster (its certificates); a node that
            // cannot be reached is only warned about, as in Ganeti.
            if let Err(e) = ctx.rpc().call(&node, &rpc::api::NodeLeaveCluster {}).await {
                ctx.feedback(format!(
                    "Warning: node {} could not be told to leave the cluster: {}",
                    node.name,
                    objects::error_chain(&e)
                ));
            }
            Ok(Value::Null)
        })
    }
}

/// A node's role: at most one of its three flags is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Candidate,
    Drained,
    Offline,
    Regular,
}

impl Role {
    fn of(node: &Node) -> Role {
        if node.master_candidate {
            Role::Candidate
        } else if node.drained {
            Role::Drained
        } else if node.offline {
            Role::Offline
        } else {
            Role::Regular
        }
    }

    /// `(master_candidate, drained, offline)`.
    fn flags(self) -> [bool; 3] {
        match self {
            Role::Candidate => [true, false, false],
            Role::Drained => [false, true, false],
            Role::Offline => [false, false, true],
            Role::Regular => [false, false, false],
        }
    }
}

/// The flags of a role, in Ganeti's order.
const ROLE_FLAGS: [&str; 3] = ["master_candidate", "drained", "offline"];

/// Ganeti's master candidate statistics, leaving out `except`: the
/// candidates now, and how many there should be (the nodes that could be
/// candidates, at most the pool size).
fn candidate_stats(cfg: &ConfigData, except: Option<&str>) -> (usize, usize, usize) {
    let mut now = 0;
    let mut max = 0;
    for n in cfg.nodes.values() {
        if Some(n.uuid.as_str()) == except {
            continue;
        }
        if !(n.offline || n.drained) && n.master_capable {
            max += 1;
        }
        if n.master_candidate {
            now += 1;
        }
    }
    let should = max.min(cfg.cluster.candidate_pool_size as usize);
    (now, should, max)
}

/// `OP_NODE_SET_PARAMS`, with Ganeti's roles: a node is a master
/// candidate, drained, offline or none of these; leaving a role may
/// promote the node (when the candidate pool is short), and demoting a
/// candidate either needs the pool to stay full or `auto_promote`.
pub struct SetParams {
    op: opcodes::NodeSetParams,
    uuid: String,
    /// `auto_promote` while demoting: every node is locked, and others are
    /// promoted to fill the pool.
    lock_all: bool,
    old_role: Role,
    new_role: Role,
    /// What check_prereq tells the user, sent when exec starts.
    infos: Vec<String>,
}

impl SetParams {
    pub fn new(op: opcodes::NodeSetParams) -> Self {
        SetParams {
            op,
            uuid: String::new(),
            lock_all: false,
            old_role: Role::Regular,
            new_role: Role::Regular,
            infos: Vec::new(),
        }
    }

    fn might_demote(&self) -> bool {
        let o = &self.op;
        o.master_candidate == Some(false)
            || o.offline == Some(true)
            || o.drained == Some(true)
            || o.master_capable == Some(false)
    }

    fn flag(&mut self, i: usize) -> &mut Option<bool> {
        match i {
            0 => &mut self.op.master_candidate,
            1 => &mut self.op.drained,
            _ => &mut self.op.offline,
        }
    }
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &self.op;
        let mods = [
            o.offline,
            o.master_candidate,
            o.drained,
            o.master_capable,
            o.vm_capable,
        ];
        if mods.iter().all(Option::is_none) && o.ndparams.is_none() && o.powered.is_none() {
            return Err(inval("Please pass at least one modification"));
        }
        if mods.iter().filter(|v| **v == Some(true)).count() > 1 {
            return Err(inval(
                "Can't set the node into more than one state at the same time",
            ));
        }
        self.lock_all = self.op.auto_promote && self.might_demote();
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_node(cfg, &self.op.node_name)?.uuid.clone();
        let req = LockRequest::new().bgl(Mode::Shared);
        Ok(if self.lock_all {
            req.all(Level::Node, Mode::Exclusive)
        } else {
            req.some(Level::Node, vec![self.uuid.clone()], Mode::Exclusive)
        })
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let node = cfg.nodes[&self.uuid].clone();
        let is_master = cfg.cluster.master_node == self.uuid;
        self.infos.clear();
        let o = &self.op;
        if (o.master_candidate.is_some() || o.drained.is_some() || o.offline.is_some()) && is_master
        {
            return Err(inval(
                "The master role can be changed only via master-failover",
            ));
        }
        if o.master_candidate == Some(true) && !node.master_capable {
            return Err(wrong_state(format!(
                "Node {} is not master capable, cannot make it a master candidate",
                node.name
            )));
        }
        if o.vm_capable == Some(false)
            && cfg
                .instances
                .values()
                .any(|i| i.all_nodes().contains(&self.uuid))
        {
            return Err(wrong_state(format!(
                "Node {} hosts instances, cannot unset the vm_capable flag",
                node.name
            )));
        }
        if node.master_candidate && self.might_demote() && !self.lock_all {
            let (remaining, should, _) = candidate_stats(cfg, Some(&self.uuid));
            if remaining < should {
                return Err(wrong_state(
                    "Not enough master candidates, please pass auto promote option to allow \
                     promotion (--auto-promote or RAPI auto_promote=True)",
                ));
            }
        }
        self.old_role = Role::of(&node);
        let old_flags = self.old_role.flags();
        // Unsetting a flag that is not set changes nothing.
        for (i, name) in ROLE_FLAGS.iter().enumerate() {
            if *self.flag(i) == Some(false) && !old_flags[i] {
                self.infos.push(format!(
                    "Ignoring request to unset flag {name}, already unset"
                ));
                *self.flag(i) = None;
            }
        }
        let nd = objects::params::fill(
            &objects::params::fill(
                &cfg.cluster.ndparams,
                &cfg.groups
                    .get(&node.group)
                    .map(|g| g.ndparams.clone())
                    .unwrap_or_default(),
            ),
            &node.ndparams,
        );
        let oob = nd
            .get("oob_program")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty());
        if oob {
            if self.op.offline == Some(false) && !(node.powered || self.op.powered == Some(true)) {
                return Err(wrong_state(format!(
                    "Node {} needs to be turned on before its offline status can be reset",
                    self.op.node_name
                )));
            }
        } else if self.op.powered.is_some() {
            return Err(wrong_state(format!(
                "Unable to change powered state for node {} as it does not support \
                 out-of-band handling",
                self.op.node_name
            )));
        }
        // A node coming back may fill a short candidate pool.
        if self.op.drained == Some(false)
            || self.op.offline == Some(false)
            || (self.op.master_capable == Some(true) && !node.master_capable)
        {
            let (now, should, _) = candidate_stats(cfg, None);
            let should = (should + 1).min(cfg.cluster.candidate_pool_size as usize);
            if now < should {
                self.op.master_candidate = Some(true);
                self.infos
                    .push("Auto-promoting node to master candidate".to_string());
            }
        }
        if self.op.master_capable == Some(false) && node.master_candidate {
            if is_master {
                return Err(wrong_state("Master must remain master capable"));
            }
            self.infos
                .push("Demoting from master candidate".to_string());
            self.op.master_candidate = Some(false);
        }
        let o = &self.op;
        let wanted = [o.master_candidate, o.drained, o.offline];
        self.new_role = if o.master_candidate == Some(true) {
            Role::Candidate
        } else if o.drained == Some(true) {
            Role::Drained
        } else if o.offline == Some(true) {
            Role::Offline
        } else if wanted.contains(&Some(false)) {
            Role::Regular
        } else {
            self.old_role
        };
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            for info in std::mem::take(&mut self.infos) {
                ctx.log_info(info);
            }
            let mut n = ctx.config().read().nodes[&self.uuid].clone();
            if self.old_role == Role::Offline && self.new_role != Role::Offline {
                if let Err(e) = ctx.rpc().call_anyway(&n, &rpc::api::Version {}).await {
                    return Err(wrong_state(format!(
                        "Node {} is being de-offlined but fails to report its version: {}",
                        n.name,
                        objects::error_chain(&e)
                    )));
                }
                ctx.log_warning(
                    "Transitioning node from offline to online state without using re-add. \
                     Please make sure the node is healthy!",
                );
            }
            // What changed, in Ganeti's order: the capabilities (as asked,
            // changed or not), then the role's flags that changed.
            let mut result: Vec<Value> = Vec::new();
            if let Some(nd) = &self.op.ndparams {
                n.ndparams = objects::params::update(&n.ndparams, nd);
            }
            if let Some(v) = self.op.powered {
                n.powered = v;
            }
            if let Some(v) = self.op.master_capable {
                n.master_capable = v;
                result.push(json!(["master_capable", py_bool(v)]));
            }
            if let Some(v) = self.op.vm_capable {
                n.vm_capable = v;
                result.push(json!(["vm_capable", py_bool(v)]));
            }
            if self.new_role != self.old_role {
                let old = self.old_role.flags();
                let new = self.new_role.flags();
                for i in 0..3 {
                    if old[i] != new[i] {
                        result.push(json!([ROLE_FLAGS[i], py_bool(new[i])]));
                    }
                }
                [n.master_candidate, n.drained, n.offline] = new;
            }
            let mut ch = Changes::new();
            ch.node(n);
            ctx.commit(ch)?;
            if self.lock_all && self.new_role != self.old_role {
                self.fill_candidate_pool(ctx)?;
            }
            Ok(Value::Array(result))
        })
    }
}

impl SetParams {
    /// Ganeti's `AdjustCandidatePool` after a demotion with `auto_promote`:
    /// other nodes (by name) become candidates until the pool is full.
    fn fill_candidate_pool(&self, ctx: &Ctx) -> Result<(), Error> {
        let (promoted, note) = {
            let cfg = ctx.config().read();
            let (mut now, should, _) = candidate_stats(&cfg, Some(&self.uuid));
            let mut nodes: Vec<&Node> = cfg
                .nodes
                .values()
                .filter(|n| {
                    n.uuid != self.uuid
                        && !n.master_candidate
                        && !n.offline
                        && !n.drained
                        && n.master_capable
                })
                .collect();
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            let mut promoted = Vec::new();
            for n in nodes {
                if now >= should {
                    break;
                }
                let mut n = n.clone();
                n.master_candidate = true;
                promoted.push(n);
                now += 1;
            }
            let note = (now > should).then(|| {
                format!("Note: more nodes are candidates ({now}) than desired ({should})")
            });
            (promoted, note)
        };
        if !promoted.is_empty() {
            let names: Vec<String> = promoted.iter().map(|n| n.name.clone()).collect();
            let mut ch = Changes::new();
            for n in promoted {
                ch.node(n);
            }
            ctx.commit(ch)?;
            ctx.log_info(format!(
                "Promoted nodes to master candidate role: {}",
                names.join(", ")
            ));
        }
        if let Some(note) = note {
            ctx.log_info(note);
        }
        Ok(())
    }
}

/// A boolean as Python prints it.
fn py_bool(v: bool) -> &'static str {
    if v {
        "True"
    } else {
        "False"
    }
}

/// Names of the instances whose primary (or, with `secondary`, secondary)
/// node is `node`, sorted.
fn node_instances(cfg: &ConfigData, node: &str, secondary: bool) -> Vec<String> {
    let mut names: Vec<String> = cfg
        .instances
        .values()
        .filter(|i| {
            if secondary {
                i.secondary_nodes().iter().any(|s| s == node)
            } else {
                i.primary_node == node
            }
        })
        .map(|i| i.name.clone())
        .collect();
    names.sort();
    names
}

/// `OP_NODE_MIGRATE`: one `OP_INSTANCE_MIGRATE` job per primary instance.
pub struct Migrate {
    op: opcodes::NodeMigrate,
    uuid: String,
}

impl Migrate {
    pub fn new(op: opcodes::NodeMigrate) -> Self {
        Migrate {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Migrate {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if self.op.iallocator.is_some()
            && (self.op.target_node.is_some() || self.op.target_node_uuid.is_some())
        {
            return Err(inval(
                "Give either a target node or an iallocator, not both",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self.op.node_uuid.as_deref().unwrap_or(&self.op.node_name);
        self.uuid = expand_node(cfg, name)?.uuid.clone();
        Ok(LockRequest::new().some(Level::Node, vec![self.uuid.clone()], Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let o = &self.op;
            let names = node_instances(&ctx.config().read(), &self.uuid, false);
            let jobs = names
                .into_iter()
                .map(|name| {
                    let op = opcodes::InstanceMigrate {
                        instance_name: name,
                        mode: o.mode.clone(),
                        live: o.live,
                        iallocator: o.iallocator.clone(),
                        target_node: o.target_node.clone(),
                        target_node_uuid: o.target_node_uuid.clone(),
                        allow_runtime_changes: o.allow_runtime_changes,
                        ignore_ipolicy: o.ignore_ipolicy,
                        ..Default::default()
                    };
                    vec![Input::new(OpCode::InstanceMigrate(op)).with_priority(ctx.common.priority)]
                })
                .collect();
            ctx.submit_jobs(jobs).await
        })
    }
}

/// `OP_NODE_EVACUATE`: asks the iallocator how to move the node's
/// instances away and submits the jobs it proposes.
pub struct Evacuate {
    op: opcodes::NodeEvacuate,
    uuid: String,
    /// The iallocator that computes the moves; `None` when the opcode
    /// names the new secondary node.
    plugin: Option<String>,
    /// The new secondary node's name (`remote_node`), once expanded.
    remote: Option<(String, String)>,
}

impl Evacuate {
    pub fn new(op: opcodes::NodeEvacuate) -> Self {
        Evacuate {
            op,
            uuid: String::new(),
            plugin: None,
            remote: None,
        }
    }
}

const EVAC_PRIMARY: &str = "primary-only";
const EVAC_SECONDARY: &str = "secondary-only";
const EVAC_ALL: &str = "all";

impl LogicalUnit for Evacuate {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &self.op;
        if ![EVAC_PRIMARY, EVAC_SECONDARY, EVAC_ALL].contains(&o.mode.as_str()) {
            return Err(inval(format!(
                "Invalid evacuation mode '{}'; expected one of {EVAC_PRIMARY}, \
                 {EVAC_SECONDARY}, {EVAC_ALL}",
                o.mode
            )));
        }
        let remote = o.remote_node.is_some() || o.remote_node_uuid.is_some();
        if remote && o.iallocator.is_some() {
            return Err(inval(
                "Give either a new secondary node or an iallocator, not both",
            ));
        }
        if remote && o.mode != EVAC_SECONDARY {
            return Err(inval(
                "Without the use of an iallocator only secondary instances can be evacuated",
            ));
        }
        if o.mode == EVAC_ALL {
            return Err(inval(
                "Due to an issue with the iallocator interface it is not possible to \
                 evacuate all instances at once; specify explicitly whether to evacuate \
                 primary or secondary instances",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let o = &self.op;
        let name = o.node_uuid.as_deref().unwrap_or(&o.node_name);
        self.uuid = expand_node(cfg, name)?.uuid.clone();
        if let Some(r) = o.remote_node_uuid.as_deref().or(o.remote_node.as_deref()) {
            let remote = expand_node(cfg, r)?;
            if remote.uuid == self.uuid {
                return Err(inval("Can not use evacuated node as a new secondary node"));
            }
            self.remote = Some((remote.uuid.clone(), remote.name.clone()));
        } else {
            self.plugin = o
                .iallocator
                .clone()
                .or_else(|| cfg.cluster.default_allocator().map(str::to_string));
            if self.plugin.is_none() {
                return Err(inval(
                    "No iallocator or new secondary node given and no cluster-wide default \
                     iallocator found; please specify either an iallocator or a node",
                ));
            }
        }
        // The iallocator looks at every node; the moves run in their own jobs.
        Ok(LockRequest::new().all(Level::Node, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        if let Some((uuid, name)) = &self.remote {
            let mut own = cfg
                .instances
                .values()
                .filter(|i| i.secondary_nodes().contains(&self.uuid));
            if let Some(i) = own.find(|i| &i.primary_node == uuid) {
                return Err(inval(format!(
                    "Node {name} is the primary node of instance {}, cannot use it as \
                     secondary",
                    i.name
                )));
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let o = &self.op;
            let (node_name, names) = {
                let cfg = ctx.config().read();
                let secondary = o.mode == EVAC_SECONDARY;
                (
                    cfg.node_name(&self.uuid).to_string(),
                    node_instances(&cfg, &self.uuid, secondary),
                )
            };
            if names.is_empty() {
                ctx.feedback(format!("No instances to evacuate from node '{node_name}'"));
                return ctx.submit_jobs(Vec::new()).await;
            }
            ctx.feedback(format!(
                "Evacuating instances from node '{node_name}': {}",
                names.join(", ")
            ));
            let Some(plugin) = &self.plugin else {
                // A new secondary node for each instance's mirrored disks.
                let Some((_, remote)) = &self.remote else {
                    return Err(Error::programmer("node evacuation without a target"));
                };
                let jobs = names
                    .into_iter()
                    .map(|name| {
                        let op = opcodes::InstanceReplaceDisks {
                            instance_name: name,
                            mode: "replace_new_secondary".into(),
                            remote_node: Some(remote.clone()),
                            early_release: o.early_release,
                            ..Default::default()
                        };
                        vec![Input::new(OpCode::InstanceReplaceDisks(op))
                            .with_priority(ctx.common.priority)]
                    })
                    .collect();
                return ctx.submit_jobs(jobs).await;
            };
            let result = ctx
                .node_evacuate(plugin, &o.mode, &names, o.ignore_soft_errors)
                .await?;
            let jobs = load_evacuation(ctx, plugin, &result, o.early_release)?;
            ctx.submit_jobs(jobs).await
        })
    }
}

/// The jobs of an iallocator's node-evacuate or change-group answer
/// (Ganeti's `LoadNodeEvacResult`): an instance it could not move fails
/// the unit; each opcode is parsed as any input is (refused by name if
/// ganeti-rs cannot run it), and replacements carry `early_release`.
pub(super) fn load_evacuation(
    ctx: &Ctx,
    plugin: &str,
    result: &Value,
    early_release: bool,
) -> Result<Vec<Vec<Input>>, Error> {
    let (moved, failed, jobs) = parse_evacuation(plugin, result)?;
    if !failed.is_empty() {
        let reason = failed.join(", ");
        ctx.feedback(format!("Unable to evacuate instances {reason}"));
        return Err(Error::exec(format!(
            "Unable to evacuate instances {reason}"
        )));
    }
    if !moved.is_empty() {
        ctx.feedback(format!("Instances to be moved: {}", moved.join(", ")));
    }
    jobs.iter()
        .map(|ops| {
            ops.iter()
                .map(|op| {
                    let mut op = op.clone();
                    if op["OP_ID"] == "OP_INSTANCE_REPLACE_DISKS" {
                        op["early_release"] = Value::Bool(early_release);
                    }
                    let input = luxi::opcodes::parse(&op).map_err(|e| {
                        Error::exec(format!(
                            "Iallocator '{plugin}' asked for an opcode ganeti-rs cannot run: {}",
                            e.message()
                        ))
                    })?;
                    Ok(input.with_priority(ctx.common.priority))
                })
                .collect()
        })
        .collect()
}

/// The moves (`name (to nodes)`), failures (`name (reason)`) and jobs of
/// an iallocator's node-evacuate answer `[moved, failed, jobs]`.
type Evacuation = (Vec<String>, Vec<String>, Vec<Vec<Value>>);

fn parse_evacuation(plugin: &str, result: &Value) -> Result<Evacuation, Error> {
    let bad = || {
        Error::exec(format!(
            "Iallocator '{plugin}' gave an invalid node-evacuate answer: {result}"
        ))
    };
    let [moved, failed, jobs] = result.as_array().map(Vec::as_slice).ok_or_else(bad)? else {
        return Err(bad());
    };
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    let mut m = Vec::new();
    for e in moved.as_array().ok_or_else(bad)? {
        let e = e.as_array().ok_or_else(bad)?;
        let name = e.first().map(text).ok_or_else(bad)?;
        let nodes: Vec<String> = e
            .get(2)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        m.push(format!("{name} (to {})", nodes.join(", ")));
    }
    let mut f = Vec::new();
    for e in failed.as_array().ok_or_else(bad)? {
        let e = e.as_array().ok_or_else(bad)?;
        f.push(format!(
            "{} ({})",
            e.first().map(text).unwrap_or_default(),
            e.get(1).map(text).unwrap_or_default()
        ));
    }
    let mut j = Vec::new();
    for ops in jobs.as_array().ok_or_else(bad)? {
        j.push(ops.as_array().ok_or_else(bad)?.clone());
    }
    Ok((m, f, j))
}
