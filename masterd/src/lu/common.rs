//! Helpers shared by the logical units: name expansion with Ganeti's
//! messages, node state checks, and the instance description sent to nodes.

use std::collections::BTreeMap;

use crate::error::Error;
use objects::params::{be, get_bool, get_u64};
use objects::{Disk, DiskTemplate, Instance, NicMode, Node, NodeGroup};
use rpc::api::{BeParams, DiskSpec, DrbdEndpoint, DrbdLink, InstanceSpec, NicSpec};
use serde_json::Value;

use super::{noent, wrong_state, Ctx};
use crate::config::ConfigData;
use crate::rpc::RpcFailure;

/// The instance with this UUID, which a job holds locked (so it can only
/// be missing if the config changed under the lock).
pub fn get_instance(ctx: &Ctx, uuid: &str) -> Result<Instance, Error> {
    ctx.config()
        .read()
        .instances
        .get(uuid)
        .cloned()
        .ok_or_else(|| Error::exec("Instance vanished while locked"))
}

/// The node with this UUID, which a job holds locked.
pub fn get_node(ctx: &Ctx, uuid: &str) -> Result<Node, Error> {
    ctx.config()
        .read()
        .nodes
        .get(uuid)
        .cloned()
        .ok_or_else(|| Error::exec(format!("Node {uuid} vanished while locked")))
}

/// An instance by name, UUID or unique short name.
pub fn expand_instance<'a>(cfg: &'a ConfigData, name: &str) -> Result<&'a Instance, Error> {
    cfg.expand_instance(name)
        .ok_or_else(|| noent(format!("Instance '{name}' not known")))
}

/// A node by name, UUID or unique short name.
pub fn expand_node<'a>(cfg: &'a ConfigData, name: &str) -> Result<&'a Node, Error> {
    cfg.expand_node(name)
        .ok_or_else(|| noent(format!("Node '{name}' not known")))
}

/// A node group by name or UUID.
pub fn expand_group<'a>(cfg: &'a ConfigData, name: &str) -> Result<&'a NodeGroup, Error> {
    cfg.expand_group(name)
        .ok_or_else(|| noent(format!("Group '{name}' not found")))
}

/// A network by name or UUID.
pub fn expand_network<'a>(cfg: &'a ConfigData, name: &str) -> Result<&'a objects::Network, Error> {
    cfg.expand_network(name)
        .ok_or_else(|| noent(format!("Network '{name}' not found")))
}

/// Refuses an offline node.
pub fn check_node_online(node: &Node) -> Result<(), Error> {
    if node.offline {
        return Err(wrong_state(format!("Can't use offline node {}", node.name)));
    }
    Ok(())
}

/// Refuses a drained node as a target for new instances.
pub fn check_node_not_drained(node: &Node) -> Result<(), Error> {
    if node.drained {
        return Err(wrong_state(format!("Can't use drained node {}", node.name)));
    }
    Ok(())
}

/// Refuses a node that cannot host instances.
pub fn check_node_vm_capable(node: &Node) -> Result<(), Error> {
    if !node.vm_capable {
        return Err(wrong_state(format!(
            "Can't use non-vm_capable node {}",
            node.name
        )));
    }
    Ok(())
}

/// Refuses a node that cannot take a new or moved instance: offline,
/// drained or not vm-capable.
pub fn check_target_node(node: &Node) -> Result<(), Error> {
    check_node_online(node)?;
    check_node_not_drained(node)?;
    check_node_vm_capable(node)
}

/// Turns a node RPC failure into the job's error.
pub fn rpc_error(what: &str, e: RpcFailure) -> Error {
    Error::rpc(what, e)
}

