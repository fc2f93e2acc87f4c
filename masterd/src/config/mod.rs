//! The configuration store: every object in its own SQLite row (WAL,
//! synchronous=FULL), mirrored in memory. A change is one transaction that
//! bumps the cluster's `serial_no` and the changed objects' `serial_no` and
//! `mtime`, so it costs O(objects changed), not O(cluster).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};

pub use objects::ids::{new_uuid, timestamp};
use objects::network::{parse_ipv4, AddressPool, Owner, PoolError};
use objects::{Cluster, Instance, Network, Node, NodeGroup};
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What can go wrong with the configuration store.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot open configuration database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("configuration database error")]
    Db(#[from] rusqlite::Error),
    #[error("corrupt {kind} row '{key}' in the configuration database")]
    Corrupt {
        kind: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the configuration database has no cluster object: run gnt-cluster init first")]
    NotInitialized,
    #[error("the configuration database already holds a cluster")]
    AlreadyInitialized,
    #[error("no replication port is free (all of {first} to {last} are in use)")]
    NoFreePort { first: u16, last: u16 },
    #[error("network '{network}' is not in the configuration")]
    NoNetwork { network: String },
    #[error("address pool of network '{network}'")]
    Pool {
        network: String,
        #[source]
        source: PoolError,
    },
}

/// The whole configuration, in memory.
#[derive(Debug, Clone)]
pub struct ConfigData {
    pub cluster: Cluster,
    pub nodes: BTreeMap<String, Node>,
    pub groups: BTreeMap<String, NodeGroup>,
    pub instances: BTreeMap<String, Instance>,
    pub networks: BTreeMap<String, Network>,
    node_names: HashMap<String, String>,
    network_names: HashMap<String, String>,
    group_names: HashMap<String, String>,
    instance_names: HashMap<String, String>,
    /// NIC MAC addresses in use (lower case), with how many NICs use each.
    macs: HashMap<String, u32>,
    /// Ganeti's listing order of the instances (nicely sorted by name), as
    /// positions in `instances`' own order (by UUID), so that listing needs
    /// no lookup per instance; computed on first use after instances were
    /// added, renamed or removed (which is when positions change).
    instance_order: OnceLock<Vec<u32>>,
    /// `(name, UUID)` of every instance, sorted by name (bytes), to find
    /// the instances a (short) name names without reading every name;
    /// computed on first use after instances were added, renamed or removed.
    instance_name_index: OnceLock<Vec<(String, String)>>,
}

/// The whole configuration as one document: what the master pushes to
/// the master candidates (`write_config`) and what `master-failover`
/// makes the new master's configuration from.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ConfigDump {
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
    pub nodegroups: Vec<NodeGroup>,
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub networks: Vec<Network>,
}

impl ConfigData {
    /// The whole configuration as one document.
    pub fn dump(&self) -> ConfigDump {
        ConfigDump {
            cluster: self.cluster.clone(),
            nodes: self.nodes.values().cloned().collect(),
            nodegroups: self.groups.values().cloned().collect(),
            instances: self.instances.values().cloned().collect(),
            networks: self.networks.values().cloned().collect(),
        }
    }

    fn new(cluster: Cluster) -> Self {
        ConfigData {
            cluster,
            nodes: BTreeMap::new(),
            groups: BTreeMap::new(),
            instances: BTreeMap::new(),
            networks: BTreeMap::new(),
            node_names: HashMap::new(),
            network_names: HashMap::new(),
            group_names: HashMap::new(),
            instance_names: HashMap::new(),
            macs: HashMap::new(),
            instance_order: OnceLock::new(),
            instance_name_index: OnceLock::new(),
        }
    }

    /// A node by name.
    pub fn node_by_name(&self, name: &str) -> Option<&Node> {
        self.node_names.get(name).and_then(|u| self.nodes.get(u))
    }

