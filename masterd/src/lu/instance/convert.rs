//! Disk template conversion (`gnt-instance modify -t TEMPLATE [-n NODE]`):
//! new disks of the other template are made on the instance's node(s),
//! the data is copied into them on the primary node (Ganeti's generic
//! conversion, `blockdev_convert`), and the old disks go once the new
//! ones are recorded (and, for `drbd`, synced). Ganeti renames the
//! volumes of a `plain` disk into a `drbd` one's (and back) instead of
//! copying them; here every conversion copies.

use objects::{AdminState, DiskTemplate, Instance};
use rpc::api;
use serde_json::{json, Value};

use crate::config::{timestamp, Changes, ConfigData};
use crate::error::Error;
use crate::lu::common::{check_target_node, disk_spec, expand_node, get_node, rpc_error};
use crate::lu::instance::is_running;
use crate::lu::instance_storage::{
    allocate_ports, check_vg_space, create_disks, disks_and_nodes, drbd_port, new_disk,
    release_ports, remove_disk, shutdown_disks, wait_for_sync, NewDisk, CREATABLE,
};
use crate::lu::ipolicy;
use crate::lu::undo::Undo;
use crate::lu::{inval, wrong_state, Ctx};

/// A conversion asked for.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub target: DiskTemplate,
    /// The new secondary (UUID) of a conversion to `drbd`.
    pub snode: Option<String>,
    pub file_driver: Option<String>,
    pub file_subdir: Option<String>,
    pub wait_for_sync: bool,
}

/// Parses the target template (`check_arguments`).
pub fn target(name: &str, other_disk_changes: bool) -> Result<DiskTemplate, Error> {
    if other_disk_changes {
        return Err(inval(
            "Disk template conversion and other disk changes not supported at the same time",
        ));
    }
    name.parse::<DiskTemplate>()
        .map_err(|_| inval(format!("Invalid disk template '{name}'")))
}

/// The new secondary's UUID (`locks`): the node given, expanded; for a
/// conversion to `drbd` one must be.
pub fn secondary(
    cfg: &ConfigData,
    target: DiskTemplate,
    remote_node: Option<&str>,
) -> Result<Option<String>, Error> {
    match (target, remote_node) {
        (DiskTemplate::Drbd, Some(n)) => Ok(Some(expand_node(cfg, n)?.uuid.clone())),
        (DiskTemplate::Drbd, None) => Err(inval(
            "A conversion to the drbd template needs the new secondary node (-n NODE); \
             choosing it with an iallocator is not supported by ganeti-rs yet",
        )),
        // Ganeti ignores the node for other templates, with a warning.
        _ => Ok(None),
    }
}

