//! Live migration of an instance between two nodes:
//! source `migration_info` → target `accept_instance` → source
//! `migrate_instance` (progress polled into the job log) → config commit →
//! target and source finalize. A failure on the way finalizes both sides
//! as failed, which leaves the instance running on the source only.

use std::time::Duration;

use crate::error::Error;
use luxi::opcodes;
use objects::error_chain;
use objects::{AdminState, DiskTemplate, Instance};
use rpc::api;
use serde_json::Value;

use crate::config::{Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{
    be_params, check_node_online, check_target_node, expand_instance, expand_node, get_instance,
    get_node, instance_spec, rpc_error,
};
use crate::lu::drbd;
use crate::lu::instance::*;
use crate::lu::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// Migrates instance `uuid` to node `target_uuid`.
pub async fn migrate(
    ctx: &Ctx,
    uuid: &str,
    target_uuid: &str,
    op: &opcodes::InstanceMigrate,
) -> Result<Value, Error> {
    let mut inst: Instance = get_instance(ctx, uuid)?;
    let source = get_node(ctx, &inst.primary_node)?;
    let target = get_node(ctx, target_uuid)?;
    let hvparams = ctx.config().read().cluster.fill_hvparams(&inst);
    let live = match (op.live, op.mode.as_deref()) {
        (Some(l), _) => l,
        (None, Some(m)) => m == "live",
        (None, None) => hvparams.get("migration_mode").and_then(Value::as_str) != Some("non-live"),
    };
    let spec = instance_spec(&ctx.config().read(), &inst)?;
    // The three questions go out at once: whether the source runs it, the
    // target's free memory, and the source's migration data (read-only).
    let info_req = api::InstanceInfo {
        instance: inst.name.clone(),
        hypervisor: inst.hypervisor.to_string(),
        hvparams: hvparams.clone(),
    };
    let node_req = api::NodeInfo {
        hypervisors: vec![(inst.hypervisor.to_string(), hvparams.clone())],
        storage: vec![],
    };
    let mig_req = api::MigrationInfo {
        instance: spec.clone(),
    };
    let (running, info, migration_info) = tokio::join!(
        ctx.rpc().call(&source, &info_req),
        ctx.rpc().call(&target, &node_req),
        ctx.rpc().call(&source, &mig_req),
    );
    let running = running
        .map_err(|e| rpc_error(&format!("Can't contact node {}", source.name), e))?
        .is_some();
    if !running {
        if !op.allow_failover {
            return Err(wrong_state(format!(
                "Instance {} is not running on its primary node {}, cannot migrate \
                 (use failover instead)",
                inst.name, source.name
            )));
        }
        ctx.feedback("Instance is not running, failing over instead");
        inst.set_primary(&target.uuid);
        let mut ch = Changes::new();
        ch.instance(inst);
        ctx.commit(ch)?;
        return Ok(Value::Null);
    }
    ctx.feedback(format!("Migrating instance {}", inst.name));
    let mirrored = drbd::internally_mirrored(&inst);
    if mirrored {
        drbd::check_consistency(ctx, &inst.name, &target, &spec.disks).await?;
    } else {
        // Disks every node reaches are consistent by construction.
        ctx.feedback("* checking disk consistency between source and target");
    }
    let info =
        info.map_err(|e| rpc_error(&format!("Can't get data from node {}", target.name), e))?;
    let free = info.hypervisors.first().map_or(0, |h| h.info.memory_free);
    if free < spec.beparams.min_memory() {
        return Err(Error::prereq(
            format!(
                "Not enough memory on target node {}: needed {} MiB, available {free} MiB",
                target.name,
                spec.beparams.min_memory()
            ),
            luxi::error::ErrorCode::NoRes,
        ));
    }
    // Mirrored disks: the target's copy must be whole, and both copies
    // take writes while the guest moves.
    let both = [source.clone(), target.clone()];
    let migration_info =
        migration_info.map_err(|e| rpc_error("Failed to gather migration information", e))?;
    if mirrored {
        drbd::attach_net(ctx, &inst.name, &both, &spec.disks, &source, true).await?;
        drbd::wait_until_sync(ctx, &inst.name, &both, &spec.disks).await?;
    } else {
        shared_disks_step(
            ctx,
            &format!("closing instance disks on node {}", target.name),
        );
        for node in &both {
            shared_disks_step(
                ctx,
                &format!(
                    "opening instance disks on node {} in shared mode",
                    node.name
                ),
            );
        }
    }
    ctx.feedback(format!(
        "* preparing {} to accept the instance",
        target.name
    ));
    ctx.rpc()
        .call(
            &target,
            &api::AcceptInstance {
                instance: spec.clone(),
                info: migration_info.clone(),
                target: target.primary_ip.clone(),
            },
        )
        .await
        .map_err(|e| {
            rpc_error(
                &format!("Target node {} cannot accept the instance", target.name),
                e,
            )
        })?;
    let cluster_name = ctx.config().read().cluster.cluster_name.clone();
    let send_req = api::MigrateInstance {
        cluster_name,
        instance: spec.clone(),
        target: target.primary_ip.clone(),
        live,
    };
    ctx.feedback(format!("* migrating instance to {}", target.name));
    ctx.feedback("* starting memory transfer");
    let send = ctx.rpc().call(&source, &send_req);
    tokio::pin!(send);
    let mut last_pct = None;
    let sent = loop {
        tokio::select! {
            r = &mut send => break r,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Ok(st) = ctx.rpc().call(&source, &api::GetMigrationStatus { instance: spec.clone() }).await {
                    if let (Some(done), Some(total)) = (st.transferred_ram, st.total_ram) {
                        if total > 0 {
                            let pct = (done as f64 * 100.0 / total as f64).min(100.0);
                            let shown = format!("{pct:.2}");
                            if last_pct.as_ref() != Some(&shown) {
                                ctx.feedback(format!("* memory transfer progress: {shown} %"));
                                last_pct = Some(shown);
                            }
                        }
                    }
                }
            }
        }
    };
    if let Err(e) = sent {
        let msg = error_chain(&e);
        ctx.feedback(format!("Migration failed, aborting: {msg}"));
        for failure in abort(ctx, &spec, &migration_info, &source, &[target], live).await {
            ctx.feedback(format!(
                "Warning: could not clean up after the migration: {failure}"
            ));
        }
        return Err(Error::exec(format!(
            "Could not migrate instance {}: {msg}",
            inst.name
        )));
    }
    ctx.feedback("* memory transfer complete");
    // QEMU's own figures, before the source process goes.
    if let Ok(st) = ctx
        .rpc()
        .call(
            &source,
            &api::GetMigrationStatus {
                instance: spec.clone(),
            },
        )
        .await
    {
        if let (Some(total), Some(down)) = (st.total_time_ms, st.downtime_ms) {
            let mib = st.transferred_ram.map_or(0, |b| b >> 20);
            ctx.feedback(format!(
                "* migration completed: total time {total} ms, downtime {down} ms, \
                 {mib} MiB transferred"
            ));
        }
    }
    inst.set_primary(&target.uuid);
    let mut ch = Changes::new();
    ch.instance(inst.clone());
    ctx.commit(ch)?;
    // QEMU's migration completed: the target holds the instance, so the
    // source's copy goes whatever the target's finalization says (a guest
    // that reset on the way stays stopped on the target, see the kvm
    // hypervisor's reset guard).
    let finalized = ctx
        .rpc()
        .call(
            &target,
            &api::FinalizeMigrationDst {
                instance: spec.clone(),
                info: migration_info,
                success: true,
            },
        )
        .await;
    if let Err(e) = ctx
        .rpc()
        .call(
            &source,
            &api::FinalizeMigrationSrc {
                instance: spec.clone(),
                success: true,
                live,
            },
        )
        .await
    {
        ctx.feedback(format!(
            "Warning: could not finalize the migration on the source node {}: {}; \
             stopping the instance's copy there",
            source.name,
            error_chain(&e)
        ));
        // The source's copy must not outlive the migration.
        let stop = api::InstanceShutdown {
            instance: spec.clone(),
            timeout_secs: 0,
        };
        if let Err(e) = ctx.rpc().call(&source, &stop).await {
            return Err(rpc_error(
                &format!(
                    "The instance now runs on {}, but its copy on the source node {} \
                     could be neither finalized nor stopped; stop it there",
                    target.name, source.name
                ),
                e,
            ));
        }
    }
    finalized.map_err(|e| {
        rpc_error(
            &format!("Could not finalize the migration on {}", target.name),
            e,
        )
    })?;
    if mirrored {
        // The new primary's copy is the one a later resync copies from.
        drbd::wait_until_sync(ctx, &inst.name, &both, &spec.disks).await?;
        drbd::attach_net(ctx, &inst.name, &both, &spec.disks, &target, false).await?;
        drbd::wait_until_sync(ctx, &inst.name, &both, &spec.disks).await?;
    } else {
        shared_disks_step(
            ctx,
            &format!("closing instance disks on node {}", source.name),
        );
        shared_disks_step(
            ctx,
            &format!(
                "opening instance disks on node {} in exclusive mode",
                target.name
            ),
        );
    }
    ctx.feedback("* done");
    Ok(Value::Null)
}