    /// A node group by name.
    pub fn group_by_name(&self, name: &str) -> Option<&NodeGroup> {
        self.group_names.get(name).and_then(|u| self.groups.get(u))
    }

    /// A network by name.
    pub fn network_by_name(&self, name: &str) -> Option<&Network> {
        self.network_names
            .get(name)
            .and_then(|u| self.networks.get(u))
    }

    /// Resolves a network name or UUID.
    pub fn expand_network(&self, name: &str) -> Option<&Network> {
        self.network_by_name(name)
            .or_else(|| self.networks.get(name))
    }

    /// The connection (`mode`, `link`, `vlan`) of network `net_uuid` in
    /// the group of node `node_uuid`, if the network is connected there.
    pub fn group_netparams(&self, net_uuid: &str, node_uuid: &str) -> Option<&objects::ParamDict> {
        let node = self.nodes.get(node_uuid)?;
        self.groups.get(&node.group)?.networks.get(net_uuid)
    }

    /// The network connected to the group of node `node_uuid` whose subnet
    /// holds `ip` (Ganeti's `CheckIPInNodeGroup`).
    pub fn network_of_ip_in_group(&self, ip: &str, node_uuid: &str) -> Option<&Network> {
        let addr = parse_ipv4(ip).ok()?;
        let node = self.nodes.get(node_uuid)?;
        let group = self.groups.get(&node.group)?;
        group
            .networks
            .keys()
            .filter_map(|u| self.networks.get(u))
            .find(|n| {
                objects::network::Ipv4Net::parse(&n.network)
                    .map(|net| net.contains(addr))
                    .unwrap_or(false)
            })
    }

    fn put_network(&mut self, n: Network) {
        if let Some(old) = self.networks.get(&n.uuid) {
            self.network_names.remove(&old.name);
        }
        self.network_names.insert(n.name.clone(), n.uuid.clone());
        self.networks.insert(n.uuid.clone(), n);
    }

    /// An instance by name.
    pub fn instance_by_name(&self, name: &str) -> Option<&Instance> {
        self.instance_names
            .get(name)
            .and_then(|u| self.instances.get(u))
    }

    /// Resolves a node name or UUID, accepting a unique short name
    /// (`node1` for `node1.example.com`), as Ganeti's name expansion does.
    pub fn expand_node(&self, name: &str) -> Option<&Node> {
        if let Some(n) = self.node_by_name(name).or_else(|| self.nodes.get(name)) {
            return Some(n);
        }
        unique_prefix(self.nodes.values(), name, |n| &n.name)
    }

    /// Resolves an instance name or UUID (see [`ConfigData::expand_node`]).
    pub fn expand_instance(&self, name: &str) -> Option<&Instance> {
        if let Some(i) = self
            .instance_by_name(name)
            .or_else(|| self.instances.get(name))
        {
            return Some(i);
        }
        unique_prefix(self.instances.values(), name, |i| &i.name)
    }

    /// Resolves a group name or UUID.
    pub fn expand_group(&self, name: &str) -> Option<&NodeGroup> {
        self.group_by_name(name).or_else(|| self.groups.get(name))
    }

    /// The master node.
    pub fn master_node(&self) -> Option<&Node> {
        self.nodes.get(&self.cluster.master_node)
    }

    /// The name of a node UUID, or the UUID itself if unknown.
    pub fn node_name<'a>(&'a self, uuid: &'a str) -> &'a str {
        self.nodes
            .get(uuid)
            .map(|n| n.name.as_str())
            .unwrap_or(uuid)
    }

