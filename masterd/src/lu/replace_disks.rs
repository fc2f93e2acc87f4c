//! `OP_INSTANCE_REPLACE_DISKS` (`gnt-instance replace-disks`): a `drbd`
//! instance's copy on its secondary made again (`-s`), or moved to a new
//! secondary node (`-n`, `-I`), or whatever is faulty (`-a`), as Ganeti's
//! `TLReplaceDisks`. The replacement copy is synced in full from the
//! primary before the old one goes.

use luxi::opcodes;
use objects::{DiskTemplate, Instance, Node};
use rpc::api::{self, DiskSpec, LocalDiskStatus};
use serde_json::{json, Value};

use super::common::{
    check_target_node, disk_spec, expand_instance, expand_node, get_instance, get_node, rpc_error,
};
use super::instance_storage::{remove_disk, wait_for_sync};
use super::undo::Undo;
use super::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

/// What is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// The primary's copy (`-p`).
    Primary,
    /// The secondary's copy, on the same node (`-s`).
    Secondary,
    /// The secondary's copy, on another node (`-n`, `-I`).
    NewSecondary,
    /// Whatever is faulty (`-a`).
    Auto,
}

/// Refused modes and faults say how to get there anyway.
const NO_PRIMARY: &str = "Replacing the primary's copy is not supported by ganeti-rs yet: fail \
     the instance over to its secondary, replace the disks there with -s, and fail it back";

/// `OP_INSTANCE_REPLACE_DISKS`.
pub struct ReplaceDisks {
    op: opcodes::InstanceReplaceDisks,
    what: What,
    uuid: String,
    /// The new secondary (`-n`), once expanded.
    new_node: Option<String>,
}

impl ReplaceDisks {
    pub fn new(op: opcodes::InstanceReplaceDisks) -> Self {
        ReplaceDisks {
            op,
            what: What::Auto,
            uuid: String::new(),
            new_node: None,
        }
    }
}