/// Reports a step of Ganeti's that opens or closes the disks of an
/// instance whose disks every node reaches (`diskless`, `sharedfile`):
/// for these, opening and closing have nothing to do on the node (Ganeti's
/// own `blockdev_open`/`blockdev_close` are no-ops for them), so the step
/// is only the line in the job log, kept so that the log reads as
/// Ganeti's.
fn shared_disks_step(ctx: &Ctx, step: &str) {
    ctx.feedback(format!("* {step}"));
}

/// The online nodes that run instance `inst` (by name), asked in parallel.
async fn find_locations(ctx: &Ctx, inst: &Instance) -> Result<Vec<objects::Node>, Error> {
    ctx.feedback(
        "* checking where the instance actually runs (if this hangs, the hypervisor might \
         be in a bad state)",
    );
    let nodes: Vec<objects::Node> = ctx
        .config()
        .read()
        .nodes
        .values()
        .filter(|n| !n.offline)
        .cloned()
        .collect();
    let req = api::InstanceList {
        hypervisors: vec![inst.hypervisor.to_string()],
    };
    let answers = ctx.rpc().call_many(&nodes, &req).await;
    let mut found = Vec::new();
    for (node, answer) in nodes.into_iter().zip(answers) {
        let names =
            answer.map_err(|e| rpc_error(&format!("Can't contact node {}", node.name), e))?;
        if names.contains(&inst.name) {
            found.push(node);
        }
    }
    Ok(found)
}

