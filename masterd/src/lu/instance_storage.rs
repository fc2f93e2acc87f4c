//! Instance disks on the nodes: the helpers of the units that make and
//! remove disks, and the disk units (grow, activate, deactivate).

use std::collections::BTreeMap;

use luxi::opcodes;
use objects::{Disk, DiskTemplate};
use rpc::api;
use serde_json::{json, Value};

use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{LockRequest, Mode};
use crate::lu::common::{
    check_node_online, disk_spec, expand_instance, get_instance, get_node, rpc_error,
};
use crate::lu::instance::{instance_locks, is_running};
use crate::lu::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// The volume group and volume name of a `plain` disk (`[vg, lv]`).
pub fn plain_volume(disk: &Disk) -> Option<(&str, &str)> {
    if disk.dev_type != DiskTemplate::Plain {
        return None;
    }
    let a = disk.logical_id.as_array()?;
    Some((a.first()?.as_str()?, a.get(1)?.as_str()?))
}

/// The volume group and volume that hold a disk's data: a `plain` disk's
/// own, a `drbd` disk's data volume (when it lives on LVM).
pub fn data_volume(disk: &Disk) -> Option<(&str, &str)> {
    match disk.dev_type {
        DiskTemplate::Plain => plain_volume(disk),
        DiskTemplate::Drbd => disk.children.first().and_then(plain_volume),
        _ => None,
    }
}

/// Refuses, with Ganeti's message, when `node` lacks the space in some
/// volume group for the `plain` disks among `disks` (`extra` MiB each
/// when growing, their size when creating: `sizes`).
pub async fn check_vg_space_for(
    ctx: &Ctx,
    node: &objects::Node,
    sizes: &BTreeMap<String, u64>,
) -> Result<(), Error> {
    if sizes.is_empty() {
        return Ok(());
    }
    let req = api::NodeInfo {
        hypervisors: Vec::new(),
        storage: sizes
            .keys()
            .map(|vg| api::StorageUnit {
                kind: DiskTemplate::Plain,
                name: Some(vg.clone()),
            })
            .collect(),
    };
    let info = ctx.rpc().call(node, &req).await.map_err(|e| {
        rpc_error(
            &format!(
                "Cannot get the volume groups' free space on node {}",
                node.name
            ),
            e,
        )
    })?;
    for (vg, need) in sizes {
        let unit = info
            .storage
            .iter()
            .find(|s| s.kind == DiskTemplate::Plain && s.path == *vg);
        if let Some(e) = unit.and_then(|u| u.error.as_deref()) {
            return Err(Error::prereq(
                format!("Cannot use volume group {vg} on node {}: {e}", node.name),
                luxi::ErrorCode::Environ,
            ));
        }
        let free = unit.map_or(0, |s| s.free_mib);
        if *need > free {
            return Err(Error::prereq(
                format!(
                    "Not enough disk space on target node {} vg {vg}: required {need} MiB, \
                     available {free} MiB",
                    node.name
                ),
                luxi::ErrorCode::NoRes,
            ));
        }
    }
    Ok(())
}

/// [`check_vg_space_for`] the logical volumes of `disks` (`plain` disks and
/// the volumes under `drbd` ones) at their sizes.
pub async fn check_vg_space(ctx: &Ctx, node: &objects::Node, disks: &[Disk]) -> Result<(), Error> {
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for d in disks {
        // A mirrored disk's volumes are its children (data and meta).
        for v in std::iter::once(d).chain(&d.children) {
            if let Some((vg, _)) = plain_volume(v) {
                *sizes.entry(vg.to_string()).or_default() += v.size;
            }
        }
    }
    check_vg_space_for(ctx, node, &sizes).await
}

/// Removes `disks` of instance `name` on `node`; returns the failures (each
/// also reported as a warning in the job log).
pub async fn remove_disks(
    ctx: &Ctx,
    name: &str,
    node: &objects::Node,
    disks: &[api::DiskSpec],
) -> Vec<String> {
    let mut failed = Vec::new();
    for d in disks {
        if let Err(e) = ctx
            .rpc()
            .call(
                node,
                &api::BlockdevRemove {
                    instance_name: name.to_string(),
                    disk: d.clone(),
                },
            )
            .await
        {
            let msg = format!(
                "Could not remove disk {} on node {}: {}",
                d.index,
                node.name,
                objects::error_chain(&e)
            );
            ctx.feedback(format!("Warning: {msg}"));
            failed.push(msg);
        }
    }
    failed
}

