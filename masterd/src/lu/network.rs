//! IP networks: add, modify, remove, connect to and disconnect from node
//! groups (Ganeti's `LUNetwork*`).

use std::net::{Ipv4Addr, Ipv6Addr};

use luxi::opcodes;
use objects::network::{normalize_mac_prefix, parse_ipv4, AddressPool, Ipv4Net, Owner, PoolError};
use objects::{Instance, Network, ParamDict};
use serde_json::{json, Value};

use super::common::{expand_group, expand_network};
use super::tags::check_tag;
use super::{exists, inval, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{new_uuid, timestamp, Changes, ConfigData};
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

/// Ganeti's `none`: unsets an optional network field.
const VALUE_NONE: &str = "none";

/// The NIC modes a connection may use.
const NIC_MODES: &[&str] = &["bridged", "routed", "openvswitch"];

fn pool_inval(e: PoolError) -> Error {
    inval(e.to_string())
}

fn check_subnet6(s: &str) -> Result<(), Error> {
    let ok = s.split_once('/').is_some_and(|(a, n)| {
        a.parse::<Ipv6Addr>().is_ok() && n.parse::<u8>().is_ok_and(|n| n <= 128)
    });
    if ok {
        Ok(())
    } else {
        Err(inval(format!("Invalid IPv6 network '{s}'")))
    }
}

fn check_addr6(s: &str) -> Result<(), Error> {
    s.parse::<Ipv6Addr>()
        .map(|_| ())
        .map_err(|_| inval(format!("Invalid IPv6 address '{s}'")))
}

fn mac_prefix(p: &str) -> Result<String, Error> {
    normalize_mac_prefix(p).ok_or_else(|| inval(format!("Invalid MAC address prefix '{p}'")))
}

/// `OP_NETWORK_ADD`.
pub struct Add {
    op: opcodes::NetworkAdd,
    net: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
}

impl Add {
    pub fn new(op: opcodes::NetworkAdd) -> Self {
        Add {
            op,
            net: None,
            gateway: None,
        }
    }
}

impl LogicalUnit for Add {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if self.op.network_name.is_empty() {
            return Err(inval("A network needs a name"));
        }
        let Some(net) = &self.op.network else {
            return Err(inval("Network must be given"));
        };
        self.net = Some(Ipv4Net::parse(net).map_err(pool_inval)?);
        if let Some(gw) = &self.op.gateway {
            self.gateway = Some(parse_ipv4(gw).map_err(pool_inval)?);
        }
        if let Some(n6) = &self.op.network6 {
            check_subnet6(n6)?;
        }
        if let Some(g6) = &self.op.gateway6 {
            check_addr6(g6)?;
        }
        if let Some(p) = &self.op.mac_prefix {
            self.op.mac_prefix = Some(mac_prefix(p)?);
        }
        for t in &self.op.tags {
            check_tag(t)?;
        }
        Ok(())
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        let req = LockRequest::new()
            .bgl(Mode::Shared)
            .all(Level::Network, Mode::Exclusive);
        Ok(if self.op.conflicts_check {
            req.all(Level::Node, Mode::Shared)
        } else {
            req
        })
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        if let Some(n) = cfg.network_by_name(&self.op.network_name) {
            return Err(exists(format!(
                "Desired network name '{}' already exists as a network (UUID: {})",
                self.op.network_name, n.uuid
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let o = &self.op;
            let net = self
                .net
                .ok_or_else(|| Error::programmer("network not parsed"))?;
            let mut pool = AddressPool::initialize(net, self.gateway).map_err(|e| {
                Error::exec(format!(
                    "Cannot create IP address pool for network '{}': {e}",
                    o.network_name
                ))
            })?;
            if o.conflicts_check {
                let (nodes, master_ip) = {
                    let cfg = ctx.config().read();
                    let nodes: Vec<(String, String, String)> = cfg
                        .nodes
                        .values()
                        .map(|n| (n.name.clone(), n.primary_ip.clone(), n.secondary_ip.clone()))
                        .collect();
                    (nodes, cfg.cluster.master_ip.clone())
                };
                for (name, primary, secondary) in nodes {
                    for ip in [primary, secondary] {
                        let Ok(addr) = parse_ipv4(&ip) else { continue };
                        if !pool.contains(addr) {
                            continue;
                        }
                        match pool.reserve(addr, Owner::External) {
                            Ok(()) => {
                                ctx.log_info(format!("Reserved IP address of node '{name}' ({ip})"))
                            }
                            Err(e) => ctx.log_warning(format!(
                                "Cannot reserve IP address '{ip}' of node '{name}': {e}"
                            )),
                        }
                    }
                }
                if let Ok(addr) = parse_ipv4(&master_ip) {
                    if pool.contains(addr) {
                        match pool.reserve(addr, Owner::External) {
                            Ok(()) => ctx.log_info(format!(
                                "Reserved cluster master IP address ({master_ip})"
                            )),
                            Err(e) => ctx.log_warning(format!(
                                "Cannot reserve cluster master IP address ({master_ip}): {e}"
                            )),
                        }
                    }
                }
            }
            for ip in o.add_reserved_ips.iter().flatten() {
                parse_ipv4(ip)
                    .and_then(|a| pool.reserve(a, Owner::External))
                    .map_err(|e| Error::exec(format!("Cannot reserve IP address '{ip}': {e}")))?;
            }
            let now = timestamp();
            let mut n = Network {
                uuid: new_uuid(),
                name: o.network_name.clone(),
                network: net.to_string(),
                gateway: self.gateway.map(|g| g.to_string()),
                network6: o.network6.clone(),
                gateway6: o.gateway6.clone(),
                mac_prefix: o.mac_prefix.clone(),
                reservations: String::new(),
                ext_reservations: String::new(),
                tags: Vec::new(),
                serial_no: 1,
                ctime: now,
                mtime: now,
            };
            for t in &o.tags {
                if !n.tags.contains(t) {
                    n.tags.push(t.clone());
                }
            }
            pool.store(&mut n);
            let mut ch = Changes::new();
            ch.network(n);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// `OP_NETWORK_REMOVE`.
pub struct Remove {
    op: opcodes::NetworkRemove,
    uuid: String,
}

impl Remove {
    pub fn new(op: opcodes::NetworkRemove) -> Self {
        Remove {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Remove {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_network(cfg, &self.op.network_name)?.uuid.clone();
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::Network, vec![self.uuid.clone()], Mode::Exclusive)
            .all(Level::NodeGroup, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let mut groups: Vec<&str> = cfg
            .groups
            .values()
            .filter(|g| g.networks.contains_key(&self.uuid))
            .map(|g| g.name.as_str())
            .collect();
        if !groups.is_empty() {
            luxi::query::nice_sort_by(&mut groups, |g| g);
            tracing::warn!(
                "Network '{}' is connected to the following node groups: {}",
                self.op.network_name,
                groups.join(", ")
            );
            return Err(wrong_state("Network still connected"));
        }
        // Ganeti relies on disconnect for this; a NIC may still name the
        // network if it was left behind, and must not point at nothing.
        let users = users_of(&self.uuid, cfg.instances.values());
        if !users.is_empty() {
            return Err(wrong_state(format!(
                "Network '{}' is still used by instance(s): {}",
                self.op.network_name,
                users.join(", ")
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut ch = Changes::new();
            ch.remove_network(&self.uuid);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// Names of the instances with a NIC in network `uuid`.
fn users_of<'a>(uuid: &str, instances: impl Iterator<Item = &'a Instance>) -> Vec<String> {
    let mut out: Vec<String> = instances
        .filter(|i| i.nics.iter().any(|n| n.network.as_deref() == Some(uuid)))
        .map(|i| i.name.clone())
        .collect();
    luxi::query::nice_sort_by(&mut out, |n| n);
    out
}

/// `OP_NETWORK_SET_PARAMS`.
pub struct SetParams {
    op: opcodes::NetworkSetParams,
    uuid: String,
    /// The gateway after the change (`None`: unset), when one is asked.
    gateway: Option<Option<Ipv4Addr>>,
}

impl SetParams {
    pub fn new(op: opcodes::NetworkSetParams) -> Self {
        SetParams {
            op,
            uuid: String::new(),
            gateway: None,
        }
    }
}

/// `None` for Ganeti's `none`, else the value.
fn unless_none(v: &str) -> Option<&str> {
    (!v.eq_ignore_ascii_case(VALUE_NONE)).then_some(v)
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &mut self.op;
        if o.gateway.is_some() && (o.add_reserved_ips.is_some() || o.remove_reserved_ips.is_some())
        {
            return Err(inval("Cannot modify gateway and reserved ips at once"));
        }
        if let Some(gw) = &o.gateway {
            self.gateway = Some(match unless_none(gw) {
                None => None,
                Some(g) => Some(parse_ipv4(g).map_err(pool_inval)?),
            });
        }
        if let Some(p) = o.mac_prefix.clone() {
            if let Some(p) = unless_none(&p) {
                o.mac_prefix = Some(mac_prefix(p)?);
            }
        }
        if let Some(n6) = o.network6.as_deref().and_then(unless_none) {
            check_subnet6(n6)?;
        }
        if let Some(g6) = o.gateway6.as_deref().and_then(unless_none) {
            check_addr6(g6)?;
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_network(cfg, &self.op.network_name)?.uuid.clone();
        Ok(LockRequest::new().bgl(Mode::Shared).some(
            Level::Network,
            vec![self.uuid.clone()],
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let net = cfg
            .networks
            .get(&self.uuid)
            .ok_or_else(|| Error::programmer("network vanished while locked"))?;
        let pool = AddressPool::of(net).map_err(pool_inval)?;
        if let Some(Some(gw)) = self.gateway {
            if pool.is_reserved(gw, Owner::Instance).map_err(pool_inval)? {
                return Err(wrong_state(format!(
                    "Gateway IP address '{gw}' is already reserved"
                )));
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut net = ctx
                .config()
                .read()
                .networks
                .get(&self.uuid)
                .cloned()
                .ok_or_else(|| Error::exec("Network vanished while locked"))?;
            let mut pool = AddressPool::of(&net).map_err(|e| Error::exec(e.to_string()))?;
            let old_gw = match &net.gateway {
                Some(g) => Some(parse_ipv4(g).map_err(|e| Error::exec(e.to_string()))?),
                None => None,
            };
            if let Some(new_gw) = self.gateway {
                if new_gw == old_gw {
                    ctx.log_warning(format!(
                        "Gateway is already {}",
                        new_gw.map_or("None".to_string(), |g| g.to_string())
                    ));
                } else {
                    if let Some(g) = new_gw {
                        pool.reserve(g, Owner::External).map_err(|e| {
                            Error::exec(format!("Cannot reserve gateway IP address {g}: {e}"))
                        })?;
                    }
                    if let Some(g) = old_gw {
                        if let Err(e) = pool.release(g, Owner::External) {
                            ctx.log_warning(format!("Cannot release old gateway {g}: {e}"));
                        }
                    }
                    net.gateway = new_gw.map(|g| g.to_string());
                }
            }
            for ip in self.op.add_reserved_ips.iter().flatten() {
                if let Err(e) = parse_ipv4(ip).and_then(|a| pool.reserve(a, Owner::External)) {
                    ctx.log_warning(format!("Cannot reserve IP address {ip}: {e}"));
                }
            }
            for ip in self.op.remove_reserved_ips.iter().flatten() {
                if net.gateway.as_deref() == Some(ip.as_str()) {
                    ctx.log_warning("Cannot unreserve Gateway's IP");
                    continue;
                }
                if let Err(e) = parse_ipv4(ip).and_then(|a| pool.release(a, Owner::External)) {
                    ctx.log_warning(format!("Cannot release IP address {ip}: {e}"));
                }
            }
            if let Some(p) = &self.op.mac_prefix {
                net.mac_prefix = unless_none(p).map(str::to_string);
            }
            if let Some(n6) = &self.op.network6 {
                net.network6 = unless_none(n6).map(str::to_string);
            }
            if let Some(g6) = &self.op.gateway6 {
                net.gateway6 = unless_none(g6).map(str::to_string);
            }
            pool.store(&mut net);
            let mut ch = Changes::new();
            ch.network(net);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// The instances of group `group` (any of their nodes in it), by UUID.
fn group_instances(cfg: &ConfigData, group: &str) -> Vec<String> {
    cfg.instances
        .values()
        .filter(|i| {
            i.all_nodes()
                .iter()
                .any(|n| cfg.nodes.get(n).is_some_and(|n| n.group == group))
        })
        .map(|i| i.uuid.clone())
        .collect()
}

/// Ganeti's `_NetworkConflictCheck`: the NICs of `instances` for which
/// `conflicts` holds, as `inst: nic0/ip, nic1/ip`; an error if any.
fn conflict_check<'a>(
    instances: impl Iterator<Item = &'a Instance>,
    conflicts: impl Fn(&objects::Nic) -> bool,
    network: &str,
    action: &str,
    group: &str,
) -> Result<(), Error> {
    let mut found = Vec::new();
    for inst in instances {
        let nics: Vec<String> = inst
            .nics
            .iter()
            .enumerate()
            .filter(|(_, n)| conflicts(n))
            .map(|(i, n)| format!("nic{i}/{}", n.ip.as_deref().unwrap_or("None")))
            .collect();
        if !nics.is_empty() {
            found.push(format!("{}: {}", inst.name, nics.join(", ")));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(wrong_state(format!(
        "Conflicting IP addresses found;  remove/modify the corresponding network \
         interfaces (IP addresses from network '{network}', which is about to {action} \
         node group '{group}', are in use: {})",
        found.join(", ")
    )))
}

/// `OP_NETWORK_CONNECT`.
pub struct Connect {
    op: opcodes::NetworkConnect,
    net_uuid: String,
    group_uuid: String,
    instances: Vec<String>,
    already: bool,
    group_name: String,
}

impl Connect {
    pub fn new(op: opcodes::NetworkConnect) -> Self {
        Connect {
            op,
            net_uuid: String::new(),
            group_uuid: String::new(),
            instances: Vec::new(),
            already: false,
            group_name: String::new(),
        }
    }

    fn netparams(&self) -> ParamDict {
        [
            ("mode".to_string(), json!(self.op.network_mode)),
            ("link".to_string(), json!(self.op.network_link)),
            ("vlan".to_string(), json!(self.op.network_vlan)),
        ]
        .into_iter()
        .collect()
    }
}

impl LogicalUnit for Connect {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let mode = self.op.network_mode.as_str();
        if !NIC_MODES.contains(&mode) {
            return Err(Error::Ganeti(luxi::GanetiError::configuration(format!(
                "Invalid NIC mode '{mode}'"
            ))));
        }
        if mode == "bridged" && self.op.network_link.is_empty() {
            return Err(Error::Ganeti(luxi::GanetiError::configuration(
                "Missing bridged NIC link",
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.net_uuid = expand_network(cfg, &self.op.network_name)?.uuid.clone();
        self.group_uuid = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        let mut req = LockRequest::new().bgl(Mode::Shared).some(
            Level::NodeGroup,
            vec![self.group_uuid.clone()],
            Mode::Exclusive,
        );
        if self.op.conflicts_check {
            self.instances = group_instances(cfg, &self.group_uuid);
            req = req
                .some(Level::Instance, self.instances.clone(), Mode::Shared)
                .some(Level::Network, vec![self.net_uuid.clone()], Mode::Shared);
        }
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let group = cfg
            .groups
            .get(&self.group_uuid)
            .ok_or_else(|| Error::programmer("group vanished while locked"))?;
        self.group_name = group.name.clone();
        self.already = group.networks.contains_key(&self.net_uuid);
        if self.already || !self.op.conflicts_check {
            return Ok(());
        }
        let net = cfg
            .networks
            .get(&self.net_uuid)
            .ok_or_else(|| Error::programmer("network vanished while locked"))?;
        let subnet = Ipv4Net::parse(&net.network).map_err(pool_inval)?;
        conflict_check(
            self.instances.iter().filter_map(|u| cfg.instances.get(u)),
            |nic| {
                nic.ip
                    .as_deref()
                    .and_then(|ip| parse_ipv4(ip).ok())
                    .is_some_and(|a| subnet.contains(a))
            },
            &net.name,
            "connect to",
            &group.name,
        )
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            if self.already {
                ctx.log_warning(format!(
                    "Network '{}' is already mapped to group '{}'",
                    self.op.network_name, self.group_name
                ));
                return Ok(Value::Null);
            }
            let mut group = ctx
                .config()
                .read()
                .groups
                .get(&self.group_uuid)
                .cloned()
                .ok_or_else(|| Error::exec("Group vanished while locked"))?;
            group
                .networks
                .insert(self.net_uuid.clone(), self.netparams());
            let mut ch = Changes::new();
            ch.group(group);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

/// `OP_NETWORK_DISCONNECT`.
pub struct Disconnect {
    op: opcodes::NetworkDisconnect,
    net_uuid: String,
    group_uuid: String,
    instances: Vec<String>,
    connected: bool,
    group_name: String,
}

impl Disconnect {
    pub fn new(op: opcodes::NetworkDisconnect) -> Self {
        Disconnect {
            op,
            net_uuid: String::new(),
            group_uuid: String::new(),
            instances: Vec::new(),
            connected: false,
            group_name: String::new(),
        }
    }
}

impl LogicalUnit for Disconnect {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.net_uuid = expand_network(cfg, &self.op.network_name)?.uuid.clone();
        self.group_uuid = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        self.instances = group_instances(cfg, &self.group_uuid);
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::Instance, self.instances.clone(), Mode::Shared)
            .some(
                Level::NodeGroup,
                vec![self.group_uuid.clone()],
                Mode::Exclusive,
            ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let group = cfg
            .groups
            .get(&self.group_uuid)
            .ok_or_else(|| Error::programmer("group vanished while locked"))?;
        self.group_name = group.name.clone();
        self.connected = group.networks.contains_key(&self.net_uuid);
        if !self.connected {
            return Ok(());
        }
        let uuid = self.net_uuid.as_str();
        conflict_check(
            self.instances.iter().filter_map(|u| cfg.instances.get(u)),
            |nic| nic.network.as_deref() == Some(uuid),
            &self.op.network_name,
            "disconnect from",
            &group.name,
        )
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            if !self.connected {
                ctx.log_warning(format!(
                    "Network '{}' is not mapped to group '{}'",
                    self.op.network_name, self.group_name
                ));
                return Ok(Value::Null);
            }
            let mut group = ctx
                .config()
                .read()
                .groups
                .get(&self.group_uuid)
                .cloned()
                .ok_or_else(|| Error::exec("Group vanished while locked"))?;
            group.networks.remove(&self.net_uuid);
            let mut ch = Changes::new();
            ch.group(group);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}