/// `gnt-instance migrate --cleanup`: after a migration that was cut off
/// (master restart, node failure), finds where the instance really runs,
/// aborts a half-done transfer (running on two nodes: the target copy is
/// dropped, the source resumed) and points the config at the node that
/// runs it.
pub async fn cleanup(ctx: &Ctx, uuid: &str, target_uuid: Option<&str>) -> Result<Value, Error> {
    let mut inst: Instance = get_instance(ctx, uuid)?;
    let source = get_node(ctx, &inst.primary_node)?;
    let mut locations = find_locations(ctx, &inst).await?;
    let elsewhere = |locs: &[objects::Node]| -> Vec<objects::Node> {
        locs.iter()
            .filter(|n| n.uuid != source.uuid && target_uuid.is_none_or(|t| t == n.uuid))
            .cloned()
            .collect()
    };
    let on_source = |locs: &[objects::Node]| locs.iter().any(|n| n.uuid == source.uuid);
    if on_source(&locations) && !elsewhere(&locations).is_empty() {
        ctx.feedback("Trying to cleanup after failed migration");
        let spec = instance_spec(&ctx.config().read(), &inst)?;
        let info = ctx
            .rpc()
            .call(
                &source,
                &api::MigrationInfo {
                    instance: spec.clone(),
                },
            )
            .await
            .map_err(|e| {
                rpc_error(
                    &format!(
                        "Failed fetching source migration information from {}",
                        source.name
                    ),
                    e,
                )
            })?;
        let failures = abort(ctx, &spec, &info, &source, &elsewhere(&locations), true).await;
        if !failures.is_empty() {
            return Err(Error::exec(format!(
                "Instance migration cleanup failed: {}",
                failures.join(", ")
            )));
        }
        locations = find_locations(ctx, &inst).await?;
    }
    let others = elsewhere(&locations);
    let on_src = on_source(&locations);
    if on_src && !others.is_empty() {
        return Err(Error::exec(
            "Instance seems to be running on two nodes, or the hypervisor is confused; \
             you will have to ensure manually that it runs only on one and restart this \
             operation",
        ));
    }
    if on_src {
        ctx.feedback(format!(
            "* instance confirmed to be running on its primary node ({})",
            source.name
        ));
        ctx.feedback("* done");
        return Ok(Value::Null);
    }
    let target = match others.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::exec(
                "Instance does not seem to be running at all; in this case it's safer to \
                 repair by running 'gnt-instance stop' to ensure disk shutdown, and then \
                 restarting it",
            ))
        }
        many => {
            let names: Vec<&str> = many.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::exec(format!(
                "Instance seems to be running on several nodes ({}); you will have to \
                 ensure manually that it runs only on one and restart this operation",
                names.join(", ")
            )));
        }
    };
    ctx.feedback(format!(
        "* instance running on secondary node ({}), updating config",
        target.name
    ));
    inst.set_primary(&target.uuid);
    let mut ch = Changes::new();
    ch.instance(inst);
    ctx.commit(ch)?;
    ctx.feedback("* done");
    Ok(Value::Null)
}