/// Removes disk `disk` of instance `name` on `node` (an undo step).
pub async fn remove_disk(
    ctx: &Ctx,
    name: String,
    node: objects::Node,
    disk: api::DiskSpec,
) -> Result<(), String> {
    let req = api::BlockdevRemove {
        instance_name: name,
        disk,
    };
    ctx.rpc()
        .call(&node, &req)
        .await
        .map(|_| ())
        .map_err(|e| objects::error_chain(&e))
}

/// The node's view of every disk of `inst`, and its nodes (primary
/// first).
pub fn disks_and_nodes(
    cfg: &ConfigData,
    inst: &objects::Instance,
) -> Result<(Vec<api::DiskSpec>, Vec<objects::Node>), Error> {
    let specs = inst
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| disk_spec(cfg, d, i))
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = inst
        .all_nodes()
        .iter()
        .filter_map(|u| cfg.nodes.get(u).cloned())
        .collect();
    Ok((specs, nodes))
}

/// Disk templates whose disks can grow (Ganeti's `DTS_GROWABLE`, less
/// those ganeti-rs does not have).
const GROWABLE: &[DiskTemplate] = &[
    DiskTemplate::File,
    DiskTemplate::SharedFile,
    DiskTemplate::Plain,
    DiskTemplate::Drbd,
];

fn format_mib(mib: u64) -> String {
    if mib >= 1024 * 1024 {
        format!("{:.1}T", mib as f64 / (1024.0 * 1024.0))
    } else if mib >= 1024 {
        format!("{:.1}G", mib as f64 / 1024.0)
    } else {
        format!("{mib}M")
    }
}

/// The instance a disk unit works on, expanded, with its locks: the
/// instance, and its nodes (`node_mode`).
fn expand_for_disks(
    cfg: &ConfigData,
    name: &str,
    uuid: Option<&str>,
    node_mode: Mode,
) -> Result<(String, LockRequest), Error> {
    let inst = expand_instance(cfg, uuid.unwrap_or(name))?;
    Ok((
        inst.uuid.clone(),
        instance_locks(cfg, &inst.uuid, node_mode),
    ))
}

/// `OP_INSTANCE_GROW_DISK`: grows a disk on every node that holds it.
pub struct GrowDisk {
    op: opcodes::InstanceGrowDisk,
    uuid: String,
    /// MiB to add, and the size after.
    delta: u64,
    target: u64,
}

impl GrowDisk {
    pub fn new(op: opcodes::InstanceGrowDisk) -> Self {
        GrowDisk {
            op,
            uuid: String::new(),
            delta: 0,
            target: 0,
        }
    }
}

