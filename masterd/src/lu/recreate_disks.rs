//! `OP_INSTANCE_RECREATE_DISKS` (`gnt-instance recreate-disks`): makes an
//! instance's disks again, empty, where they were lost, optionally on
//! other nodes and with another size or mode, as Ganeti's
//! `LUInstanceRecreateDisks`.

use std::collections::BTreeMap;

use luxi::opcodes;
use objects::{DiskMode, DiskTemplate};
use rpc::api;
use serde_json::{json, Value};

use super::common::{
    check_node_online, disk_spec, expand_instance, expand_node, get_instance, rpc_error,
};
use super::instance::is_running;
use super::instance_storage::remove_disk;
use super::undo::Undo;
use super::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

/// What may change of a disk that is made again.
#[derive(Debug, Default, Clone, PartialEq)]
struct DiskChanges {
    size: Option<u64>,
    mode: Option<DiskMode>,
    spindles: Option<u64>,
}

/// `OP_INSTANCE_RECREATE_DISKS`.
pub struct RecreateDisks {
    op: opcodes::InstanceRecreateDisks,
    uuid: String,
    /// Disk index to its changes: the disks to make again.
    disks: BTreeMap<usize, DiskChanges>,
    /// The new nodes (UUIDs), primary first; empty: the current ones.
    nodes: Vec<String>,
}

impl RecreateDisks {
    pub fn new(op: opcodes::InstanceRecreateDisks) -> Self {
        RecreateDisks {
            op,
            uuid: String::new(),
            disks: BTreeMap::new(),
            nodes: Vec::new(),
        }
    }
}

/// One entry of the opcode's `disks`: an index (deprecated form) or
/// `[index, {size, mode, spindles}]`.
fn parse_disk(v: &Value) -> Result<(usize, DiskChanges), Error> {
    let bad = |why: &str| inval(format!("Invalid disk specification {v}: {why}"));
    if let Some(i) = v.as_u64() {
        return Ok((i as usize, DiskChanges::default()));
    }
    let pair = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| bad("expected [index, {parameters}]"))?;
    let idx = pair[0]
        .as_u64()
        .ok_or_else(|| bad("the index is not a number"))? as usize;
    let params = pair[1]
        .as_object()
        .ok_or_else(|| bad("the parameters are not a dict"))?;
    let mut ch = DiskChanges::default();
    let mut unsupported = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "size" => ch.size = Some(v.as_u64().ok_or_else(|| bad("the size is not a number"))?),
            "spindles" => {
                ch.spindles = Some(v.as_u64().ok_or_else(|| bad("spindles is not a number"))?)
            }
            "mode" => {
                ch.mode = Some(match v.as_str() {
                    Some("rw") => DiskMode::Rw,
                    Some("ro") => DiskMode::Ro,
                    _ => return Err(bad("the mode is neither rw nor ro")),
                })
            }
            other => unsupported.push(other.to_string()),
        }
    }
    if !unsupported.is_empty() {
        return Err(inval(format!(
            "Parameters for disk {idx} try to change unmodifyable parameter(s): {}",
            unsupported.join(", ")
        )));
    }
    Ok((idx, ch))
}