/// Aborts a migration: the copies on `targets` are dropped, the source
/// resumes. Returns what failed, as `node: error`.
async fn abort(
    ctx: &Ctx,
    spec: &api::InstanceSpec,
    info: &str,
    source: &objects::Node,
    targets: &[objects::Node],
    live: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for target in targets {
        let req = api::FinalizeMigrationDst {
            instance: spec.clone(),
            info: info.to_string(),
            success: false,
        };
        if let Err(e) = ctx.rpc().call(target, &req).await {
            failures.push(format!("{}: {}", target.name, error_chain(&e)));
        }
    }
    let req = api::FinalizeMigrationSrc {
        instance: spec.clone(),
        success: false,
        live,
    };
    if let Err(e) = ctx.rpc().call(source, &req).await {
        failures.push(format!("{}: {}", source.name, error_chain(&e)));
    }
    failures
}

/// Templates whose disks every node can reach: they fail over or migrate
/// to any node.
const EXTERNAL_MIRROR: &[DiskTemplate] = &[DiskTemplate::Diskless, DiskTemplate::SharedFile];

fn movable(inst: &Instance, what: &str) -> Result<(), Error> {
    if !EXTERNAL_MIRROR.contains(&inst.disk_template) && !drbd::internally_mirrored(inst) {
        return Err(inval(format!(
            "Instance's disk layout '{}' does not allow {what}s",
            inst.disk_template
        )));
    }
    Ok(())
}

/// The unit ran past `locks` without a target: a bug.
fn no_target() -> Error {
    Error::programmer("the move's target was not expanded")
}

/// Where a failover or migration goes: a node UUID, or the iallocator
/// plugin that will choose it once all nodes are locked.
enum Target {
    Node(String),
    Allocator(String),
}

