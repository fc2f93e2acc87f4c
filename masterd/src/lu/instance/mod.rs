//! Instances: the units of Ganeti's instance families (create, remove,
//! operation, rename, set-params, query) and the helpers they share.
//! Failover and migration are in `lu::instance_migration`, disk
//! helpers in `lu::instance_storage`.

mod console;
mod convert;
mod create;
mod devices;
mod import;
mod move_instance;
mod multi_alloc;
mod nic_network;
mod operation;
mod query;
mod remove;
mod rename;
mod set_params;

pub use console::Console;
pub use create::Create;
pub use move_instance::Move;
pub use multi_alloc::MultiAlloc;
pub use operation::{Reboot, Reinstall, Shutdown, Startup};
pub use query::QueryData;
pub(crate) use remove::remove_instance;
pub use remove::Remove;
pub use rename::Rename;
pub use set_params::SetParams;

use luxi::error::ErrorCode;

use crate::error::Error;
use objects::params::types::{self, normalize_beparams};
use objects::params::ParamDict;
use objects::{AdminState, AdminStateSource, Instance};
use rpc::api;

use crate::config::{Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{get_instance, instance_spec, rpc_error};
use crate::lu::{inval, Ctx};

/// Checks backend parameter names and types.
pub fn check_beparams(p: &ParamDict) -> Result<(), Error> {
    types::check_beparams(p).map_err(|e| inval(e.to_string()))
}

/// Checks hypervisor parameter names against the hypervisor's.
pub(crate) fn check_hvparams(hv: &str, p: &ParamDict) -> Result<(), Error> {
    types::check_hvparams(hv, p).map_err(|e| inval(e.to_string()))
}

/// Locks of one instance and its nodes.
pub(crate) fn instance_locks(cfg: &ConfigData, uuid: &str, node_mode: Mode) -> LockRequest {
    let nodes = cfg
        .instances
        .get(uuid)
        .map(|i| i.all_nodes())
        .unwrap_or_default();
    LockRequest::new()
        .bgl(Mode::Shared)
        .some(Level::Instance, vec![uuid.to_string()], Mode::Exclusive)
        .some(Level::Node, nodes.clone(), node_mode)
        .some(Level::NodeRes, nodes, node_mode)
}

/// Whether the instance runs on `node`, as the node reports it.
pub(crate) async fn is_running(
    ctx: &Ctx,
    inst: &Instance,
    node: &objects::Node,
) -> Result<bool, Error> {
    let hvparams = ctx
        .config()
        .read()
        .cluster
        .hvparams
        .get(inst.hypervisor.as_str())
        .cloned()
        .unwrap_or_default();
    let info = ctx
        .rpc()
        .call(
            node,
            &api::InstanceInfo {
                instance: inst.name.clone(),
                hypervisor: inst.hypervisor.to_string(),
                hvparams,
            },
        )
        .await
        .map_err(|e| rpc_error(&format!("Error checking node {}", node.name), e))?;
    Ok(info.is_some())
}

/// Refuses to start when the node lacks the instance's memory.
pub(crate) async fn check_free_memory(
    ctx: &Ctx,
    node: &objects::Node,
    hv: &str,
    needed: u64,
    reason: &str,
) -> Result<(), Error> {
    let hvparams = ctx
        .config()
        .read()
        .cluster
        .hvparams
        .get(hv)
        .cloned()
        .unwrap_or_default();
    let info = ctx
        .rpc()
        .call(
            node,
            &api::NodeInfo {
                hypervisors: vec![(hv.to_string(), hvparams)],
                storage: vec![],
            },
        )
        .await
        .map_err(|e| rpc_error(&format!("Can't get data from node {}", node.name), e))?;
    let free = info
        .hypervisors
        .first()
        .map(|h| h.info.memory_free)
        .unwrap_or(0);
    if free < needed {
        return Err(Error::prereq(
            format!(
                "Not enough memory on node {} for {reason}: needed {needed} MiB, \
                 available {free} MiB",
                node.name
            ),
            ErrorCode::NoRes,
        ));
    }
    Ok(())
}

pub(crate) async fn start_on(
    ctx: &Ctx,
    inst: &Instance,
    node: &objects::Node,
    paused: bool,
) -> Result<(), Error> {
    let spec = instance_spec(&ctx.config().read(), inst)?;
    let reason = format!("starting instance {}", inst.name);
    check_free_memory(
        ctx,
        node,
        inst.hypervisor.as_str(),
        spec.beparams.min_memory(),
        &reason,
    )
    .await?;
    ctx.rpc()
        .call(
            node,
            &api::InstanceStart {
                instance: spec,
                startup_paused: paused,
            },
        )
        .await
        .map_err(|e| rpc_error("Could not start instance", e))?;
    // A running instance's disks are active (Ganeti's `disks_active`).
    set_disks_active(ctx, &inst.uuid, true)
}

/// Records whether the instance's disks are active on its nodes.
pub(crate) fn set_disks_active(ctx: &Ctx, uuid: &str, active: bool) -> Result<(), Error> {
    let mut inst = get_instance(ctx, uuid)?;
    if inst.disks_active == active {
        return Ok(());
    }
    inst.disks_active = active;
    let mut ch = Changes::new();
    ch.instance(inst);
    ctx.commit(ch)?;
    Ok(())
}

pub(crate) async fn stop_on(
    ctx: &Ctx,
    inst: &Instance,
    node: &objects::Node,
    timeout: u64,
) -> Result<(), Error> {
    let spec = instance_spec(&ctx.config().read(), inst)?;
    ctx.rpc()
        .call(
            node,
            &api::InstanceShutdown {
                instance: spec,
                timeout_secs: timeout,
            },
        )
        .await
        .map_err(|e| rpc_error("Could not shutdown instance", e))?;
    Ok(())
}

pub(crate) fn set_admin_state(
    ctx: &Ctx,
    uuid: &str,
    state: AdminState,
    source: AdminStateSource,
) -> Result<(), Error> {
    let mut inst = get_instance(ctx, uuid)?;
    if inst.admin_state == state && inst.admin_state_source == source {
        return Ok(());
    }
    inst.admin_state = state;
    inst.admin_state_source = source;
    let mut ch = Changes::new();
    ch.instance(inst);
    ctx.commit(ch)?;
    Ok(())
}

/// A free MAC address for a NIC in network `network` (a UUID): with the
/// network's MAC prefix if it has one, else the cluster's.
pub(crate) fn random_mac_for(cfg: &ConfigData, network: Option<&str>) -> String {
    let prefix = network
        .and_then(|u| cfg.networks.get(u))
        .and_then(|n| n.mac_prefix.as_deref())
        .unwrap_or(&cfg.cluster.mac_prefix);
    loop {
        let b: [u8; 3] = rand::random();
        let mac = format!("{prefix}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
        if !cfg.mac_in_use(&mac) {
            return mac;
        }
    }
}