    /// Instances whose primary node is `node_uuid`.
    pub fn primary_instances<'a>(
        &'a self,
        node_uuid: &'a str,
    ) -> impl Iterator<Item = &'a Instance> {
        self.instances
            .values()
            .filter(move |i| i.primary_node == node_uuid)
    }

    /// Instances that have `node_uuid` as a secondary node.
    pub fn secondary_instances<'a>(
        &'a self,
        node_uuid: &'a str,
    ) -> impl Iterator<Item = &'a Instance> {
        self.instances
            .values()
            .filter(move |i| i.secondary_nodes().iter().any(|s| s == node_uuid))
    }

    fn put_node(&mut self, n: Node) {
        if let Some(old) = self.nodes.get(&n.uuid) {
            self.node_names.remove(&old.name);
        }
        self.node_names.insert(n.name.clone(), n.uuid.clone());
        self.nodes.insert(n.uuid.clone(), n);
    }

    fn put_group(&mut self, g: NodeGroup) {
        if let Some(old) = self.groups.get(&g.uuid) {
            self.group_names.remove(&old.name);
        }
        self.group_names.insert(g.name.clone(), g.uuid.clone());
        self.groups.insert(g.uuid.clone(), g);
    }

    /// The instances nicely sorted by name (`inst2` before `inst10`), as
    /// Ganeti lists them; the order is kept until instances change.
    pub fn instances_by_name(&self) -> impl Iterator<Item = &Instance> {
        let order = self.instance_order.get_or_init(|| {
            let mut v: Vec<(u32, &Instance)> = (0u32..).zip(self.instances.values()).collect();
            luxi::query::nice_sort_by(&mut v, |(_, i)| &i.name);
            v.into_iter().map(|(k, _)| k).collect()
        });
        let all: Vec<&Instance> = self.instances.values().collect();
        order
            .iter()
            .filter_map(move |&k| all.get(k as usize).copied())
    }

    /// The instances that `lookup` names as a query's `name == lookup`
    /// does: the one of that name, and those whose name starts with
    /// `lookup` followed by a dot (`inst1` names `inst1.example.com`); in
    /// UUID order.
    pub fn instances_named(&self, lookup: &str) -> Vec<&Instance> {
        let index = self.instance_name_index.get_or_init(|| {
            let mut v: Vec<(String, String)> = self
                .instances
                .values()
                .map(|i| (i.name.clone(), i.uuid.clone()))
                .collect();
            v.sort();
            v
        });
        // Every name that starts with `lookup` sorts from here on.
        let from = index.partition_point(|(n, _)| n.as_str() < lookup);
        let mut out: Vec<&Instance> = index[from..]
            .iter()
            .take_while(|(n, _)| n.starts_with(lookup))
            .filter(|(n, _)| luxi::query::match_name_component(n, lookup))
            .filter_map(|(_, u)| self.instances.get(u))
            .collect();
        out.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        out
    }

    /// Whether a NIC of any instance has `mac` (case-insensitive); O(1).
    pub fn mac_in_use(&self, mac: &str) -> bool {
        self.macs.contains_key(&mac.to_ascii_lowercase())
    }

    /// An instance with a NIC of MAC address `mac` (case-insensitive).
    pub fn mac_owner(&self, mac: &str) -> Option<&Instance> {
        if !self.mac_in_use(mac) {
            return None;
        }
        self.instances
            .values()
            .find(|i| i.nics.iter().any(|n| n.mac.eq_ignore_ascii_case(mac)))
    }

    fn put_instance(&mut self, i: Instance) {
        match self.instances.remove(&i.uuid) {
            Some(old) => {
                self.instance_names.remove(&old.name);
                self.forget_macs(&old);
                if old.name != i.name {
                    self.instance_order = OnceLock::new();
                    self.instance_name_index = OnceLock::new();
                }
            }
            None => {
                self.instance_order = OnceLock::new();
                self.instance_name_index = OnceLock::new();
            }
        }
        self.instance_names.insert(i.name.clone(), i.uuid.clone());
        for n in &i.nics {
            *self.macs.entry(n.mac.to_ascii_lowercase()).or_insert(0) += 1;
        }
        self.instances.insert(i.uuid.clone(), i);
    }

    fn remove_instance(&mut self, uuid: &str) {
        if let Some(old) = self.instances.remove(uuid) {
            self.instance_names.remove(&old.name);
            self.forget_macs(&old);
            self.instance_order = OnceLock::new();
            self.instance_name_index = OnceLock::new();
        }
    }

    fn forget_macs(&mut self, i: &Instance) {
        for n in &i.nics {
            let mac = n.mac.to_ascii_lowercase();
            if let Some(count) = self.macs.get_mut(&mac) {
                *count -= 1;
                if *count == 0 {
                    self.macs.remove(&mac);
                }
            }
        }
    }
}