/// Where `what` ("failed over", "migrated") takes `inst`.
fn target_of(
    cfg: &ConfigData,
    inst: &Instance,
    target: Option<&str>,
    iallocator: Option<&str>,
    what: &str,
) -> Result<Target, Error> {
    if drbd::internally_mirrored(inst) {
        // A mirrored instance goes to its secondary, and nowhere else.
        let secondary = inst.secondary_nodes().first().cloned().ok_or_else(|| {
            Error::programmer(format!(
                "instance {} has mirrored disks but no secondary node",
                inst.name
            ))
        })?;
        let elsewhere = match target {
            Some(t) => expand_node(cfg, t)?.uuid != secondary,
            None => false,
        };
        if iallocator.is_some() || elsewhere {
            return Err(inval(format!(
                "Instances with disk types {} cannot be {what} to arbitrary nodes \
                 (neither an iallocator nor a target node can be passed)",
                inst.disk_template
            )));
        }
        return Ok(Target::Node(secondary));
    }
    match (target, iallocator) {
        (Some(_), Some(_)) => Err(inval(
            "Give either a target node or an iallocator, not both",
        )),
        (Some(t), None) => {
            let n = expand_node(cfg, t)?;
            if n.uuid == inst.primary_node {
                return Err(inval(format!(
                    "Instance {} is already on the node {}",
                    inst.name, n.name
                )));
            }
            Ok(Target::Node(n.uuid.clone()))
        }
        (None, Some(a)) => Ok(Target::Allocator(a.to_string())),
        (None, None) => match cfg.cluster.default_allocator() {
            Some(a) => Ok(Target::Allocator(a.to_string())),
            None => Err(inval(format!(
                "No target node or iallocator given for instance {} and no cluster-wide \
             default iallocator found; please specify either an iallocator or a \
             target node (the '{}' template needs one)",
                inst.name, inst.disk_template
            ))),
        },
    }
}

/// Expands the instance and its target of a failover or migration;
/// returns the instance's UUID, the target and the locks: the instance,
/// its nodes and the target node, or every node for an iallocator.
fn move_locks(
    cfg: &ConfigData,
    name: &str,
    target: Option<&str>,
    iallocator: Option<&str>,
    what: &str,
) -> Result<(String, Target, LockRequest), Error> {
    let inst = expand_instance(cfg, name)?;
    let req = LockRequest::new().bgl(Mode::Shared).some(
        Level::Instance,
        vec![inst.uuid.clone()],
        Mode::Exclusive,
    );
    let to = target_of(cfg, inst, target, iallocator, what)?;
    let req = match &to {
        Target::Node(node) => {
            let mut nodes = inst.all_nodes();
            nodes.push(node.clone());
            req.some(Level::Node, nodes.clone(), Mode::Exclusive).some(
                Level::NodeRes,
                nodes,
                Mode::Exclusive,
            )
        }
        Target::Allocator(_) => req
            .all(Level::Node, Mode::Exclusive)
            .all(Level::NodeRes, Mode::Exclusive),
    };
    Ok((inst.uuid.clone(), to, req))
}

/// The checks of `what` (failover or migration) to `target`: for a node,
/// the move itself; for an iallocator, that the instance can move at all
/// (its choice is checked once made).
fn check_target(cfg: &ConfigData, uuid: &str, target: &Target, what: &str) -> Result<(), Error> {
    match target {
        Target::Node(node) => check_move(cfg, uuid, node, what),
        Target::Allocator(_) => movable(&cfg.instances[uuid], what),
    }
}

/// The UUID of the node instance `uuid` goes to: the one given, or the
/// iallocator's choice.
async fn resolve_target(
    ctx: &Ctx,
    uuid: &str,
    target: &Target,
    what: &str,
) -> Result<String, Error> {
    match target {
        Target::Node(node) => Ok(node.clone()),
        Target::Allocator(plugin) => choose_target(ctx, uuid, plugin, what).await,
    }
}

