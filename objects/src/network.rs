//! IP networks: the `Network` object and its IPv4 address pool.
//!
//! A network's pool is two bitmaps over every address of its IPv4 subnet,
//! kept as strings of `0` and `1` (as Ganeti stores them): `reservations`
//! for the addresses instances use, `ext_reservations` for the ones kept
//! apart by hand (the network and broadcast addresses, the gateway, the
//! nodes' addresses). An address is free when neither bit is set.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// Smallest and largest supported IPv4 networks (Ganeti's limits: a /30
/// at least, a /16 at most).
pub const IPV4_NETWORK_MIN_PREFIX: u8 = 30;
pub const IPV4_NETWORK_MAX_PREFIX: u8 = 16;

/// An IP network of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub uuid: String,
    pub name: String,
    /// The IPv4 subnet, `a.b.c.d/n`.
    pub network: String,
    pub gateway: Option<String>,
    pub network6: Option<String>,
    pub gateway6: Option<String>,
    /// Overrides the cluster's MAC prefix for NICs in this network.
    pub mac_prefix: Option<String>,
    /// One character per address: `1` when an instance uses it.
    pub reservations: String,
    /// One character per address: `1` when reserved by hand.
    pub ext_reservations: String,
    pub tags: Vec<String>,
    pub serial_no: u64,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
}

/// Why an address or a pool operation is refused; the messages are
/// Ganeti's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("Invalid IPv4 network '{0}': expected a.b.c.d/n")]
    BadNetwork(String),
    #[error("Invalid IPv4 network '{0}': it has host bits set")]
    HostBits(String),
    #[error("Invalid IPv4 address '{0}'")]
    BadAddress(String),
    #[error(
        "A big network with {hosts} host(s) is currently not supported. please specify at \
         most a /{IPV4_NETWORK_MAX_PREFIX} network"
    )]
    TooBig { hosts: u64 },
    #[error(
        "A network with only {hosts} host(s) is too small, please specify at least a \
         /{IPV4_NETWORK_MIN_PREFIX} network"
    )]
    TooSmall { hosts: u64 },
    #[error("{net} does not contain {addr}")]
    NotContained { net: Ipv4Net, addr: Ipv4Addr },
    #[error("IP {0} is already used by an instance")]
    InUse(Ipv4Addr),
    #[error("IP {0} is already externally reserved")]
    ExternallyReserved(Ipv4Addr),
    #[error("IP {0} is not used by an instance")]
    NotInUse(Ipv4Addr),
    #[error("IP {0} is not externally reserved")]
    NotExternallyReserved(Ipv4Addr),
    #[error("{0} is full")]
    Full(Ipv4Net),
    #[error("the reservations of network {net} hold {found} addresses, not {expected}")]
    BadBitmap {
        net: Ipv4Net,
        found: usize,
        expected: usize,
    },
}