impl LogicalUnit for GrowDisk {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let (uuid, req) = expand_for_disks(
            cfg,
            &self.op.instance_name,
            self.op.instance_uuid.as_deref(),
            Mode::Exclusive,
        )?;
        self.uuid = uuid;
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        for n in inst.all_nodes() {
            check_node_online(&cfg.nodes[&n])?;
        }
        let disk = inst
            .disks
            .get(self.op.disk)
            .ok_or_else(|| inval(format!("Invalid disk index: {}", self.op.disk)))?;
        if !GROWABLE.contains(&disk.dev_type) {
            return Err(inval(format!(
                "Instance's disk layout {} does not support growing",
                disk.dev_type
            )));
        }
        if self.op.absolute {
            if self.op.amount < disk.size {
                return Err(wrong_state(format!(
                    "Requested size ({}) is smaller than current disk size ({})",
                    format_mib(self.op.amount),
                    format_mib(disk.size)
                )));
            }
            self.target = self.op.amount;
            self.delta = self.op.amount - disk.size;
        } else {
            self.delta = self.op.amount;
            self.target = disk.size + self.op.amount;
        }
        if self.op.ignore_ipolicy {
            return Err(inval(
                "Parameter 'ignore_ipolicy' of OP_INSTANCE_GROW_DISK is not supported by \
                 ganeti-rs yet (no instance policy is enforced)",
            ));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let index = self.op.disk;
            let (spec, nodes) = {
                let cfg = ctx.config().read();
                let disk = &inst.disks[index];
                let nodes: Vec<objects::Node> =
                    disk.nodes.iter().map(|n| cfg.nodes[n].clone()).collect();
                (disk_spec(&cfg, disk, index)?, nodes)
            };
            for node in &nodes {
                let mut sizes = BTreeMap::new();
                if let Some((vg, _)) = data_volume(&inst.disks[index]) {
                    sizes.insert(vg.to_string(), self.delta);
                }
                check_vg_space_for(ctx, node, &sizes).await?;
            }
            ctx.feedback(format!(
                "Growing disk {index} of instance '{}' by {} to {}",
                inst.name,
                format_mib(self.delta),
                format_mib(self.target)
            ));
            if self.delta == 0 {
                return Ok(Value::Null);
            }
            // A dry run everywhere first, so that a node that cannot grow
            // it stops the operation before any disk changed.
            for dry_run in [true, false] {
                for node in &nodes {
                    let req = api::BlockdevGrow {
                        instance_name: inst.name.clone(),
                        disk: spec.clone(),
                        amount: self.delta,
                        dry_run,
                    };
                    ctx.rpc().call(node, &req).await.map_err(|e| {
                        let what = if dry_run {
                            "Dry-run grow request failed to node"
                        } else {
                            "Grow request failed to node"
                        };
                        rpc_error(&format!("{what} {}", node.name), e)
                    })?;
                }
            }
            inst.disks[index].size = self.target;
            inst.disks[index].serial_no += 1;
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            ctx.commit(ch)?;
            if inst.admin_state == objects::AdminState::Up {
                tell_running_guest(ctx, &inst, index, self.target).await;
            }
            Ok(Value::Null)
        })
    }
}

/// Tells the running instance's hypervisor that disk `index` grew to
/// `size_mib`, so that the guest sees it now (a disk served over NBD, as
/// `drbd` disks are, cannot grow under a running kvm guest); a failure
/// is a warning: the disk did grow, and the guest sees it at its next
/// start.
async fn tell_running_guest(ctx: &Ctx, inst: &objects::Instance, index: usize, size_mib: u64) {
    let (spec, pnode) = {
        let cfg = ctx.config().read();
        let spec = super::common::instance_spec(&cfg, inst);
        (spec, cfg.nodes.get(&inst.primary_node).cloned())
    };
    let (Ok(spec), Some(pnode)) = (spec, pnode) else {
        return;
    };
    let req = api::InstanceDiskResized {
        instance: spec,
        index,
        size_mib,
    };
    if let Err(e) = ctx.rpc().call(&pnode, &req).await {
        ctx.feedback(format!(
            " - WARNING: the running instance {} sees the new size of disk {index} only once \
             it is restarted: {}",
            inst.name,
            objects::error_chain(&e)
        ));
    }
}

/// `OP_INSTANCE_ACTIVATE_DISKS`: assembles the disks on their nodes;
/// returns `[[node, iv_name, path], ...]` for the primary's devices.
pub struct ActivateDisks {
    op: opcodes::InstanceActivateDisks,
    uuid: String,
}