impl LogicalUnit for RecreateDisks {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let mut seen = Vec::new();
        let mut dups = Vec::new();
        for v in &self.op.disks {
            let (idx, ch) = parse_disk(v)?;
            if seen.contains(&idx) {
                dups.push(idx.to_string());
            }
            seen.push(idx);
            self.disks.insert(idx, ch);
        }
        if !dups.is_empty() {
            return Err(inval(format!(
                "Some disks have been specified more than once: {}",
                dups.join(", ")
            )));
        }
        if self.op.iallocator.is_some() && !self.op.nodes.is_empty() {
            return Err(inval("Give either nodes or an iallocator, not both"));
        }
        if self.op.iallocator.is_some() {
            return Err(inval(
                "Parameter 'iallocator' of OP_INSTANCE_RECREATE_DISKS is not supported by \
                 ganeti-rs yet; name the nodes (-n)",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let inst = expand_instance(
            cfg,
            self.op
                .instance_uuid
                .as_deref()
                .unwrap_or(&self.op.instance_name),
        )?;
        self.uuid = inst.uuid.clone();
        let names: Vec<String> = match &self.op.node_uuids {
            Some(u) => u.clone(),
            None => self.op.nodes.clone(),
        };
        self.nodes = names
            .iter()
            .map(|n| expand_node(cfg, n).map(|n| n.uuid.clone()))
            .collect::<Result<_, _>>()?;
        let mut nodes = inst.all_nodes();
        nodes.extend(self.nodes.iter().cloned());
        nodes.sort();
        nodes.dedup();
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::Instance, vec![inst.uuid.clone()], Mode::Exclusive)
            .some(Level::Node, nodes.clone(), Mode::Exclusive)
            .some(Level::NodeRes, nodes, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        let current = inst.all_nodes();
        if !self.nodes.is_empty() && self.nodes.len() != current.len() {
            return Err(inval(format!(
                "Instance {} currently has {} nodes, but {} replacement nodes were specified",
                inst.name,
                current.len(),
                self.nodes.len()
            )));
        }
        if self.nodes.len() == 2 && self.nodes[0] == self.nodes[1] {
            return Err(inval("The secondary node cannot be the primary node"));
        }
        let primary = self.nodes.first().unwrap_or(&inst.primary_node);
        check_node_online(&cfg.nodes[primary])?;
        if inst.disks.is_empty() {
            return Err(inval(format!("Instance '{}' has no disks", inst.name)));
        }
        if self.disks.is_empty() {
            self.disks = (0..inst.disks.len())
                .map(|i| (i, DiskChanges::default()))
                .collect();
        }
        if let Some(&max) = self.disks.keys().max() {
            if max >= inst.disks.len() {
                return Err(inval(format!("Invalid disk index '{max}'")));
            }
        }
        if !self.nodes.is_empty() && self.disks.len() != inst.disks.len() {
            return Err(inval(
                "Can't recreate disks partially and change the nodes at the same time",
            ));
        }
        if self.disks.values().any(|c| c.spindles.is_some()) {
            return Err(inval(
                "Spindles are only given with exclusive storage, which ganeti-rs does not have",
            ));
        }
        for u in &self.nodes {
            check_node_online(&cfg.nodes[u])?;
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let before = inst.clone();
            let old_primary = crate::lu::common::get_node(ctx, &inst.primary_node)?;
            let moving = !self.nodes.is_empty();
            let old_offline = old_primary.offline;
            if !(moving && old_offline) && is_running(ctx, &inst, &old_primary).await? {
                return Err(wrong_state(format!(
                    "Instance {} is running, cannot recreate disks",
                    inst.name
                )));
            }
            // The instance as it will be.
            for (idx, ch) in &self.disks {
                let d = &mut inst.disks[*idx];
                if let Some(size) = ch.size {
                    d.size = size;
                    if d.dev_type == DiskTemplate::Drbd {
                        if let Some(data) = d.children.first_mut() {
                            data.size = size;
                        }
                    }
                }
                if let Some(mode) = ch.mode {
                    d.mode = mode;
                }
                if moving {
                    d.nodes = self.nodes.clone();
                    for c in &mut d.children {
                        c.nodes = self.nodes.clone();
                    }
                    if d.dev_type == DiskTemplate::Drbd {
                        if let Some(a) = d.logical_id.as_array_mut() {
                            if a.len() == 6 {
                                a[0] = json!(self.nodes[0]);
                                a[1] = json!(self.nodes[1]);
                            }
                        }
                    }
                }
                d.serial_no += 1;
            }
            if moving {
                inst.primary_node = self.nodes[0].clone();
            }
            // The disks first, on their (new) nodes, the secondaries'
            // copies first; a disk still there at its size is left as it
            // is. What is made on a node the instance did not use goes
            // again if a later step fails.
            let (specs, order) = {
                let cfg = ctx.config().read();
                let mut specs = Vec::new();
                for idx in self.disks.keys() {
                    specs.push((*idx, disk_spec(&cfg, &inst.disks[*idx], *idx)?));
                }
                let mut order: Vec<(objects::Node, bool)> = inst
                    .secondary_nodes()
                    .iter()
                    .map(|u| (cfg.nodes[u].clone(), false))
                    .collect();
                order.push((cfg.nodes[&inst.primary_node].clone(), true));
                (specs, order)
            };
            let old_nodes = before.all_nodes();
            let mut undo = Undo::new(ctx);
            for (node, on_primary) in &order {
                for (idx, spec) in &specs {
                    if !inst.disks[*idx].nodes.contains(&node.uuid) {
                        continue;
                    }
                    let req = api::BlockdevCreate {
                        instance_name: inst.name.clone(),
                        disk: spec.clone(),
                        size: None,
                        on_primary: *on_primary,
                    };
                    if let Err(e) = ctx.rpc().call(node, &req).await {
                        let err = rpc_error(
                            &format!("Can't create block device {idx} on node {}", node.name),
                            e,
                        );
                        return Err(undo.unwind(err).await);
                    }
                    if !old_nodes.contains(&node.uuid) {
                        undo.push(
                            format!("remove disk {idx} on node {}", node.name),
                            remove_disk(ctx, inst.name.clone(), node.clone(), spec.clone()),
                        );
                    }
                }
            }
            // Then the configuration: the disks' new nodes and sizes.
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            if let Err(e) = ctx.commit(ch) {
                return Err(undo.unwind(e).await);
            }
            undo.done();
            if moving {
                remove_old_copies(ctx, &before, &self.nodes).await?;
            }
            Ok(Value::Null)
        })
    }
}

/// After a move, removes what is left of the instance's disks on its old
/// nodes that it no longer uses (Ganeti leaves them for the admin). What
/// cannot be removed (an offline node, a failed call) fails the job with
/// an error that names it: the new disks are in use, the old ones must
/// then go by hand.
async fn remove_old_copies(
    ctx: &Ctx,
    before: &objects::Instance,
    new: &[String],
) -> Result<(), Error> {
    let (old_nodes, specs) = {
        let cfg = ctx.config().read();
        let nodes: Vec<objects::Node> = before
            .all_nodes()
            .iter()
            .filter(|u| !new.contains(u))
            .filter_map(|u| cfg.nodes.get(u).cloned())
            .collect();
        let specs = before
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| disk_spec(&cfg, d, i))
            .collect::<Result<Vec<_>, _>>()?;
        (nodes, specs)
    };
    let mut left = Vec::new();
    for node in &old_nodes {
        if node.offline {
            left.push(format!("node {} is offline", node.name));
            continue;
        }
        let failed = super::instance_storage::remove_disks(ctx, &before.name, node, &specs).await;
        left.extend(failed);
    }
    if left.is_empty() {
        return Ok(());
    }
    Err(Error::exec(format!(
        "The disks were made again on the new nodes, but the old ones must be removed by \
         hand: {}",
        left.join("; ")
    )))
}