impl LogicalUnit for ReplaceDisks {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &self.op;
        self.what = match o.mode.as_str() {
            "replace_on_primary" => What::Primary,
            "replace_on_secondary" => What::Secondary,
            "replace_new_secondary" => What::NewSecondary,
            "replace_auto" => What::Auto,
            other => return Err(inval(format!("Invalid replace-disks mode '{other}'"))),
        };
        let remote = o.remote_node.is_some() || o.remote_node_uuid.is_some();
        match (self.what, remote, o.iallocator.is_some()) {
            (What::NewSecondary, true, true) => {
                return Err(inval(
                    "Give either the iallocator or the new secondary, not both",
                ))
            }
            (What::NewSecondary, false, false) => {
                return Err(inval(
                    "When changing the secondary either an iallocator script must be used or \
                     the new node given",
                ))
            }
            (What::NewSecondary, _, _) => {}
            (_, true, _) | (_, _, true) => {
                return Err(inval(
                    "The iallocator and new node options can only be used when changing the \
                     secondary node",
                ))
            }
            _ => {}
        }
        if !o.disks.is_empty() && matches!(self.what, What::Auto | What::NewSecondary) {
            return Err(inval("Cannot specify disks to be replaced"));
        }
        if self.what == What::Primary {
            return Err(inval(NO_PRIMARY));
        }
        if o.ignore_ipolicy {
            return Err(inval(
                "Parameter 'ignore_ipolicy' of OP_INSTANCE_REPLACE_DISKS is not supported by \
                 ganeti-rs yet (no instance policy is enforced)",
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
        let req = LockRequest::new().bgl(Mode::Shared).some(
            Level::Instance,
            vec![inst.uuid.clone()],
            Mode::Exclusive,
        );
        if self.op.iallocator.is_some() {
            // The iallocator may choose any node.
            return Ok(req
                .all(Level::Node, Mode::Exclusive)
                .all(Level::NodeRes, Mode::Exclusive));
        }
        let mut nodes = inst.all_nodes();
        if let Some(n) = self
            .op
            .remote_node_uuid
            .as_deref()
            .or(self.op.remote_node.as_deref())
        {
            let n = expand_node(cfg, n)?.uuid.clone();
            nodes.push(n.clone());
            self.new_node = Some(n);
        }
        Ok(req.some(Level::Node, nodes.clone(), Mode::Exclusive).some(
            Level::NodeRes,
            nodes,
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if inst.disks.iter().any(|d| d.dev_type != DiskTemplate::Drbd) || inst.disks.is_empty() {
            return Err(inval(
                "Can only run replace disks for DRBD8-based instances",
            ));
        }
        if let Some(&i) = self.op.disks.iter().find(|&&i| i >= inst.disks.len()) {
            return Err(inval(format!("Invalid disk index: {i}")));
        }
        if let Some(n) = &self.new_node {
            check_new_secondary(cfg, inst, n)?;
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            let snode_uuid = inst
                .secondary_nodes()
                .first()
                .cloned()
                .ok_or_else(|| inval("The instance has a strange layout: no secondary node"))?;
            let snode = get_node(ctx, &snode_uuid)?;
            let mut disks: Vec<usize> = if self.op.disks.is_empty() {
                (0..inst.disks.len()).collect()
            } else {
                self.op.disks.clone()
            };
            let mut what = self.what;
            if what == What::Auto {
                if !inst.disks_active {
                    return Err(wrong_state(format!(
                        "Please run activate-disks on instance {} first",
                        inst.name
                    )));
                }
                let faulty_p = faulty(ctx, &inst, &pnode).await?;
                let faulty_s = faulty(ctx, &inst, &snode).await?;
                match (faulty_p.is_empty(), faulty_s.is_empty()) {
                    (false, false) => {
                        return Err(wrong_state(format!(
                            "Instance {} has faulty disks on more than one node and can not \
                             be repaired automatically",
                            inst.name
                        )))
                    }
                    (false, true) => return Err(wrong_state(NO_PRIMARY)),
                    (true, false) => {
                        disks = faulty_s;
                        what = What::Secondary;
                    }
                    (true, true) => {
                        ctx.feedback(format!(
                            "No disks need replacement for instance '{}'",
                            inst.name
                        ));
                        return Ok(Value::Null);
                    }
                }
            }
            let new_node = match (&self.new_node, &self.op.iallocator) {
                (Some(n), _) => Some(get_node(ctx, n)?),
                (None, Some(plugin)) => {
                    let nodes = ctx
                        .relocate(plugin, &inst.name, std::slice::from_ref(&snode.name))
                        .await?;
                    let n = {
                        let cfg = ctx.config().read();
                        let n = expand_node(&cfg, &nodes[0])?.clone();
                        check_new_secondary(&cfg, &inst, &n.uuid)?;
                        n
                    };
                    ctx.feedback(format!(
                        " - INFO: Selected new secondary for instance '{}': {}",
                        inst.name, n.name
                    ));
                    Some(n)
                }
                (None, None) => None,
            };
            let list: Vec<String> = disks.iter().map(usize::to_string).collect();
            ctx.feedback(format!(
                "Replacing disk(s) {} for instance '{}'",
                list.join(", "),
                inst.name
            ));
            ctx.feedback(format!("Current primary node: {}", pnode.name));
            ctx.feedback(format!("Current secondary node: {}", snode.name));
            match (what, new_node) {
                (What::NewSecondary, Some(new)) => {
                    ctx.feedback(format!("New secondary node: {}", new.name));
                    new_secondary(ctx, inst, &pnode, &snode, &new).await
                }
                (What::Secondary, _) => same_secondary(ctx, &inst, &pnode, &snode, &disks).await,
                _ => Err(Error::programmer("replace-disks without a target")),
            }
        })
    }
}

/// The checks of a new secondary node.
fn check_new_secondary(cfg: &ConfigData, inst: &Instance, node: &str) -> Result<(), Error> {
    if node == inst.primary_node {
        return Err(inval(
            "The specified node is the primary node of the instance",
        ));
    }
    if inst.secondary_nodes().iter().any(|s| s == node) {
        return Err(inval(
            "The specified node is already the secondary node of the instance",
        ));
    }
    check_target_node(&cfg.nodes[node])
}

/// The indices of the instance's disks that are missing or faulty on `node`.
async fn faulty(ctx: &Ctx, inst: &Instance, node: &Node) -> Result<Vec<usize>, Error> {
    let specs = specs_of(ctx, inst)?;
    let req = api::BlockdevGetMirrorStatus {
        instance_name: inst.name.clone(),
        disks: specs,
    };
    let status = ctx.rpc().call(node, &req).await.map_err(|e| {
        rpc_error(
            &format!("Can't get the disk status on node {}", node.name),
            e,
        )
    })?;
    Ok(status
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.as_ref()
                .is_none_or(|s| s.ldisk_status == LocalDiskStatus::Faulty)
        })
        .map(|(i, _)| i)
        .collect())
}

fn specs_of(ctx: &Ctx, inst: &Instance) -> Result<Vec<DiskSpec>, Error> {
    let cfg = ctx.config().read();
    inst.disks
        .iter()
        .enumerate()
        .map(|(i, d)| disk_spec(&cfg, d, i))
        .collect()
}

/// Creates `disks`' copies on `node` as the secondary; each is removed
/// again by `undo` if a later step fails.
async fn create_copies<'a>(
    ctx: &'a Ctx,
    undo: &mut Undo<'a>,
    inst: &Instance,
    node: &Node,
    disks: &[DiskSpec],
) -> Result<(), Error> {
    for d in disks {
        ctx.feedback(format!(
            " - INFO: Adding new local storage on {} for disk/{}",
            node.name, d.index
        ));
        let req = api::BlockdevCreate {
            instance_name: inst.name.clone(),
            disk: d.clone(),
            size: None,
            on_primary: false,
        };
        ctx.rpc().call(node, &req).await.map_err(|e| {
            rpc_error(
                &format!(
                    "Can't create block device {} on node {}",
                    d.index, node.name
                ),
                e,
            )
        })?;
        undo.push(
            format!("remove disk {} on node {}", d.index, node.name),
            remove_disk(ctx, inst.name.clone(), node.clone(), d.clone()),
        );
    }
    Ok(())
}