/// Runs `plugin` to choose the node instance `uuid` moves to (a relocate
/// request away from its primary) and checks the node can take it.
async fn choose_target(ctx: &Ctx, uuid: &str, plugin: &str, what: &str) -> Result<String, Error> {
    let (name, from) = {
        let cfg = ctx.config().read();
        let inst = &cfg.instances[uuid];
        (
            inst.name.clone(),
            cfg.node_name(&inst.primary_node).to_string(),
        )
    };
    let nodes = ctx
        .relocate(plugin, &name, std::slice::from_ref(&from))
        .await?;
    let cfg = ctx.config().read();
    let node = expand_node(&cfg, &nodes[0])?;
    if node.name == from {
        return Err(Error::exec(format!(
            "Iallocator '{plugin}' chose the instance's own node {from}"
        )));
    }
    check_move(&cfg, uuid, &node.uuid, what)?;
    ctx.feedback(format!(
        "Selected nodes for instance {name} via iallocator {plugin}: {}",
        node.name
    ));
    Ok(node.uuid.clone())
}

/// The instance's disks allow `what` (failover or migration) and the target
/// node can take it.
fn check_move(cfg: &ConfigData, uuid: &str, target: &str, what: &str) -> Result<(), Error> {
    movable(&cfg.instances[uuid], what)?;
    check_target_node(&cfg.nodes[target])
}

/// `OP_INSTANCE_FAILOVER`: stop on the primary, start on the target.
pub struct Failover {
    op: opcodes::InstanceFailover,
    uuid: String,
    /// Set by `locks`.
    target: Option<Target>,
}

impl Failover {
    pub fn new(op: opcodes::InstanceFailover) -> Self {
        Failover {
            op,
            uuid: String::new(),
            target: None,
        }
    }
}

impl LogicalUnit for Failover {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let target = self
            .op
            .target_node_uuid
            .as_deref()
            .or(self.op.target_node.as_deref());
        let (uuid, to, req) = move_locks(
            cfg,
            &self.op.instance_name,
            target,
            self.op.iallocator.as_deref(),
            "failed over",
        )?;
        self.uuid = uuid;
        self.target = Some(to);
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let target = self.target.as_ref().ok_or_else(no_target)?;
        check_target(cfg, &self.uuid, target, "failover")
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let to = self.target.as_ref().ok_or_else(no_target)?;
            let to = resolve_target(ctx, &self.uuid, to, "failover").await?;
            let mut inst = get_instance(ctx, &self.uuid)?;
            let source = get_node(ctx, &inst.primary_node)?;
            let target = get_node(ctx, &to)?;
            let mirrored = drbd::internally_mirrored(&inst);
            let spec = instance_spec(&ctx.config().read(), &inst)?;
            ctx.feedback(format!("Failover instance {}", inst.name));
            if !inst.disks_active {
                ctx.feedback("* not checking disk consistency as instance is not running");
            } else if mirrored && !self.op.ignore_consistency {
                drbd::check_consistency(ctx, &inst.name, &target, &spec.disks).await?;
            } else {
                ctx.feedback("* checking disk consistency between source and target");
            }
            if inst.admin_state == AdminState::Up {
                let needed = be_params(&ctx.config().read(), &inst).min_memory();
                let reason = format!("failing over instance {}", inst.name);
                check_free_memory(ctx, &target, inst.hypervisor.as_str(), needed, &reason).await?;
            }
            ctx.feedback("* shutting down instance on source node");
            if source.offline {
                if !self.op.ignore_consistency {
                    return Err(wrong_state(format!(
                        "Source node {} is offline; use --ignore-consistency to fail over anyway",
                        source.name
                    )));
                }
            } else if let Err(e) = stop_on(ctx, &inst, &source, self.op.shutdown_timeout).await {
                if !self.op.ignore_consistency {
                    return Err(Error::exec(format!(
                        "Could not shutdown instance {} on node {}; proceed with \
                         --ignore-consistency to ignore it: {}",
                        inst.name,
                        source.name,
                        e.message()
                    )));
                }
                ctx.feedback(format!("Warning: {}", e.message()));
            }
            if !mirrored {
                shared_disks_step(
                    ctx,
                    &format!("closing instance disks on node {}", source.name),
                );
            }
            // Disks every node reaches have nothing to deactivate.
            ctx.feedback("* deactivating the instance's disks on source node");
            if mirrored && !source.offline {
                let strict = !self.op.ignore_consistency;
                if let Err(e) =
                    drbd::shutdown_disks(ctx, &inst.name, &source, &spec.disks, strict).await
                {
                    // Undo the stop: the instance stays where it was.
                    if inst.admin_state == AdminState::Up {
                        if let Err(again) = start_on(ctx, &inst, &source, false).await {
                            return Err(e.with_note(format!(
                                "and the instance could not be started again on {}: {}",
                                source.name,
                                again.message()
                            )));
                        }
                    }
                    return Err(e);
                }
            }
            inst.set_primary(&target.uuid);
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            ctx.commit(ch)?;
            if inst.admin_state == AdminState::Up {
                // The node assembles the disks as it starts the instance.
                ctx.feedback(format!(
                    "* activating the instance's disks on target node {}",
                    target.name
                ));
                ctx.feedback(format!(
                    "* starting the instance on the target node {}",
                    target.name
                ));
                start_on(ctx, &inst, &target, false).await?;
            }
            Ok(Value::Null)
        })
    }
}