fn unique_prefix<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    short: &str,
    name: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    let prefix = format!("{short}.");
    let mut found = None;
    for it in items {
        if name(it).starts_with(&prefix) {
            if found.is_some() {
                return None;
            }
            found = Some(it);
        }
    }
    found
}

/// A set of changes committed together.
#[derive(Debug, Default)]
pub struct Changes {
    cluster: Option<Cluster>,
    nodes: Vec<Node>,
    groups: Vec<NodeGroup>,
    instances: Vec<Instance>,
    networks: Vec<Network>,
    removed_nodes: Vec<String>,
    removed_groups: Vec<String>,
    removed_instances: Vec<String>,
    removed_networks: Vec<String>,
    /// Instance addresses taken (`true`) or given back (`false`) in a
    /// network's pool, applied to the network as it is at commit time.
    ips: Vec<(String, String, bool)>,
}

impl Changes {
    pub fn new() -> Self {
        Changes::default()
    }
    pub fn cluster(&mut self, c: Cluster) -> &mut Self {
        self.cluster = Some(c);
        self
    }
    pub fn node(&mut self, n: Node) -> &mut Self {
        self.nodes.push(n);
        self
    }
    pub fn group(&mut self, g: NodeGroup) -> &mut Self {
        self.groups.push(g);
        self
    }
    pub fn instance(&mut self, i: Instance) -> &mut Self {
        self.instances.push(i);
        self
    }
    pub fn remove_node(&mut self, uuid: &str) -> &mut Self {
        self.removed_nodes.push(uuid.to_string());
        self
    }
    pub fn remove_group(&mut self, uuid: &str) -> &mut Self {
        self.removed_groups.push(uuid.to_string());
        self
    }
    pub fn remove_instance(&mut self, uuid: &str) -> &mut Self {
        self.removed_instances.push(uuid.to_string());
        self
    }
    pub fn network(&mut self, n: Network) -> &mut Self {
        self.networks.push(n);
        self
    }
    pub fn remove_network(&mut self, uuid: &str) -> &mut Self {
        self.removed_networks.push(uuid.to_string());
        self
    }
    /// Takes `ip` for an instance in network `net_uuid`'s pool; the commit
    /// fails if another took it first.
    pub fn reserve_ip(&mut self, net_uuid: &str, ip: &str) -> &mut Self {
        self.ips.push((net_uuid.to_string(), ip.to_string(), true));
        self
    }
    /// Gives `ip` back to network `net_uuid`'s pool; an address the pool
    /// does not hold as used (or a network that is gone) is left alone, so
    /// that giving back never blocks a removal.
    pub fn release_ip(&mut self, net_uuid: &str, ip: &str) -> &mut Self {
        self.ips.push((net_uuid.to_string(), ip.to_string(), false));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.cluster.is_none()
            && self.nodes.is_empty()
            && self.groups.is_empty()
            && self.instances.is_empty()
            && self.networks.is_empty()
            && self.removed_nodes.is_empty()
            && self.removed_groups.is_empty()
            && self.removed_instances.is_empty()
            && self.removed_networks.is_empty()
            && self.ips.is_empty()
    }