/// An IPv4 subnet: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    base: u32,
    prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n`; the host bits must be zero.
    pub fn parse(s: &str) -> Result<Ipv4Net, PoolError> {
        let bad = || PoolError::BadNetwork(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let base = u32::from(addr);
        if base & !mask(prefix) != 0 {
            return Err(PoolError::HostBits(s.to_string()));
        }
        Ok(Ipv4Net { base, prefix })
    }

    /// How many addresses the subnet has.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `addr` lies in the subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == self.base
    }

    /// The position of `addr` in the subnet.
    pub fn index(&self, addr: Ipv4Addr) -> Result<usize, PoolError> {
        if !self.contains(addr) {
            return Err(PoolError::NotContained { net: *self, addr });
        }
        Ok((u32::from(addr) - self.base) as usize)
    }

    /// The address at position `i` (below [`Ipv4Net::size`]).
    pub fn at(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(self.base.wrapping_add(i as u32))
    }

    /// Whether two subnets share an address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask(p) == other.base & mask(p)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Parses an IPv4 address.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, PoolError> {
    s.parse().map_err(|_| PoolError::BadAddress(s.to_string()))
}

/// Which bitmap an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Addresses of instances' NICs.
    Instance,
    /// Addresses reserved by hand.
    External,
}

/// A network's address pool, read from and written back to its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    net: Ipv4Net,
    used: Vec<bool>,
    ext: Vec<bool>,
}

fn bits(s: &str, n: usize, net: Ipv4Net) -> Result<Vec<bool>, PoolError> {
    if s.is_empty() {
        return Ok(vec![false; n]);
    }
    if s.len() != n {
        return Err(PoolError::BadBitmap {
            net,
            found: s.len(),
            expected: n,
        });
    }
    Ok(s.bytes().map(|b| b == b'1').collect())
}

fn to01(v: &[bool]) -> String {
    v.iter().map(|&b| if b { '1' } else { '0' }).collect()
}

impl AddressPool {
    /// An empty pool over `net`, which must be a /16 to /30.
    pub fn empty(net: Ipv4Net) -> Result<AddressPool, PoolError> {
        let hosts = net.size();
        if net.prefix < IPV4_NETWORK_MAX_PREFIX {
            return Err(PoolError::TooBig { hosts });
        }
        if net.prefix > IPV4_NETWORK_MIN_PREFIX {
            return Err(PoolError::TooSmall { hosts });
        }
        let n = hosts as usize;
        Ok(AddressPool {
            net,
            used: vec![false; n],
            ext: vec![false; n],
        })
    }

    /// The pool of a network object.
    pub fn of(network: &Network) -> Result<AddressPool, PoolError> {
        let mut p = AddressPool::empty(Ipv4Net::parse(&network.network)?)?;
        let n = p.used.len();
        p.used = bits(&network.reservations, n, p.net)?;
        p.ext = bits(&network.ext_reservations, n, p.net)?;
        Ok(p)
    }

    /// A new network's pool: its network and broadcast addresses and its
    /// gateway reserved (Ganeti's `InitializeNetwork`).
    pub fn initialize(net: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<AddressPool, PoolError> {
        let mut p = AddressPool::empty(net)?;
        let last = p.used.len() - 1;
        p.ext[0] = true;
        p.ext[last] = true;
        if let Some(gw) = gateway {
            p.reserve(gw, Owner::External)?;
        }
        Ok(p)
    }

    /// Writes the bitmaps back into the network object.
    pub fn store(&self, network: &mut Network) {
        network.reservations = to01(&self.used);
        network.ext_reservations = to01(&self.ext);
    }

    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.net.contains(addr)
    }

    fn map_of(&mut self, owner: Owner) -> &mut Vec<bool> {
        match owner {
            Owner::Instance => &mut self.used,
            Owner::External => &mut self.ext,
        }
    }

    /// Whether `addr` is reserved in `owner`'s bitmap.
    pub fn is_reserved(&self, addr: Ipv4Addr, owner: Owner) -> Result<bool, PoolError> {
        let i = self.net.index(addr)?;
        Ok(match owner {
            Owner::Instance => self.used[i],
            Owner::External => self.ext[i],
        })
    }

    /// Whether `addr` is taken, by an instance or by hand.
    pub fn is_taken(&self, addr: Ipv4Addr) -> Result<bool, PoolError> {
        let i = self.net.index(addr)?;
        Ok(self.used[i] || self.ext[i])
    }

    /// Marks `addr` as used; refused when it is already in `owner`'s map.
    pub fn reserve(&mut self, addr: Ipv4Addr, owner: Owner) -> Result<(), PoolError> {
        let i = self.net.index(addr)?;
        let map = self.map_of(owner);
        if map[i] {
            return Err(match owner {
                Owner::Instance => PoolError::InUse(addr),
                Owner::External => PoolError::ExternallyReserved(addr),
            });
        }
        map[i] = true;
        Ok(())
    }

    /// Marks `addr` as free in `owner`'s map; refused when it is not set.
    pub fn release(&mut self, addr: Ipv4Addr, owner: Owner) -> Result<(), PoolError> {
        let i = self.net.index(addr)?;
        let map = self.map_of(owner);
        if !map[i] {
            return Err(match owner {
                Owner::Instance => PoolError::NotInUse(addr),
                Owner::External => PoolError::NotExternallyReserved(addr),
            });
        }
        map[i] = false;
        Ok(())
    }

    /// The first address that is neither used nor reserved.
    pub fn first_free(&self) -> Result<Ipv4Addr, PoolError> {
        (0..self.used.len())
            .find(|&i| !self.used[i] && !self.ext[i])
            .map(|i| self.net.at(i))
            .ok_or(PoolError::Full(self.net))
    }

    /// Takes the first free address for an instance.
    pub fn take_free(&mut self) -> Result<Ipv4Addr, PoolError> {
        let a = self.first_free()?;
        self.reserve(a, Owner::Instance)?;
        Ok(a)
    }

    /// How many addresses are taken (by instances or by hand).
    pub fn reserved_count(&self) -> usize {
        self.used
            .iter()
            .zip(&self.ext)
            .filter(|(u, e)| **u || **e)
            .count()
    }

    /// How many addresses are free.
    pub fn free_count(&self) -> usize {
        self.used.len() - self.reserved_count()
    }

    /// One character per address: `X` taken, `.` free.
    pub fn map(&self) -> String {
        self.used
            .iter()
            .zip(&self.ext)
            .map(|(u, e)| if *u || *e { 'X' } else { '.' })
            .collect()
    }

    /// The addresses reserved by hand, in order.
    pub fn external_reservations(&self) -> Vec<Ipv4Addr> {
        (0..self.ext.len())
            .filter(|&i| self.ext[i])
            .map(|i| self.net.at(i))
            .collect()
    }
}

/// Normalises and checks a three-octet MAC prefix (`aa:00:01`).
pub fn normalize_mac_prefix(prefix: &str) -> Option<String> {
    let parts: Vec<&str> = prefix.split(':').collect();
    (parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())))
    .then(|| prefix.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        Ipv4Net::parse(s).unwrap()
    }

    #[test]
    fn a_new_pool_reserves_network_broadcast_and_gateway() {
        let p = AddressPool::initialize(net("10.0.0.0/29"), Some(ip("10.0.0.1"))).unwrap();
        assert_eq!(p.map(), "XX.....X");
        assert_eq!(p.free_count(), 5);
        assert_eq!(p.reserved_count(), 3);
        assert_eq!(
            p.external_reservations(),
            vec![ip("10.0.0.0"), ip("10.0.0.1"), ip("10.0.0.7")]
        );
        assert_eq!(p.first_free().unwrap(), ip("10.0.0.2"));
    }

    #[test]
    fn a_gateway_outside_the_network_is_refused() {
        let e = AddressPool::initialize(net("10.0.0.0/29"), Some(ip("10.0.1.1"))).unwrap_err();
        assert_eq!(e.to_string(), "10.0.0.0/29 does not contain 10.0.1.1");
    }

    #[test]
    fn sizes_outside_16_to_30_are_refused() {
        assert_eq!(
            AddressPool::empty(net("10.0.0.0/31")).unwrap_err(),
            PoolError::TooSmall { hosts: 2 }
        );
        assert_eq!(
            AddressPool::empty(net("10.0.0.0/15")).unwrap_err(),
            PoolError::TooBig { hosts: 131072 }
        );
        assert!(AddressPool::empty(net("10.0.0.0/16")).is_ok());
        assert!(AddressPool::empty(net("10.0.0.0/30")).is_ok());
    }

    #[test]
    fn networks_with_host_bits_or_garbage_are_refused() {
        assert!(matches!(
            Ipv4Net::parse("10.0.0.1/24"),
            Err(PoolError::HostBits(_))
        ));
        assert!(matches!(
            Ipv4Net::parse("10.0.0.0"),
            Err(PoolError::BadNetwork(_))
        ));
        assert!(matches!(
            Ipv4Net::parse("10.0.0.0/33"),
            Err(PoolError::BadNetwork(_))
        ));
    }

    #[test]
    fn reserving_twice_is_refused_with_ganetis_words() {
        let mut p = AddressPool::initialize(net("10.0.0.0/29"), None).unwrap();
        p.reserve(ip("10.0.0.3"), Owner::Instance).unwrap();
        assert_eq!(
            p.reserve(ip("10.0.0.3"), Owner::Instance)
                .unwrap_err()
                .to_string(),
            "IP 10.0.0.3 is already used by an instance"
        );
        assert_eq!(
            p.reserve(ip("10.0.0.0"), Owner::External)
                .unwrap_err()
                .to_string(),
            "IP 10.0.0.0 is already externally reserved"
        );
        assert_eq!(
            p.release(ip("10.0.0.4"), Owner::Instance)
                .unwrap_err()
                .to_string(),
            "IP 10.0.0.4 is not used by an instance"
        );
    }

    #[test]
    fn free_addresses_are_handed_out_in_order_until_full() {
        let mut p = AddressPool::initialize(net("10.0.0.0/30"), None).unwrap();
        assert_eq!(p.take_free().unwrap(), ip("10.0.0.1"));
        assert_eq!(p.take_free().unwrap(), ip("10.0.0.2"));
        assert_eq!(
            p.take_free().unwrap_err().to_string(),
            "10.0.0.0/30 is full"
        );
        p.release(ip("10.0.0.1"), Owner::Instance).unwrap();
        assert_eq!(p.take_free().unwrap(), ip("10.0.0.1"));
    }

    #[test]
    fn a_pool_round_trips_through_its_network_object() {
        let mut p =
            AddressPool::initialize(net("192.168.0.0/28"), Some(ip("192.168.0.1"))).unwrap();
        p.reserve(ip("192.168.0.5"), Owner::Instance).unwrap();
        let mut n = Network {
            uuid: "u".into(),
            name: "n".into(),
            network: "192.168.0.0/28".into(),
            gateway: Some("192.168.0.1".into()),
            network6: None,
            gateway6: None,
            mac_prefix: None,
            reservations: String::new(),
            ext_reservations: String::new(),
            tags: vec![],
            serial_no: 1,
            ctime: 0.0,
            mtime: 0.0,
        };
        p.store(&mut n);
        assert_eq!(n.reservations, "0000010000000000");
        assert_eq!(n.ext_reservations, "1100000000000001");
        assert_eq!(AddressPool::of(&n).unwrap(), p);
        n.reservations.push('0');
        assert!(matches!(
            AddressPool::of(&n),
            Err(PoolError::BadBitmap { .. })
        ));
    }

    #[test]
    fn overlapping_subnets_are_seen() {
        assert!(net("10.0.0.0/24").overlaps(&net("10.0.0.128/25")));
        assert!(net("10.0.0.128/25").overlaps(&net("10.0.0.0/16")));
        assert!(!net("10.0.0.0/25").overlaps(&net("10.0.0.128/25")));
    }

    #[test]
    fn mac_prefixes_are_three_octets() {
        assert_eq!(normalize_mac_prefix("AA:00:01").unwrap(), "aa:00:01");
        assert!(normalize_mac_prefix("aa:00").is_none());
        assert!(normalize_mac_prefix("aa:00:0g").is_none());
    }
}
