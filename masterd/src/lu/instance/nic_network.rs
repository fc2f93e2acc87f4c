//! NICs in networks: the connection parameters a NIC takes from its
//! primary node's group, and its address from the network's pool
//! (`ip=pool`) or checked against it (Ganeti's NIC handling in
//! `LUInstanceCreate` and `LUInstanceSetParams`).

use std::collections::HashMap;

use luxi::error::ErrorCode;
use objects::network::{parse_ipv4, AddressPool, Owner};
use objects::{Network, ParamDict};

use crate::config::ConfigData;
use crate::error::Error;
use crate::lu::common::expand_network;
use crate::lu::{inval, wrong_state};

/// Ganeti's `pool`: an address from the network's pool.
pub const IP_POOL: &str = "pool";

/// Whether an `ip` value asks for an address from the pool.
pub fn is_pool(ip: &str) -> bool {
    ip.eq_ignore_ascii_case(IP_POOL)
}

/// `None` for a missing value or Ganeti's `none`.
pub fn unless_none(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.eq_ignore_ascii_case("none"))
}

/// The pools of the networks a set of NICs uses, each read once, so that
/// several NICs of one instance take different addresses.
#[derive(Default)]
pub struct Pools {
    pools: HashMap<String, AddressPool>,
}

impl Pools {
    fn pool<'a>(&'a mut self, net: &Network) -> Result<&'a mut AddressPool, Error> {
        if !self.pools.contains_key(&net.uuid) {
            let p = AddressPool::of(net).map_err(|e| {
                Error::exec(format!(
                    "Network '{}' has a broken address pool: {e}",
                    net.name
                ))
            })?;
            self.pools.insert(net.uuid.clone(), p);
        }
        self.pools
            .get_mut(&net.uuid)
            .ok_or_else(|| Error::programmer("pool vanished"))
    }

    /// Gives `ip` back in network `net_uuid` (for the NICs changed after).
    pub fn release(&mut self, cfg: &ConfigData, net_uuid: &str, ip: &str) {
        let Some(net) = cfg.networks.get(net_uuid) else {
            return;
        };
        if let (Ok(pool), Ok(addr)) = (self.pool(net), parse_ipv4(ip)) {
            let _ = pool.release(addr, Owner::Instance);
        }
    }

    /// Takes the first free address of `net`.
    pub fn take_free(&mut self, net: &Network) -> Option<String> {
        self.pool(net).ok()?.take_free().ok().map(|a| a.to_string())
    }

    /// Takes `ip` in `net` for an instance (Ganeti's `ReserveIp`): refused
    /// when an instance uses it, outside the network, or reserved by hand
    /// when `check_external`.
    pub fn take(&mut self, net: &Network, ip: &str, check_external: bool) -> bool {
        let Ok(pool) = self.pool(net) else {
            return false;
        };
        let Ok(addr) = parse_ipv4(ip) else {
            return false;
        };
        if check_external && pool.is_reserved(addr, Owner::External) != Ok(false) {
            return false;
        }
        pool.reserve(addr, Owner::Instance).is_ok()
    }
}

/// A NIC's network, settled for its primary node.
#[derive(Debug, Clone, PartialEq)]
pub struct NetNic {
    /// The network's UUID.
    pub network: String,
    pub network_name: String,
    /// The connection's `mode`, `link` and `vlan`: the NIC's parameters.
    pub netparams: ParamDict,
}

/// The connection of network `name` in the group of node `pnode`
/// (Ganeti's `GetGroupNetParams`).
pub fn connect_nic(cfg: &ConfigData, name: &str, pnode: &str) -> Result<NetNic, Error> {
    let net = expand_network(cfg, name)?;
    let netparams = cfg.group_netparams(&net.uuid, pnode).ok_or_else(|| {
        inval(format!(
            "No netparams found for network {}. Probably not connected to node's {} nodegroup",
            net.name,
            cfg.node_name(pnode)
        ))
    })?;
    Ok(NetNic {
        network: net.uuid.clone(),
        network_name: net.name.clone(),
        netparams: netparams.clone(),
    })
}

/// Refuses an address of a network connected to `pnode`'s group on a NIC
/// that is not in that network (Ganeti's `CheckForConflictingIp`).
pub fn check_conflicting_ip(cfg: &ConfigData, ip: &str, pnode: &str) -> Result<(), Error> {
    match cfg.network_of_ip_in_group(ip, pnode) {
        Some(net) => Err(wrong_state(format!(
            "The requested IP address ({ip}) belongs to network {}, but the target NIC does \
             not.",
            net.name
        ))),
        None => Ok(()),
    }
}

/// A new NIC's address in network `nic` (Ganeti's create-time rules):
/// `pool` takes the first free one, any other is taken as given.
pub fn address_for_new_nic(
    cfg: &ConfigData,
    pools: &mut Pools,
    index: usize,
    nic: &NetNic,
    ip: &str,
    conflicts_check: bool,
) -> Result<String, Error> {
    let net = cfg
        .networks
        .get(&nic.network)
        .ok_or_else(|| Error::programmer("network vanished"))?;
    if is_pool(ip) {
        return pools.take_free(net).ok_or_else(|| {
            wrong_state(format!(
                "Unable to get a free IP for NIC {index} from the address pool"
            ))
        });
    }
    if !pools.take(net, ip, conflicts_check) {
        return Err(Error::prereq(
            format!(
                "IP address {ip} already in use or does not belong to network {}",
                net.name
            ),
            ErrorCode::NotUnique,
        ));
    }
    Ok(ip.to_string())
}

/// Checks a NIC's `ip` value on its own: `none`, `pool` (with a network)
/// or an address.
pub fn check_ip_value(ip: Option<&str>, network: Option<&str>) -> Result<(), Error> {
    let Some(ip) = unless_none(ip) else {
        return Ok(());
    };
    if is_pool(ip) {
        if unless_none(network).is_none() {
            return Err(inval("if ip=pool, parameter network must be passed too"));
        }
        return Ok(());
    }
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(inval(format!("Invalid IP address '{ip}'")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_values_are_checked_as_ganeti_does() {
        assert!(check_ip_value(None, None).is_ok());
        assert!(check_ip_value(Some("none"), None).is_ok());
        assert!(check_ip_value(Some("pool"), Some("net1")).is_ok());
        assert!(check_ip_value(Some("192.0.2.1"), None).is_ok());
        let e = check_ip_value(Some("pool"), None).unwrap_err();
        assert!(e.message().contains("ip=pool"), "{}", e.message());
        let e = check_ip_value(Some("pool"), Some("None")).unwrap_err();
        assert!(e.message().contains("ip=pool"), "{}", e.message());
        let e = check_ip_value(Some("1.2.3"), None).unwrap_err();
        assert_eq!(e.message(), "Invalid IP address '1.2.3'");
    }
}