    /// Applies the address changes to the networks they name (those of
    /// this change set first, else the stored ones), adding the changed
    /// networks to the set.
    fn apply_ips(&mut self, data: &ConfigData) -> Result<(), ConfigError> {
        for (net_uuid, ip, take) in std::mem::take(&mut self.ips) {
            let pos = match self.networks.iter().position(|n| n.uuid == net_uuid) {
                Some(p) => p,
                None => match data.networks.get(&net_uuid) {
                    Some(n) => {
                        self.networks.push(n.clone());
                        self.networks.len() - 1
                    }
                    None if !take => continue,
                    None => {
                        return Err(ConfigError::NoNetwork {
                            network: net_uuid.clone(),
                        })
                    }
                },
            };
            let net = &mut self.networks[pos];
            let pool_err = |source| ConfigError::Pool {
                network: net_uuid.clone(),
                source,
            };
            let mut pool = AddressPool::of(net).map_err(pool_err)?;
            let addr = parse_ipv4(&ip).map_err(pool_err)?;
            if take {
                pool.reserve(addr, Owner::Instance).map_err(pool_err)?;
            } else if pool.is_reserved(addr, Owner::Instance) == Ok(true) {
                pool.release(addr, Owner::Instance).map_err(pool_err)?;
            }
            pool.store(net);
        }
        Ok(())
    }
}