/// Points the primary's copies of `disks` at their peer (`snode`, the
/// link in each spec) and waits until the peer is in sync.
async fn resync(
    ctx: &Ctx,
    inst: &Instance,
    pnode: &Node,
    snode: &Node,
    disks: &[DiskSpec],
) -> Result<(), Error> {
    let req = api::DrbdAttachNet {
        instance_name: inst.name.clone(),
        disks: disks.to_vec(),
        multimaster: false,
        primary: Some(pnode.name.clone()),
    };
    ctx.rpc().call(pnode, &req).await.map_err(|e| {
        rpc_error(
            &format!(
                "Can't attach the drbd disks of {} to their new peer",
                inst.name
            ),
            e,
        )
    })?;
    wait_for_sync(ctx, &inst.name, pnode, std::slice::from_ref(snode), disks).await
}

/// `-n`/`-I`: a copy on the new node, the primary switched over to it and
/// synced, the config updated, the old secondary's copy removed.
async fn new_secondary(
    ctx: &Ctx,
    mut inst: Instance,
    pnode: &Node,
    old: &Node,
    new: &Node,
) -> Result<Value, Error> {
    let steps = 6;
    let step = |n: u32, what: &str| ctx.feedback(format!("STEP {n}/{steps} {what}"));
    step(1, "Check device existence");
    let old_specs = specs_of(ctx, &inst)?;
    step(2, "Check peer consistency");
    let mut moved = inst.clone();
    for d in &mut moved.disks {
        d.nodes = vec![inst.primary_node.clone(), new.uuid.clone()];
        for c in &mut d.children {
            c.nodes = d.nodes.clone();
        }
        if let Some(a) = d.logical_id.as_array_mut() {
            if a.len() == 6 {
                a[0] = json!(inst.primary_node);
                a[1] = json!(new.uuid);
            }
        }
        d.serial_no += 1;
    }
    let new_specs = specs_of(ctx, &moved)?;
    step(3, "Allocate new storage");
    let mut undo = Undo::new(ctx);
    if let Err(e) = create_copies(ctx, &mut undo, &inst, new, &new_specs).await {
        return Err(undo.unwind(e).await);
    }
    step(4, "Changing drbd configuration");
    if let Err(e) = resync(ctx, &inst, pnode, new, &new_specs).await {
        // Back to the old secondary before the new copies go.
        let back = resync(ctx, &inst, pnode, old, &old_specs).await;
        let err = match back {
            Ok(()) => e,
            Err(b) => e.with_note(format!(
                "and the primary could not be pointed back at {}: {}",
                old.name,
                b.message()
            )),
        };
        return Err(undo.unwind(err).await);
    }
    step(5, "Sync devices");
    inst.disks = moved.disks;
    let mut ch = Changes::new();
    ch.instance(inst.clone());
    if let Err(e) = ctx.commit(ch) {
        return Err(undo.unwind(e).await);
    }
    undo.done();
    step(6, "Removing old storage");
    // The disks live on the new node now: what cannot be removed of the
    // old copies fails the job, named, to be removed by hand.
    if old.offline {
        return Err(Error::exec(format!(
            "The disks now live on {}, but node {} is offline: remove the old copies there \
             by hand",
            new.name, old.name
        )));
    }
    let failed = super::instance_storage::remove_disks(ctx, &inst.name, old, &old_specs).await;
    if !failed.is_empty() {
        return Err(Error::exec(format!(
            "The disks now live on {}, but the old copies on node {} must be removed by \
             hand: {}",
            new.name,
            old.name,
            failed.join("; ")
        )));
    }
    Ok(Value::Null)
}