/// `OP_INSTANCE_MIGRATE`: live migration through the hypervisor.
pub struct Migrate {
    op: opcodes::InstanceMigrate,
    uuid: String,
    /// Set by `locks`; `None` for a cleanup that names no node.
    target: Option<Target>,
}

impl Migrate {
    pub fn new(op: opcodes::InstanceMigrate) -> Self {
        Migrate {
            op,
            uuid: String::new(),
            target: None,
        }
    }
}

impl LogicalUnit for Migrate {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if let Some(m) = &self.op.mode {
            if m != "live" && m != "non-live" {
                return Err(inval(format!("Invalid migration mode '{m}'")));
            }
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let target = self
            .op
            .target_node_uuid
            .as_deref()
            .or(self.op.target_node.as_deref());
        if self.op.cleanup {
            // The instance may run on any node: look at all of them.
            let inst = expand_instance(cfg, &self.op.instance_name)?;
            self.uuid = inst.uuid.clone();
            self.target = match target {
                Some(t) => Some(Target::Node(expand_node(cfg, t)?.uuid.clone())),
                None => None,
            };
            return Ok(LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::Instance, vec![inst.uuid.clone()], Mode::Exclusive)
                .all(Level::Node, Mode::Exclusive)
                .all(Level::NodeRes, Mode::Exclusive));
        }
        let (uuid, to, req) = move_locks(
            cfg,
            &self.op.instance_name,
            target,
            self.op.iallocator.as_deref(),
            "migrated",
        )?;
        self.uuid = uuid;
        self.target = Some(to);
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        if self.op.cleanup {
            return movable(&cfg.instances[&self.uuid], "migration");
        }
        let target = self.target.as_ref().ok_or_else(no_target)?;
        check_target(cfg, &self.uuid, target, "migration")?;
        check_node_online(&cfg.nodes[&cfg.instances[&self.uuid].primary_node])
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            if self.op.cleanup {
                let node = match &self.target {
                    Some(Target::Node(n)) => Some(n.as_str()),
                    _ => None,
                };
                return cleanup(ctx, &self.uuid, node).await;
            }
            let to = self.target.as_ref().ok_or_else(no_target)?;
            let to = resolve_target(ctx, &self.uuid, to, "migration").await?;
            migrate(ctx, &self.uuid, &to, &self.op).await
        })
    }
}