/// The configuration store.
pub struct ConfigStore {
    db: Mutex<Connection>,
    data: RwLock<ConfigData>,
    /// Held while a replication port is taken or given back, which
    /// reads and writes the cluster object.
    ports: Mutex<()>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cluster (id INTEGER PRIMARY KEY CHECK (id = 0), data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodegroups (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
";

fn open_db(path: &Path) -> Result<Connection, ConfigError> {
    let conn = Connection::open(path).map_err(|source| ConfigError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn decode<T: DeserializeOwned>(kind: &'static str, key: &str, s: &str) -> Result<T, ConfigError> {
    serde_json::from_str(s).map_err(|source| ConfigError::Corrupt {
        kind,
        key: key.to_string(),
        source,
    })
}

fn encode<T: Serialize>(v: &T) -> String {
    // Our own objects always serialise.
    serde_json::to_string(v).unwrap_or_else(|e| panic!("config object does not serialise: {e}"))
}

impl ConfigStore {
    /// Creates a new configuration with its first objects.
    pub fn create(
        path: &Path,
        cluster: Cluster,
        group: NodeGroup,
        master: Node,
    ) -> Result<ConfigStore, ConfigError> {
        let mut conn = open_db(path)?;
        let exists: Option<i64> = conn
            .query_row("SELECT id FROM cluster", [], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(ConfigError::AlreadyInitialized);
        }
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO cluster (id, data) VALUES (0, ?1)",
            params![encode(&cluster)],
        )?;
        tx.execute(
            "INSERT INTO nodegroups (uuid, name, data) VALUES (?1, ?2, ?3)",
            params![group.uuid, group.name, encode(&group)],
        )?;
        tx.execute(
            "INSERT INTO nodes (uuid, name, data) VALUES (?1, ?2, ?3)",
            params![master.uuid, master.name, encode(&master)],
        )?;
        tx.commit()?;
        let mut data = ConfigData::new(cluster);
        data.put_group(group);
        data.put_node(master);
        Ok(ConfigStore {
            db: Mutex::new(conn),
            data: RwLock::new(data),
            ports: Mutex::new(()),
        })
    }

    /// Opens an existing configuration.
    pub fn open(path: &Path) -> Result<ConfigStore, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::NotInitialized);
        }
        let conn = open_db(path)?;
        let cluster: Option<String> = conn
            .query_row("SELECT data FROM cluster", [], |r| r.get(0))
            .optional()?;
        let cluster: Cluster = decode(
            "cluster",
            "cluster",
            &cluster.ok_or(ConfigError::NotInitialized)?,
        )?;
        let mut data = ConfigData::new(cluster);
        for (key, json) in rows(&conn, "SELECT uuid, data FROM nodegroups")? {
            data.put_group(decode("node group", &key, &json)?);
        }
        for (key, json) in rows(&conn, "SELECT uuid, data FROM nodes")? {
            data.put_node(decode("node", &key, &json)?);
        }
        for (key, json) in rows(&conn, "SELECT uuid, data FROM instances")? {
            data.put_instance(decode("instance", &key, &json)?);
        }
        for (key, json) in rows(&conn, "SELECT uuid, data FROM networks")? {
            data.put_network(decode("network", &key, &json)?);
        }
        Ok(ConfigStore {
            db: Mutex::new(conn),
            data: RwLock::new(data),
            ports: Mutex::new(()),
        })
    }

    /// Replaces the whole configuration database at `path` (created if
    /// needed) with `dump`, in one transaction, keeping its serial
    /// numbers: the new master's configuration after `master-failover`.
    pub fn restore(path: &Path, dump: &ConfigDump) -> Result<(), ConfigError> {
        let mut conn = open_db(path)?;
        let tx = conn.transaction()?;
        for table in ["cluster", "nodes", "nodegroups", "instances", "networks"] {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.execute(
            "INSERT INTO cluster (id, data) VALUES (0, ?1)",
            params![encode(&dump.cluster)],
        )?;
        for g in &dump.nodegroups {
            tx.execute(
                "INSERT INTO nodegroups (uuid, name, data) VALUES (?1, ?2, ?3)",
                params![g.uuid, g.name, encode(g)],
            )?;
        }
        for n in &dump.nodes {
            tx.execute(
                "INSERT INTO nodes (uuid, name, data) VALUES (?1, ?2, ?3)",
                params![n.uuid, n.name, encode(n)],
            )?;
        }
        for i in &dump.instances {
            tx.execute(
                "INSERT INTO instances (uuid, name, data) VALUES (?1, ?2, ?3)",
                params![i.uuid, i.name, encode(i)],
            )?;
        }
        for n in &dump.networks {
            tx.execute(
                "INSERT INTO networks (uuid, name, data) VALUES (?1, ?2, ?3)",
                params![n.uuid, n.name, encode(n)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The cluster's `serial_no` and the whole configuration as JSON, read
    /// at one moment.
    pub fn snapshot_json(&self) -> (u64, String) {
        let cfg = self.read();
        let dump = cfg.dump();
        (cfg.cluster.serial_no, encode(&dump))
    }

    /// Read access to the configuration.
    pub fn read(&self) -> RwLockReadGuard<'_, ConfigData> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the cluster object.
    pub fn cluster(&self) -> Cluster {
        self.read().cluster.clone()
    }

    /// Takes a replication port for a new mirrored disk, committed at
    /// once (Ganeti's `AllocatePort`): one given back earlier, else the
    /// next above every port handed out.
    pub fn allocate_port(&self) -> Result<u16, ConfigError> {
        let _guard = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let mut cluster = self.cluster();
        let port = match cluster.tcpudp_port_pool.pop() {
            Some(p) => p,
            None => {
                let next = cluster.highest_used_port.saturating_add(1);
                if next > objects::LAST_DRBD_PORT {
                    return Err(ConfigError::NoFreePort {
                        first: objects::FIRST_DRBD_PORT,
                        last: objects::LAST_DRBD_PORT,
                    });
                }
                cluster.highest_used_port = next;
                next
            }
        };
        let mut ch = Changes::new();
        ch.cluster(cluster);
        self.commit(ch)?;
        Ok(port)
    }

    /// Gives replication ports back, for later disks.
    pub fn release_ports(&self, ports: &[u16]) -> Result<(), ConfigError> {
        if ports.is_empty() {
            return Ok(());
        }
        let _guard = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let mut cluster = self.cluster();
        for p in ports {
            if !cluster.tcpudp_port_pool.contains(p) {
                cluster.tcpudp_port_pool.push(*p);
            }
        }
        let mut ch = Changes::new();
        ch.cluster(cluster);
        self.commit(ch).map(|_| ())
    }

    /// Commits `changes` in one transaction; returns the new cluster serial.
    pub fn commit(&self, mut changes: Changes) -> Result<u64, ConfigError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let t = timestamp();
        changes.apply_ips(&data)?;
        let mut cluster = changes
            .cluster
            .take()
            .unwrap_or_else(|| data.cluster.clone());
        cluster.serial_no = data.cluster.serial_no + 1;
        cluster.mtime = t;
        for n in &mut changes.nodes {
            n.serial_no = data.nodes.get(&n.uuid).map_or(1, |o| o.serial_no + 1);
            n.mtime = t;
        }
        for g in &mut changes.groups {
            g.serial_no = data.groups.get(&g.uuid).map_or(1, |o| o.serial_no + 1);
            g.mtime = t;
        }
        for i in &mut changes.instances {
            i.serial_no = data.instances.get(&i.uuid).map_or(1, |o| o.serial_no + 1);
            i.mtime = t;
        }
        for n in &mut changes.networks {
            n.serial_no = data.networks.get(&n.uuid).map_or(1, |o| o.serial_no + 1);
            n.mtime = t;
        }
        {
            // rusqlite's transaction needs &mut; the guard gives it.
            let mut db = db;
            let tx = db.transaction()?;
            tx.execute(
                "UPDATE cluster SET data = ?1 WHERE id = 0",
                params![encode(&cluster)],
            )?;
            for u in &changes.removed_instances {
                tx.execute("DELETE FROM instances WHERE uuid = ?1", params![u])?;
            }
            for u in &changes.removed_nodes {
                tx.execute("DELETE FROM nodes WHERE uuid = ?1", params![u])?;
            }
            for u in &changes.removed_groups {
                tx.execute("DELETE FROM nodegroups WHERE uuid = ?1", params![u])?;
            }
            for u in &changes.removed_networks {
                tx.execute("DELETE FROM networks WHERE uuid = ?1", params![u])?;
            }
            for n in &changes.networks {
                tx.execute(
                    "INSERT INTO networks (uuid, name, data) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, data = excluded.data",
                    params![n.uuid, n.name, encode(n)],
                )?;
            }
            for g in &changes.groups {
                tx.execute(
                    "INSERT INTO nodegroups (uuid, name, data) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, data = excluded.data",
                    params![g.uuid, g.name, encode(g)],
                )?;
            }
            for n in &changes.nodes {
                tx.execute(
                    "INSERT INTO nodes (uuid, name, data) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, data = excluded.data",
                    params![n.uuid, n.name, encode(n)],
                )?;
            }
            for i in &changes.instances {
                tx.execute(
                    "INSERT INTO instances (uuid, name, data) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, data = excluded.data",
                    params![i.uuid, i.name, encode(i)],
                )?;
            }
            tx.commit()?;
        }
        // The database holds the change; now memory follows.
        for u in &changes.removed_instances {
            data.remove_instance(u);
        }
        for u in &changes.removed_nodes {
            if let Some(old) = data.nodes.remove(u) {
                data.node_names.remove(&old.name);
            }
        }
        for u in &changes.removed_groups {
            if let Some(old) = data.groups.remove(u) {
                data.group_names.remove(&old.name);
            }
        }
        for u in &changes.removed_networks {
            if let Some(old) = data.networks.remove(u) {
                data.network_names.remove(&old.name);
            }
        }
        for n in changes.networks {
            data.put_network(n);
        }
        for g in changes.groups {
            data.put_group(g);
        }
        for n in changes.nodes {
            data.put_node(n);
        }
        for i in changes.instances {
            data.put_instance(i);
        }
        let serial = cluster.serial_no;
        data.cluster = cluster;
        Ok(serial)
    }
}

fn rows(conn: &Connection, sql: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut stmt = conn.prepare(sql)?;
    let out = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests;