/// `-s`: the secondary's copies of `disks` made again and synced from the
/// primary.
async fn same_secondary(
    ctx: &Ctx,
    inst: &Instance,
    pnode: &Node,
    snode: &Node,
    disks: &[usize],
) -> Result<Value, Error> {
    let specs: Vec<DiskSpec> = specs_of(ctx, inst)?
        .into_iter()
        .filter(|s| disks.contains(&s.index))
        .collect();
    let steps = 3;
    ctx.feedback(format!(
        "STEP 1/{steps} Remove the old storage on {}",
        snode.name
    ));
    // The primary stops replicating first: it must not resume into the
    // new, empty copy as if it were the old one; it stays degraded until
    // step 3 syncs the new copy in full.
    let req = api::DrbdDisconnectNet {
        instance_name: inst.name.clone(),
        disks: specs.clone(),
    };
    ctx.rpc().call(pnode, &req).await.map_err(|e| {
        rpc_error(
            &format!(
                "Can't detach the drbd disks of {} from their peer on node {}",
                inst.name, pnode.name
            ),
            e,
        )
    })?;
    let failed = super::instance_storage::remove_disks(ctx, &inst.name, snode, &specs).await;
    if !failed.is_empty() {
        return Err(Error::exec(format!(
            "Can't remove the old storage on {}: {}",
            snode.name,
            failed.join("; ")
        )));
    }
    ctx.feedback(format!("STEP 2/{steps} Allocate new storage"));
    // The copies are the instance's: a failure leaves the disk degraded,
    // which verify-disks or a new replace-disks repairs.
    let mut undo = Undo::new(ctx);
    create_copies(ctx, &mut undo, inst, snode, &specs).await?;
    undo.done();
    ctx.feedback(format!("STEP 3/{steps} Sync devices"));
    resync(ctx, inst, pnode, snode, &specs).await?;
    Ok(Value::Null)
}