/// Ganeti's checks of a conversion (`_PreCheckDiskTemplate`).
pub fn check(cfg: &ConfigData, inst: &Instance, conv: &Conversion) -> Result<(), Error> {
    let t = conv.target;
    if inst.disk_template == DiskTemplate::Diskless {
        return Err(inval(
            "Conversion from the 'diskless' disk template is not supported",
        ));
    }
    if matches!(t, DiskTemplate::Diskless | DiskTemplate::Blockdev) {
        return Err(inval(format!(
            "Conversion to the '{t}' disk template is not supported"
        )));
    }
    if !CREATABLE.contains(&t) {
        return Err(inval(format!(
            "Conversion to the '{t}' disk template is not supported by ganeti-rs"
        )));
    }
    if inst.disk_template == t {
        return Err(inval(format!("Instance already has disk template {t}")));
    }
    if !cfg.cluster.enabled_disk_templates.contains(&t.to_string()) {
        return Err(wrong_state(format!(
            "Disk template '{t}' is not enabled for this cluster (enabled templates: {})",
            cfg.cluster.enabled_disk_templates.join(", ")
        )));
    }
    if t == DiskTemplate::Plain && cfg.cluster.volume_group().is_none() {
        return Err(wrong_state(
            "Disk template conversions to lvm-based instances are not supported by the cluster",
        ));
    }
    if inst.admin_state == AdminState::Up {
        return Err(wrong_state(format!(
            "Instance '{}' is marked to be up, cannot change disk template",
            inst.name
        )));
    }
    if let Some(s) = &conv.snode {
        if *s == inst.primary_node {
            return Err(wrong_state(format!(
                "Given new secondary node {} is the same as the primary node of the instance",
                cfg.nodes[s].name
            )));
        }
        check_target_node(&cfg.nodes[s])?;
    }
    let group = cfg
        .nodes
        .get(&inst.primary_node)
        .and_then(|n| cfg.groups.get(&n.group));
    if let Some(group) = group {
        let policy = ipolicy::group_policy(cfg, group);
        let allowed: Vec<&str> = policy
            .get("disk-templates")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !allowed.contains(&t.as_str()) {
            return Err(wrong_state(format!(
                "Disk template '{t}' is not allowed (allowed templates: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Converts the stopped instance `uuid`'s disks; returns the change.
pub async fn convert(ctx: &Ctx, uuid: &str, conv: &Conversion) -> Result<Value, Error> {
    let mut inst = crate::lu::common::get_instance(ctx, uuid)?;
    let pnode = get_node(ctx, &inst.primary_node)?;
    if is_running(ctx, &inst, &pnode).await? {
        return Err(wrong_state(format!(
            "Instance {} is running, cannot change disk template",
            inst.name
        )));
    }
    let old = inst.disks.clone();
    let old_template = inst.disk_template;
    let (old_specs, old_nodes) = disks_and_nodes(&ctx.config().read(), &inst)?;
    let snode = match &conv.snode {
        Some(u) => Some(get_node(ctx, u)?),
        None => None,
    };
    ctx.feedback(format!(
        "Converting disk template from '{old_template}' to '{}'",
        conv.target
    ));
    // The old disks are shut down (and marked so), as Ganeti's
    // conversion starts.
    for node in &old_nodes {
        shutdown_disks(ctx, &inst.name, node, &old_specs).await;
    }
    if inst.disks_active {
        inst.disks_active = false;
        let mut ch = Changes::new();
        ch.instance(inst.clone());
        ctx.commit(ch)?;
    }
    let mut undo = Undo::new(ctx);
    let mirrored = conv.target == DiskTemplate::Drbd;
    let ports = allocate_ports(ctx, &mut undo, if mirrored { old.len() } else { 0 });
    let ports = match ports {
        Ok(p) => p,
        Err(e) => return Err(undo.unwind(e).await),
    };
    ctx.feedback(format!("Generating new '{}' disk template...", conv.target));
    let mut nodes = vec![pnode.uuid.clone()];
    nodes.extend(snode.iter().map(|s| s.uuid.clone()));
    let now = timestamp();
    let (new, new_specs) = {
        let cfg = ctx.config().read();
        let new: Vec<objects::Disk> = old
            .iter()
            .enumerate()
            .map(|(i, d)| {
                new_disk(
                    &cfg,
                    NewDisk {
                        template: conv.target,
                        instance: &inst.name,
                        index: i,
                        size: d.size,
                        mode: d.mode,
                        name: d.name.clone(),
                        spindles: None,
                        vg: None,
                        metavg: None,
                        nodes: &nodes,
                        port: ports.get(i).copied().unwrap_or_default(),
                        file_driver: conv.file_driver.as_deref(),
                        file_subdir: conv.file_subdir.as_deref(),
                        now,
                    },
                )
            })
            .collect();
        let specs = new
            .iter()
            .enumerate()
            .map(|(i, d)| disk_spec(&cfg, d, i))
            .collect::<Result<Vec<_>, _>>();
        (new, specs)
    };
    let new_specs = match new_specs {
        Ok(s) => s,
        Err(e) => return Err(undo.unwind(e).await),
    };
    for node in snode.iter().chain(std::iter::once(&pnode)) {
        if let Err(e) = check_vg_space(ctx, node, &new).await {
            return Err(undo.unwind(e).await);
        }
    }
    ctx.feedback(format!(
        "Creating new empty disks of type '{}'...",
        conv.target
    ));
    if let Err(e) = create_disks(
        ctx,
        &mut undo,
        &inst.name,
        &pnode,
        snode.as_slice(),
        &new_specs,
    )
    .await
    {
        return Err(undo.unwind(e).await);
    }
    ctx.feedback(format!(
        "Populating the new empty disks of type '{}'...",
        conv.target
    ));
    for (src, dst) in old_specs.iter().zip(&new_specs) {
        ctx.feedback(format!(
            " - copying data from disk {} ({}), size {}M",
            src.index, src.dev_type, src.size
        ));
        let req = api::BlockdevConvert {
            instance_name: inst.name.clone(),
            src: src.clone(),
            dst: dst.clone(),
        };
        if let Err(e) = ctx.rpc().call(&pnode, &req).await {
            let err = rpc_error(
                &format!(
                    "Error while converting the instance's template: could not copy disk {}",
                    src.index
                ),
                e,
            );
            return Err(undo.unwind(err).await);
        }
    }
    ctx.feedback(format!(
        "Detaching old disks ({old_template}) from the instance and adding the new ones ({}) \
         to the cluster config",
        conv.target
    ));
    inst.disks = new;
    inst.disk_template = conv.target;
    let mut ch = Changes::new();
    ch.instance(inst.clone());
    if let Err(e) = ctx.commit(ch) {
        return Err(undo.unwind(e).await);
    }
    undo.done();
    // From here on the new disks hold the data: the old ones go even if
    // the new secondary's copy fails to sync (said at the end).
    let mut problems = Vec::new();
    if conv.target == DiskTemplate::Drbd {
        if conv.wait_for_sync {
            if let Err(e) =
                wait_for_sync(ctx, &inst.name, &pnode, snode.as_slice(), &new_specs).await
            {
                problems.push(format!(
                    "There are some degraded disks for this instance, please cleanup \
                     manually: {}",
                    objects::error_chain(&e)
                ));
            }
        }
        // The instance's disks are inactive, as after Ganeti's conversion.
        for node in snode.iter().chain(std::iter::once(&pnode)) {
            shutdown_disks(ctx, &inst.name, node, &new_specs).await;
        }
    }
    ctx.feedback(format!(
        "Removing old block devices of type '{old_template}'..."
    ));
    for node in &old_nodes {
        for (d, spec) in old.iter().zip(&old_specs) {
            if !d.nodes.contains(&node.uuid) && node.uuid != pnode.uuid {
                continue;
            }
            if let Err(e) = remove_disk(ctx, inst.name.clone(), node.clone(), spec.clone()).await {
                let msg = format!(
                    "Old disk {} could not be removed from node {}: {e}; remove it by hand on \
                     node {}",
                    spec.index, node.name, node.name
                );
                ctx.log_warning(&msg);
                problems.push(msg);
            }
        }
    }
    let old_ports: Vec<u16> = old.iter().filter_map(drbd_port).collect();
    release_ports(ctx, old_ports)
        .await
        .map_err(|e| Error::exec(format!("Cannot give back the old disks' ports: {e}")))?;
    if !problems.is_empty() {
        return Err(Error::exec(problems.join("; ")));
    }
    Ok(json!(["disk_template", conv.target.as_str()]))
}