impl ActivateDisks {
    pub fn new(op: opcodes::InstanceActivateDisks) -> Self {
        ActivateDisks {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for ActivateDisks {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let (uuid, req) = expand_for_disks(
            cfg,
            &self.op.instance_name,
            self.op.instance_uuid.as_deref(),
            Mode::Shared,
        )?;
        self.uuid = uuid;
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        check_node_online(&cfg.nodes[&inst.primary_node])?;
        if self.op.ignore_size {
            return Err(inval(
                "Parameter 'ignore_size' of OP_INSTANCE_ACTIVATE_DISKS is not supported by \
                 ganeti-rs yet",
            ));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let (pnode, snodes, specs) = {
                let cfg = ctx.config().read();
                let specs = inst
                    .disks
                    .iter()
                    .enumerate()
                    .map(|(i, d)| disk_spec(&cfg, d, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let snodes: Vec<objects::Node> = inst
                    .secondary_nodes()
                    .iter()
                    .filter_map(|u| cfg.nodes.get(u).cloned())
                    .collect();
                (cfg.nodes[&inst.primary_node].clone(), snodes, specs)
            };
            // The secondaries first, then the primary, as Ganeti: a
            // mirrored disk's primary then finds its peer ready.
            let mut out = Vec::new();
            let mut done: Vec<(objects::Node, api::DiskSpec)> = Vec::new();
            let order = snodes
                .iter()
                .map(|n| (n, false))
                .chain(std::iter::once((&pnode, true)));
            for (node, on_primary) in order {
                for (d, spec) in inst.disks.iter().zip(&specs) {
                    if !d.nodes.contains(&node.uuid) {
                        continue;
                    }
                    let req = api::BlockdevAssemble {
                        instance_name: inst.name.clone(),
                        disk: spec.clone(),
                        on_primary,
                    };
                    match ctx.rpc().call(node, &req).await {
                        Ok(att) if on_primary => {
                            let path = att
                                .path
                                .map(|p| p.display().to_string())
                                .or(att.uri)
                                .unwrap_or_default();
                            out.push(json!([node.name, d.iv_name, path]));
                            done.push((node.clone(), spec.clone()));
                        }
                        Ok(_) => done.push((node.clone(), spec.clone())),
                        Err(e) => {
                            // What was assembled is shut down again: the
                            // disks are all active or none is.
                            for (n, sp) in done.iter().rev() {
                                shutdown_disks(ctx, &inst.name, n, std::slice::from_ref(sp)).await;
                            }
                            return Err(Error::rpc(
                                format!(
                                    "Cannot activate block devices: disk {} of instance {} \
                                     on node {}",
                                    spec.index, inst.name, node.name
                                ),
                                e,
                            ));
                        }
                    }
                }
            }
            if self.op.wait_for_sync {
                let mirrored: Vec<api::DiskSpec> = specs
                    .iter()
                    .filter(|s| s.dev_type == DiskTemplate::Drbd)
                    .cloned()
                    .collect();
                if !mirrored.is_empty() {
                    wait_for_sync(ctx, &inst.name, &pnode, &snodes, &mirrored).await?;
                }
            }
            if !inst.disks_active {
                inst.disks_active = true;
                let mut ch = Changes::new();
                ch.instance(inst);
                ctx.commit(ch)?;
            }
            Ok(Value::Array(out))
        })
    }
}

/// Shuts `disks` of instance `name` down on `node`; failures are warnings.
pub async fn shutdown_disks(ctx: &Ctx, name: &str, node: &objects::Node, disks: &[api::DiskSpec]) {
    for d in disks {
        let req = api::BlockdevShutdown {
            instance_name: name.to_string(),
            disk: d.clone(),
        };
        if let Err(e) = ctx.rpc().call(node, &req).await {
            ctx.feedback(format!(
                "Warning: Could not shut down disk {} on node {}: {}",
                d.index,
                node.name,
                objects::error_chain(&e)
            ));
        }
    }
}

/// `OP_INSTANCE_DEACTIVATE_DISKS`: shuts the disks down (the data stays).
pub struct DeactivateDisks {
    op: opcodes::InstanceDeactivateDisks,
    uuid: String,
}

impl DeactivateDisks {
    pub fn new(op: opcodes::InstanceDeactivateDisks) -> Self {
        DeactivateDisks {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for DeactivateDisks {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let (uuid, req) = expand_for_disks(
            cfg,
            &self.op.instance_name,
            self.op.instance_uuid.as_deref(),
            Mode::Shared,
        )?;
        self.uuid = uuid;
        Ok(req)
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            if !self.op.force && !pnode.offline && is_running(ctx, &inst, &pnode).await? {
                return Err(wrong_state(format!(
                    "Instance {} is running, can't shutdown block devices.",
                    inst.name
                )));
            }
            let (specs, nodes) = disks_and_nodes(&ctx.config().read(), &inst)?;
            // The primary first: its guest-facing side goes before the
            // copies it replicates to.
            for node in nodes.iter().filter(|n| !n.offline) {
                let here: Vec<api::DiskSpec> = inst
                    .disks
                    .iter()
                    .zip(&specs)
                    .filter(|(d, _)| d.nodes.contains(&node.uuid))
                    .map(|(_, s)| s.clone())
                    .collect();
                shutdown_disks(ctx, &inst.name, node, &here).await;
            }
            if inst.disks_active {
                inst.disks_active = false;
                let mut ch = Changes::new();
                ch.instance(inst);
                ctx.commit(ch)?;
            }
            Ok(Value::Null)
        })
    }
}

/// Ganeti's `DRBD_META_SIZE`: the meta volume of a `drbd` disk, MiB.
pub const DRBD_META_SIZE: u64 = 128;

/// What a new `drbd` disk is made of.
pub struct DrbdDiskDef {
    pub uuid: String,
    pub index: usize,
    /// MiB.
    pub size: u64,
    pub mode: objects::DiskMode,
    pub name: Option<String>,
    /// Primary, then secondary (UUIDs).
    pub nodes: [String; 2],
    pub port: u16,
    /// The volume groups of the data and meta volumes; `None` when the
    /// cluster has no volume group (the nodes then keep both in files).
    pub vgs: Option<(String, String)>,
    pub now: objects::Timestamp,
}

/// A new `drbd` disk as Ganeti records it: logical id `[node A, node B,
/// port, minor A, minor B, secret]` (no kernel minors and no shared
/// secret here: 0 and the cluster's certificates), and its data and meta
/// volumes as `plain` children when it lives on LVM.
pub fn drbd_disk(d: DrbdDiskDef) -> Disk {
    let volume = |vg: &str, suffix: &str, size: u64| Disk {
        uuid: objects::ids::new_uuid(),
        name: None,
        dev_type: DiskTemplate::Plain,
        logical_id: json!([
            vg,
            format!("{}.disk{}_{suffix}", objects::ids::new_uuid(), d.index)
        ]),
        nodes: d.nodes.to_vec(),
        iv_name: String::new(),
        size,
        mode: objects::DiskMode::Rw,
        params: Default::default(),
        spindles: None,
        children: Vec::new(),
        serial_no: 1,
        ctime: d.now,
        mtime: d.now,
    };
    let children = match &d.vgs {
        Some((vg, metavg)) => vec![
            volume(vg, "data", d.size),
            volume(metavg, "meta", DRBD_META_SIZE),
        ],
        None => Vec::new(),
    };
    Disk {
        logical_id: json!([d.nodes[0], d.nodes[1], d.port, 0, 0, ""]),
        uuid: d.uuid,
        name: d.name,
        dev_type: DiskTemplate::Drbd,
        nodes: d.nodes.to_vec(),
        iv_name: format!("disk/{}", d.index),
        size: d.size,
        mode: d.mode,
        params: Default::default(),
        spindles: None,
        children,
        serial_no: 1,
        ctime: d.now,
        mtime: d.now,
    }
}

/// What a new disk of an instance is made of (Ganeti's
/// `GenerateDiskTemplate`, for one disk).
pub struct NewDisk<'a> {
    pub template: DiskTemplate,
    pub instance: &'a str,
    pub index: usize,
    /// MiB.
    pub size: u64,
    pub mode: objects::DiskMode,
    pub name: Option<String>,
    pub spindles: Option<u64>,
    /// Volume groups of the data and meta volumes; the cluster's when
    /// absent.
    pub vg: Option<&'a str>,
    pub metavg: Option<&'a str>,
    /// The primary node, then (`drbd`) the secondary (UUIDs).
    pub nodes: &'a [String],
    /// `drbd`: its replication port.
    pub port: u16,
    /// File disks: the driver (`loop` when absent) and the directory
    /// below the template's storage directory, if any.
    pub file_driver: Option<&'a str>,
    pub file_subdir: Option<&'a str>,
    pub now: objects::Timestamp,
}

/// The storage directory of file disks of `template` (`file` or
/// `sharedfile`), as the configuration names it.
pub fn file_storage_dir(cfg: &ConfigData, template: DiskTemplate) -> String {
    match template {
        DiskTemplate::SharedFile if !cfg.cluster.shared_file_storage_dir.is_empty() => {
            cfg.cluster.shared_file_storage_dir.clone()
        }
        DiskTemplate::SharedFile => "/srv/ganeti/shared-file-storage".to_string(),
        _ if !cfg.cluster.file_storage_dir.is_empty() => cfg.cluster.file_storage_dir.clone(),
        _ => "/srv/ganeti/file-storage".to_string(),
    }
}

/// A new disk as Ganeti records it: a `plain` volume named after a new
/// unique id, a file below the template's storage directory, or a `drbd`
/// disk (see [`drbd_disk`]).
pub fn new_disk(cfg: &ConfigData, d: NewDisk<'_>) -> Disk {
    let uuid = objects::ids::new_uuid();
    let cluster_vg = cfg.cluster.volume_group_name.as_str();
    let vg = d.vg.unwrap_or(cluster_vg);
    if d.template == DiskTemplate::Drbd {
        let secondary = d.nodes.get(1).cloned().unwrap_or_default();
        return drbd_disk(DrbdDiskDef {
            uuid,
            index: d.index,
            size: d.size,
            mode: d.mode,
            name: d.name,
            nodes: [d.nodes[0].clone(), secondary],
            port: d.port,
            vgs: (!cluster_vg.is_empty())
                .then(|| (vg.to_string(), d.metavg.unwrap_or(vg).to_string())),
            now: d.now,
        });
    }
    let logical_id = match d.template {
        DiskTemplate::Plain => json!([vg, format!("{}.disk{}", objects::ids::new_uuid(), d.index)]),
        _ => {
            let dir = file_storage_dir(cfg, d.template);
            let dir = d.file_subdir.map_or(dir.clone(), |sub| {
                format!("{dir}/{}", sub.trim_start_matches('/'))
            });
            json!([
                d.file_driver.unwrap_or("loop"),
                format!("{dir}/{}/{uuid}.{}.disk{}", d.instance, d.template, d.index)
            ])
        }
    };
    Disk {
        logical_id,
        uuid,
        name: d.name,
        dev_type: d.template,
        nodes: vec![d.nodes[0].clone()],
        iv_name: format!("disk/{}", d.index),
        size: d.size,
        mode: d.mode,
        params: Default::default(),
        spindles: d.spindles,
        children: Vec::new(),
        serial_no: 1,
        ctime: d.now,
        mtime: d.now,
    }
}

/// The disk templates whose disks ganeti-rs makes (at create, `--disk
/// add` and conversion).
pub const CREATABLE: &[DiskTemplate] = &[
    DiskTemplate::File,
    DiskTemplate::SharedFile,
    DiskTemplate::Plain,
    DiskTemplate::Drbd,
];

/// Makes the disks `specs` of instance `instance` on its nodes: the
/// secondaries' copies first, then the primary's, as Ganeti does. Each
/// disk made is recorded in `undo` for removal; the caller unwinds it on
/// failure.
pub async fn create_disks<'a>(
    ctx: &'a Ctx,
    undo: &mut crate::lu::undo::Undo<'a>,
    instance: &str,
    pnode: &objects::Node,
    snodes: &[objects::Node],
    specs: &[api::DiskSpec],
) -> Result<(), Error> {
    let order = snodes
        .iter()
        .map(|n| (n, false))
        .chain(std::iter::once((pnode, true)));
    for (node, on_primary) in order {
        for spec in specs {
            let req = api::BlockdevCreate {
                instance_name: instance.to_string(),
                disk: spec.clone(),
                size: None,
                on_primary,
            };
            if let Err(e) = ctx.rpc().call(node, &req).await {
                return Err(rpc_error(
                    &format!(
                        "Can't create block device {} on node {}",
                        spec.index, node.name
                    ),
                    e,
                ));
            }
            undo.push(
                format!("remove disk {} on node {}", spec.index, node.name),
                remove_disk(ctx, instance.to_string(), node.clone(), spec.clone()),
            );
        }
    }
    Ok(())
}

/// The replication port of a `drbd` disk.
pub fn drbd_port(disk: &Disk) -> Option<u16> {
    if disk.dev_type != DiskTemplate::Drbd {
        return None;
    }
    disk.logical_id
        .get(2)
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
}

/// Takes `count` replication ports from the cluster's pool, each recorded
/// in `undo` to be given back.
pub fn allocate_ports<'a>(
    ctx: &'a Ctx,
    undo: &mut crate::lu::undo::Undo<'a>,
    count: usize,
) -> Result<Vec<u16>, Error> {
    let mut ports = Vec::new();
    for _ in 0..count {
        let p = ctx.config().allocate_port().map_err(Error::Config)?;
        ports.push(p);
        undo.push(
            format!("give back replication port {p}"),
            release_ports(ctx, vec![p]),
        );
    }
    Ok(ports)
}

