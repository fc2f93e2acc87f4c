//! Live migration of an instance between two nodes:
//! source `migration_info` → target `accept_instance` → source
//! `migrate_instance` (progress polled into the job log) → config commit →
//! target and source finalize. A failure on the way finalizes both sides
//! as failed, which leaves the instance running on the source only.

use std::time::Duration;

use luxi::error::GanetiError;
use luxi::opcodes;
use objects::{error_chain, Instance};
use rpc::api;
use serde_json::Value;

use super::common::{get_instance, get_node, instance_spec, rpc_error};
use super::{wrong_state, Ctx};
use crate::config::Changes;

/// Migrates instance `uuid` to node `target_uuid`.
pub async fn migrate(
    ctx: &Ctx,
    uuid: &str,
    target_uuid: &str,
    op: &opcodes::InstanceMigrate,
) -> Result<Value, GanetiError> {
    let master = &ctx.master;
    let mut inst: Instance = get_instance(ctx, uuid)?;
    let source = get_node(ctx, &inst.primary_node)?;
    let target = get_node(ctx, target_uuid)?;
    let hvparams = master.config.read().cluster.fill_hvparams(&inst);
    let live = match (op.live, op.mode.as_deref()) {
        (Some(l), _) => l,
        (None, Some(m)) => m == "live",
        (None, None) => hvparams.get("migration_mode").and_then(Value::as_str) != Some("non-live"),
    };
    let spec = instance_spec(&master.config.read(), &inst)?;
    // The three questions go out at once: whether the source runs it, the
    // target's free memory, and the source's migration data (read-only).
    let info_req = api::InstanceInfo {
        instance: inst.name.clone(),
        hypervisor: inst.hypervisor.clone(),
        hvparams: hvparams.clone(),
    };
    let node_req = api::NodeInfo {
        hypervisors: vec![(inst.hypervisor.clone(), hvparams.clone())],
        storage: vec![],
    };
    let mig_req = api::MigrationInfo {
        instance: spec.clone(),
    };
    let (running, info, migration_info) = tokio::join!(
        master.rpc.call(&source, &info_req),
        master.rpc.call(&target, &node_req),
        master.rpc.call(&source, &mig_req),
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
        master.commit(ch)?;
        return Ok(Value::Null);
    }
    ctx.feedback(format!(
        "* checking target node {} has enough memory",
        target.name
    ));
    let info =
        info.map_err(|e| rpc_error(&format!("Can't get data from node {}", target.name), e))?;
    let free = info.hypervisors.first().map_or(0, |h| h.info.memory_free);
    if free < spec.beparams.min_memory() {
        return Err(GanetiError::prereq(
            format!(
                "Not enough memory on target node {}: needed {} MiB, available {free} MiB",
                target.name,
                spec.beparams.min_memory()
            ),
            luxi::error::ErrorCode::NoRes,
        ));
    }
    ctx.feedback(format!(
        "* migrating instance to {} ({})",
        target.name,
        if live { "live" } else { "non-live" }
    ));
    let migration_info =
        migration_info.map_err(|e| rpc_error("Failed to gather migration information", e))?;
    master
        .rpc
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
    let cluster_name = master.config.read().cluster.cluster_name.clone();
    let send_req = api::MigrateInstance {
        cluster_name,
        instance: spec.clone(),
        target: target.primary_ip.clone(),
        live,
    };
    let send = master.rpc.call(&source, &send_req);
    tokio::pin!(send);
    let mut last_pct = None;
    let sent = loop {
        tokio::select! {
            r = &mut send => break r,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Ok(st) = master.rpc.call(&source, &api::GetMigrationStatus { instance: spec.clone() }).await {
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
        return Err(GanetiError::exec(format!(
            "Could not migrate instance {}: {msg}",
            inst.name
        )));
    }
    // QEMU's own figures, before the source process goes.
    if let Ok(st) = master
        .rpc
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
    master.commit(ch)?;
    // QEMU's migration completed: the target holds the instance, so the
    // source's copy goes whatever the target's finalization says (a guest
    // that reset on the way stays stopped on the target, see the kvm
    // hypervisor's reset guard).
    let finalized = master
        .rpc
        .call(
            &target,
            &api::FinalizeMigrationDst {
                instance: spec.clone(),
                info: migration_info,
                success: true,
            },
        )
        .await;
    if let Err(e) = master
        .rpc
        .call(
            &source,
            &api::FinalizeMigrationSrc {
                instance: spec,
                success: true,
                live,
            },
        )
        .await
    {
        ctx.feedback(format!(
            "Warning: could not finalize the migration on the source node {}: {}",
            source.name,
            error_chain(&e)
        ));
    }
    finalized.map_err(|e| {
        rpc_error(
            &format!("Could not finalize the migration on {}", target.name),
            e,
        )
    })?;
    ctx.feedback("* done");
    Ok(Value::Null)
}

/// The online nodes that run instance `inst` (by name), asked in parallel.
async fn find_locations(ctx: &Ctx, inst: &Instance) -> Result<Vec<objects::Node>, GanetiError> {
    ctx.feedback(
        "* checking where the instance actually runs (if this hangs, the hypervisor might \
         be in a bad state)",
    );
    let nodes: Vec<objects::Node> = ctx
        .master
        .config
        .read()
        .nodes
        .values()
        .filter(|n| !n.offline)
        .cloned()
        .collect();
    let req = api::InstanceList {
        hypervisors: vec![inst.hypervisor.clone()],
    };
    let answers = ctx.master.rpc.call_many(&nodes, &req).await;
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
pub async fn cleanup(
    ctx: &Ctx,
    uuid: &str,
    target_uuid: Option<&str>,
) -> Result<Value, GanetiError> {
    let master = &ctx.master;
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
        let spec = instance_spec(&master.config.read(), &inst)?;
        let info = master
            .rpc
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
            return Err(GanetiError::exec(format!(
                "Instance migration cleanup failed: {}",
                failures.join(", ")
            )));
        }
        locations = find_locations(ctx, &inst).await?;
    }
    let others = elsewhere(&locations);
    let on_src = on_source(&locations);
    if on_src && !others.is_empty() {
        return Err(GanetiError::exec(
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
            return Err(GanetiError::exec(
                "Instance does not seem to be running at all; in this case it's safer to \
                 repair by running 'gnt-instance stop' to ensure disk shutdown, and then \
                 restarting it",
            ))
        }
        many => {
            let names: Vec<&str> = many.iter().map(|n| n.name.as_str()).collect();
            return Err(GanetiError::exec(format!(
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
    master.commit(ch)?;
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
        if let Err(e) = ctx.master.rpc.call(target, &req).await {
            failures.push(format!("{}: {}", target.name, error_chain(&e)));
        }
    }
    let req = api::FinalizeMigrationSrc {
        instance: spec.clone(),
        success: false,
        live,
    };
    if let Err(e) = ctx.master.rpc.call(source, &req).await {
        failures.push(format!("{}: {}", source.name, error_chain(&e)));
    }
    failures
}