/// The node's view of one disk (for a `drbd` disk, its volumes and both
/// ends of its replication, from `cfg`).
pub fn disk_spec(cfg: &ConfigData, disk: &Disk, index: usize) -> Result<DiskSpec, Error> {
    let bad = || {
        Error::programmer(format!(
            "disk {} has an invalid {} logical id {}",
            disk.uuid, disk.dev_type, disk.logical_id
        ))
    };
    let mut drbd = None;
    let logical_id = match (&disk.logical_id, disk.dev_type) {
        // `[vg, lv]`: the node names the volume `vg/lv`.
        (Value::Array(a), DiskTemplate::Plain) => match (a.first(), a.get(1)) {
            (Some(Value::String(vg)), Some(Value::String(lv))) => Some(format!("{vg}/{lv}")),
            _ => return Err(bad()),
        },
        // Ganeti's `[node A, node B, port, minor A, minor B, secret]`.
        (Value::Array(a), DiskTemplate::Drbd) => {
            let node = |v: Option<&Value>| -> Result<DrbdEndpoint, Error> {
                let uuid = v.and_then(Value::as_str).ok_or_else(bad)?;
                let n = cfg.nodes.get(uuid).ok_or_else(bad)?;
                Ok(DrbdEndpoint {
                    node: n.name.clone(),
                    ip: replication_ip(n).to_string(),
                })
            };
            let port = a
                .get(2)
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(bad)?;
            drbd = Some(DrbdLink {
                nodes: [node(a.first())?, node(a.get(1))?],
                port,
            });
            None
        }
        // `[driver, path]` of file disks.
        (Value::Array(a), _) => a.get(1).and_then(Value::as_str).map(str::to_string),
        (Value::String(s), _) => Some(s.clone()),
        _ => None,
    };
    let children = disk
        .children
        .iter()
        .enumerate()
        .map(|(i, c)| disk_spec(cfg, c, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DiskSpec {
        uuid: disk.uuid.clone(),
        index,
        size: disk.size,
        dev_type: disk.dev_type,
        logical_id,
        mode: disk.mode,
        name: disk.name.clone(),
        params: disk.params.clone(),
        children,
        drbd,
    })
}

/// The address a node replicates disks on: its secondary IP, else its
/// primary one.
pub fn replication_ip(node: &Node) -> &str {
    if node.secondary_ip.is_empty() {
        &node.primary_ip
    } else {
        &node.secondary_ip
    }
}

/// The filled backend parameters as the node wants them.
pub fn be_params(cfg: &ConfigData, inst: &Instance) -> BeParams {
    let be = cfg.cluster.fill_beparams(inst);
    let maxmem = get_u64(&be, be::MAXMEM).unwrap_or(128);
    BeParams {
        maxmem,
        minmem: get_u64(&be, be::MINMEM),
        vcpus: get_u64(&be, be::VCPUS).unwrap_or(1) as u32,
        auto_balance: get_bool(&be, be::AUTO_BALANCE).unwrap_or(true),
        always_failover: get_bool(&be, be::ALWAYS_FAILOVER).unwrap_or(false),
        spindle_use: get_u64(&be, be::SPINDLE_USE).unwrap_or(1) as u32,
    }
}

/// Everything a node needs to run the instance.
/// The node's view of one NIC, its parameters filled.
pub fn nic_spec(cfg: &ConfigData, n: &objects::Nic) -> NicSpec {
    let p = cfg.cluster.fill_nicparams(n);
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    NicSpec {
        mac: n.mac.clone(),
        ip: n.ip.clone(),
        mode: match text("mode").as_str() {
            "routed" => NicMode::Routed,
            "openvswitch" => NicMode::Openvswitch,
            _ => NicMode::Bridged,
        },
        link: text("link"),
        network: n.network.clone(),
        uuid: Some(n.uuid.clone()),
        name: n.name.clone(),
        vlan: Some(text("vlan")).filter(|v| !v.is_empty()),
    }
}

pub fn instance_spec(cfg: &ConfigData, inst: &Instance) -> Result<InstanceSpec, Error> {
    let disks = inst
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| disk_spec(cfg, d, i))
        .collect::<Result<Vec<_>, _>>()?;
    let nics = inst.nics.iter().map(|n| nic_spec(cfg, n)).collect();
    let osparams: BTreeMap<String, String> = cfg
        .cluster
        .osparams
        .get(inst.os.split('+').next().unwrap_or(""))
        .into_iter()
        .flatten()
        .chain(inst.osparams.iter())
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect();
    Ok(InstanceSpec {
        name: inst.name.clone(),
        uuid: inst.uuid.clone(),
        primary_node: cfg.node_name(&inst.primary_node).to_string(),
        secondary_nodes: inst
            .secondary_nodes()
            .iter()
            .map(|u| cfg.node_name(u).to_string())
            .collect(),
        hypervisor: inst.hypervisor.to_string(),
        hvparams: cfg.cluster.fill_hvparams(inst),
        beparams: be_params(cfg, inst),
        os: inst.os.clone(),
        osparams,
        disks,
        nics,
        tags: inst.tags.clone(),
    })
}