/// Gives replication ports back (an undo step, and after a removal).
pub async fn release_ports(ctx: &Ctx, ports: Vec<u16>) -> Result<(), String> {
    ctx.config()
        .release_ports(&ports)
        .map_err(|e| objects::error_chain(&e))
}

/// How long a disk may stay degraded without syncing before the wait
/// gives up (Ganeti retries 10 times, a second apart).
const DEGRADED_RETRIES: u32 = 10;

/// Waits until the mirrored `disks` on their primary `node` are in sync,
/// reporting progress in the job log as Ganeti's `WaitForSync` does;
/// then until each of the `secondaries` has connected back to it (see
/// [`wait_for_secondaries`]).
pub async fn wait_for_sync(
    ctx: &Ctx,
    instance: &str,
    node: &objects::Node,
    secondaries: &[objects::Node],
    disks: &[api::DiskSpec],
) -> Result<(), Error> {
    wait_for_primary(ctx, instance, node, disks).await?;
    wait_for_secondaries(ctx, instance, secondaries, disks).await;
    Ok(())
}

/// How long a secondary may take to connect back to its primary once
/// its copy is whole (its node's supervisor does so within a second).
const SECONDARY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until the copies on `secondaries` are not degraded: a secondary
/// connects back to its primary (for live migration) only once the
/// primary's sync into it has ended. One still degraded after
/// [`SECONDARY_WAIT`] is reported, not failed: the primary's copy is in
/// sync, and the secondary's node connects when it can.
async fn wait_for_secondaries(
    ctx: &Ctx,
    instance: &str,
    secondaries: &[objects::Node],
    disks: &[api::DiskSpec],
) {
    let req = api::BlockdevGetMirrorStatus {
        instance_name: instance.to_string(),
        disks: disks.to_vec(),
    };
    let deadline = std::time::Instant::now() + SECONDARY_WAIT;
    for node in secondaries {
        loop {
            let problem = match ctx.rpc().call(node, &req).await {
                Ok(status) => disks.iter().zip(&status).find_map(|(d, st)| match st {
                    Some(st) if !st.is_degraded => None,
                    Some(st) => Some(format!(
                        "disk/{} is degraded{}",
                        d.index,
                        st.drbd
                            .as_ref()
                            .and_then(|x| x.problem.as_deref())
                            .map(|p| format!(" ({p})"))
                            .unwrap_or_default()
                    )),
                    None => Some(format!("disk/{} is missing", d.index)),
                }),
                Err(e) => {
                    ctx.feedback(format!(
                        " - WARNING: cannot get the disk status on secondary node {}: {}",
                        node.name,
                        objects::error_chain(&e)
                    ));
                    break;
                }
            };
            let Some(problem) = problem else { break };
            if std::time::Instant::now() >= deadline {
                ctx.feedback(format!(
                    " - WARNING: on secondary node {}: {problem}",
                    node.name
                ));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// The first half of [`wait_for_sync`]: the primary's side.
async fn wait_for_primary(
    ctx: &Ctx,
    instance: &str,
    node: &objects::Node,
    disks: &[api::DiskSpec],
) -> Result<(), Error> {
    ctx.feedback(format!("* Waiting for instance {instance} to sync disks"));
    let req = api::BlockdevGetMirrorStatus {
        instance_name: instance.to_string(),
        disks: disks.to_vec(),
    };
    let mut degraded_tries = 0;
    loop {
        let status =
            ctx.rpc().call(node, &req).await.map_err(|e| {
                Error::rpc(format!("Can't get any data from node {}", node.name), e)
            })?;
        let mut syncing = false;
        let mut degraded = false;
        for (d, st) in disks.iter().zip(&status) {
            let Some(st) = st else {
                return Err(Error::exec(format!(
                    "Can't compute data for node {}/disk/{}",
                    node.name, d.index
                )));
            };
            if let Some(pct) = st.sync_percent {
                syncing = true;
                let left = match st.estimated_time {
                    Some(t) => format!("{t} estimated seconds remaining"),
                    None => "no time estimate".to_string(),
                };
                ctx.feedback(format!(
                    "- device disk/{}: {pct:5.2}% done, {left}",
                    d.index
                ));
            }
            degraded |= st.is_degraded && st.sync_percent.is_none();
        }
        if !syncing && !degraded {
            ctx.feedback(format!("Instance {instance}'s disks are in sync"));
            return Ok(());
        }
        if !syncing {
            degraded_tries += 1;
            if degraded_tries > DEGRADED_RETRIES {
                return Err(Error::exec(format!(
                    "There are some degraded disks for this instance ({instance})"
                )));
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
