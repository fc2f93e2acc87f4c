//! The configuration objects: what the master stores and the queries show.
//!
//! Field names follow Ganeti's configuration objects so that values carry
//! over to queries and RAPI unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::enums::{DiskMode, DiskTemplate, Hypervisor};
use crate::params::ParamDict;

/// Seconds since the epoch, as a float (Ganeti's `ctime`/`mtime`).
pub type Timestamp = f64;

/// The cluster-wide object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cluster {
    pub uuid: String,
    pub cluster_name: String,
    /// UUID of the master node.
    pub master_node: String,
    pub master_ip: String,
    pub master_netdev: String,
    pub master_netmask: u32,
    pub mac_prefix: String,
    pub file_storage_dir: String,
    pub shared_file_storage_dir: String,
    pub enabled_hypervisors: Vec<String>,
    pub enabled_disk_templates: Vec<String>,
    /// Per hypervisor: its parameters.
    pub hvparams: BTreeMap<String, ParamDict>,
    /// Under the key `default`.
    pub beparams: BTreeMap<String, ParamDict>,
    /// Under the key `default`.
    pub nicparams: BTreeMap<String, ParamDict>,
    pub ndparams: ParamDict,
    pub diskparams: BTreeMap<String, ParamDict>,
    pub osparams: BTreeMap<String, ParamDict>,
    pub ipolicy: ParamDict,
    pub candidate_pool_size: u32,
    /// The iallocator used when an operation names neither a node nor an
    /// iallocator; empty for none, as Ganeti stores it (read it through
    /// [`Cluster::default_allocator`]).
    pub default_iallocator: String,
    pub maintain_node_health: bool,
    pub uid_pool: Vec<Value>,
    /// The volume group of `plain` and `drbd` disks; empty for none.
    pub volume_group_name: String,
    /// Regular expressions of logical volumes that `gnt-cluster verify`
    /// leaves alone (Ganeti's `reserved_lvs`).
    #[serde(default)]
    pub reserved_lvs: Vec<String>,
    /// Replication ports given back by removed disks, used again first
    /// (Ganeti's `tcpudp_port_pool`).
    #[serde(default)]
    pub tcpudp_port_pool: Vec<u16>,
    /// The highest replication port handed out so far (Ganeti's
    /// `highest_used_port`).
    #[serde(default = "first_drbd_port_minus_one")]
    pub highest_used_port: u16,
    pub tags: Vec<String>,
    pub serial_no: u64,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
}

/// A node group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeGroup {
    pub uuid: String,
    pub name: String,
    /// `preferred`, `last_resort` or `unallocable`.
    pub alloc_policy: String,
    pub ndparams: ParamDict,
    pub diskparams: BTreeMap<String, ParamDict>,
    pub ipolicy: ParamDict,
    /// The networks connected to the group, by network UUID: the
    /// connection's `mode`, `link` and `vlan` (Ganeti's netparams).
    #[serde(default)]
    pub networks: BTreeMap<String, ParamDict>,
    pub tags: Vec<String>,
    pub serial_no: u64,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
}

/// A physical machine of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub uuid: String,
    pub name: String,
    pub primary_ip: String,
    pub secondary_ip: String,
    /// UUID of its node group.
    pub group: String,
    pub master_candidate: bool,
    pub offline: bool,
    pub drained: bool,
    pub master_capable: bool,
    pub vm_capable: bool,
    pub powered: bool,
    pub ndparams: ParamDict,
    pub tags: Vec<String>,
    pub serial_no: u64,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
}

/// The administrative state of an instance.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    Up,
    Down,
    Offline,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Up => "up",
            AdminState::Down => "down",
            AdminState::Offline => "offline",
        }
    }
}

/// Who last set the admin state (`admin` or `user`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdminStateSource {
    Admin,
    User,
}

/// A virtual machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    pub uuid: String,
    pub name: String,
    /// UUID of the primary node.
    pub primary_node: String,
    pub os: String,
    pub hypervisor: Hypervisor,
    /// The instance's own hypervisor parameters (overrides of the cluster's).
    pub hvparams: ParamDict,
    /// The instance's own backend parameters.
    pub beparams: ParamDict,
    pub osparams: ParamDict,
    pub admin_state: AdminState,
    pub admin_state_source: AdminStateSource,
    pub disk_template: DiskTemplate,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub disks_active: bool,
    pub network_port: Option<u16>,
    pub tags: Vec<String>,
    pub serial_no: u64,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
}

impl Instance {
    /// UUIDs of the secondary nodes: every node of a disk but the primary.
    pub fn secondary_nodes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.disks {
            for n in &d.nodes {
                if *n != self.primary_node && !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
        out
    }

    /// Makes `to` the primary node, in place of the current one, in the
    /// instance and in its disks' node lists (failover and migration). A
    /// mirrored disk that lives on `to` already swaps its two nodes: the
    /// old primary becomes its secondary.
    pub fn set_primary(&mut self, to: &str) {
        let from = std::mem::replace(&mut self.primary_node, to.to_string());
        for d in &mut self.disks {
            let on_target = d.nodes.iter().any(|n| n == to);
            for n in &mut d.nodes {
                if *n == from {
                    *n = to.to_string();
                } else if on_target && *n == to {
                    *n = from.clone();
                }
            }
        }
    }

    /// UUIDs of every node the instance lives on, primary first.
    pub fn all_nodes(&self) -> Vec<String> {
        let mut out = vec![self.primary_node.clone()];
        out.extend(self.secondary_nodes());
        out
    }
}

/// A virtual disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Disk {
    pub uuid: String,
    pub name: Option<String>,
    /// The disk template of the device (`file`, `sharedfile`, `diskless`, ...).
    pub dev_type: DiskTemplate,
    /// Template-specific identity; for file disks `[driver, path]`.
    pub logical_id: Value,
    /// UUIDs of the nodes that hold the disk.
    pub nodes: Vec<String>,
    pub iv_name: String,
    /// Size in MiB.
    pub size: u64,
    pub mode: DiskMode,
    pub params: ParamDict,
    pub spindles: Option<u64>,
    /// The devices under a mirrored disk: for `drbd`, its data and meta
    /// volumes (`plain` disks), as Ganeti keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Disk>,
    pub serial_no: u64,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
}

/// A virtual network card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Nic {
    pub uuid: String,
    pub name: Option<String>,
    pub mac: String,
    pub ip: Option<String>,
    pub network: Option<String>,
    /// `mode`, `link`, `vlan`.
    pub nicparams: ParamDict,
}

impl NodeGroup {
    /// A new group with Ganeti's defaults.
    pub fn new(uuid: &str, name: &str, now: Timestamp) -> Self {
        NodeGroup {
            uuid: uuid.to_string(),
            name: name.to_string(),
            alloc_policy: "preferred".to_string(),
            ndparams: Default::default(),
            diskparams: Default::default(),
            ipolicy: Default::default(),
            networks: BTreeMap::new(),
            tags: Vec::new(),
            serial_no: 1,
            ctime: now,
            mtime: now,
        }
    }
}

impl Node {
    /// A new online, vm-capable, master-capable node.
    pub fn new(uuid: &str, name: &str, primary_ip: &str, group: &str, now: Timestamp) -> Self {
        Node {
            uuid: uuid.to_string(),
            name: name.to_string(),
            primary_ip: primary_ip.to_string(),
            secondary_ip: primary_ip.to_string(),
            group: group.to_string(),
            master_candidate: true,
            offline: false,
            drained: false,
            master_capable: true,
            vm_capable: true,
            powered: true,
            ndparams: Default::default(),
            tags: Vec::new(),
            serial_no: 1,
            ctime: now,
            mtime: now,
        }
    }
}

/// Replication ports are taken from here up (Ganeti's `FIRST_DRBD_PORT`
/// and `LAST_DRBD_PORT`).
pub const FIRST_DRBD_PORT: u16 = 11000;
pub const LAST_DRBD_PORT: u16 = 14999;

fn first_drbd_port_minus_one() -> u16 {
    FIRST_DRBD_PORT - 1
}

impl Cluster {
    /// The cluster's volume group, if it has one.
    pub fn volume_group(&self) -> Option<&str> {
        Some(self.volume_group_name.as_str()).filter(|v| !v.is_empty())
    }

    /// Whether a disk template that lives on LVM (`plain`, `drbd`) is
    /// enabled.
    pub fn lvm_enabled(&self) -> bool {
        crate::enums::lvm_enabled(&self.enabled_disk_templates)
    }

    /// The cluster's default iallocator, if it has one.
    pub fn default_allocator(&self) -> Option<&str> {
        Some(self.default_iallocator.as_str()).filter(|a| !a.is_empty())
    }

    /// A new cluster with Ganeti's default parameters.
    pub fn new(uuid: &str, name: &str, master_node: &str, master_ip: &str, now: Timestamp) -> Self {
        use crate::params::*;
        Cluster {
            uuid: uuid.to_string(),
            cluster_name: name.to_string(),
            master_node: master_node.to_string(),
            master_ip: master_ip.to_string(),
            master_netdev: "lo".to_string(),
            master_netmask: 32,
            mac_prefix: "aa:00:00".to_string(),
            file_storage_dir: String::new(),
            shared_file_storage_dir: String::new(),
            enabled_hypervisors: vec!["fake".to_string()],
            enabled_disk_templates: vec!["file".to_string(), "diskless".to_string()],
            hvparams: crate::enums::KNOWN_HYPERVISORS
                .iter()
                .map(|h| (h.to_string(), default_hvparams(h)))
                .collect(),
            beparams: [("default".to_string(), default_beparams())].into(),
            nicparams: [("default".to_string(), default_nicparams())].into(),
            ndparams: default_ndparams(),
            diskparams: Default::default(),
            osparams: Default::default(),
            ipolicy: default_ipolicy(),
            candidate_pool_size: 10,
            default_iallocator: String::new(),
            maintain_node_health: false,
            uid_pool: Vec::new(),
            volume_group_name: String::new(),
            reserved_lvs: Vec::new(),
            tcpudp_port_pool: Vec::new(),
            highest_used_port: first_drbd_port_minus_one(),
            tags: Vec::new(),
            serial_no: 1,
            ctime: now,
            mtime: now,
        }
    }

    /// The instance's hypervisor parameters with the cluster's filled in.
    pub fn fill_hvparams(&self, inst: &Instance) -> ParamDict {
        match self.hvparams.get(inst.hypervisor.as_str()) {
            Some(base) => crate::params::fill(base, &inst.hvparams),
            None => inst.hvparams.clone(),
        }
    }

    /// The instance's backend parameters with the cluster's filled in.
    pub fn fill_beparams(&self, inst: &Instance) -> ParamDict {
        let mut be = match self.beparams.get("default") {
            Some(base) => crate::params::fill(base, &inst.beparams),
            None => inst.beparams.clone(),
        };
        // `memory` is the old name of maxmem/minmem.
        if let Some(m) = inst.beparams.get(crate::params::be::MEMORY).cloned() {
            be.insert(crate::params::be::MAXMEM.into(), m.clone());
            be.insert(crate::params::be::MINMEM.into(), m);
            be.remove(crate::params::be::MEMORY);
        }
        be
    }

    /// The NIC's parameters with the cluster's filled in.
    pub fn fill_nicparams(&self, nic: &Nic) -> ParamDict {
        match self.nicparams.get("default") {
            Some(base) => crate::params::fill(base, &nic.nicparams),
            None => nic.nicparams.clone(),
        }
    }
}

/// What a new cluster's configuration starts with: the cluster, its
/// default node group and the master node in it. `gnt-cluster init` makes
/// it and hands it to `ganeti-masterd --init` (as JSON), which stores it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FirstConfig {
    pub cluster: Cluster,
    pub nodegroup: NodeGroup,
    pub master: Node,
}

/// Why a [`FirstConfig`] does not describe a new cluster.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FirstConfigError {
    #[error(transparent)]
    Invalid(#[from] crate::validate::InvalidValue),
    #[error("the cluster's master node is '{cluster}', but the node given is '{node}'")]
    OtherMaster { cluster: String, node: String },
    #[error("the master node is in group '{node}', but the group given is '{group}'")]
    OtherGroup { node: String, group: String },
}

impl FirstConfig {
    /// Checks that the objects fit together: valid names, the cluster's
    /// master is the node given, and that node is in the group given.
    pub fn check(&self) -> Result<(), FirstConfigError> {
        use crate::validate::{check_group_name, check_host_name};
        check_host_name("cluster", &self.cluster.cluster_name)?;
        check_host_name("node", &self.master.name)?;
        check_group_name(&self.nodegroup.name)?;
        if self.cluster.master_node != self.master.uuid {
            return Err(FirstConfigError::OtherMaster {
                cluster: self.cluster.master_node.clone(),
                node: self.master.uuid.clone(),
            });
        }
        if self.master.group != self.nodegroup.uuid {
            return Err(FirstConfigError::OtherGroup {
                node: self.master.group.clone(),
                group: self.nodegroup.uuid.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first() -> FirstConfig {
        let nodegroup = NodeGroup::new("g", "default", 1.0);
        let master = Node::new("n", "node1", "127.0.0.1", "g", 1.0);
        let cluster = Cluster::new("c", "cluster.example.com", "n", "127.0.0.1", 1.0);
        FirstConfig {
            cluster,
            nodegroup,
            master,
        }
    }

    #[test]
    fn a_consistent_first_config_passes() {
        assert_eq!(first().check(), Ok(()));
    }

    #[test]
    fn a_first_config_whose_master_is_another_node_is_refused() {
        let mut f = first();
        f.cluster.master_node = "other".into();
        assert!(matches!(
            f.check(),
            Err(FirstConfigError::OtherMaster { .. })
        ));
    }

    #[test]
    fn a_first_config_whose_master_is_outside_the_group_is_refused() {
        let mut f = first();
        f.master.group = "other".into();
        assert!(matches!(
            f.check(),
            Err(FirstConfigError::OtherGroup { .. })
        ));
    }

    #[test]
    fn a_first_config_with_a_bad_cluster_name_is_refused() {
        let mut f = first();
        f.cluster.cluster_name = "-bad".into();
        assert!(matches!(f.check(), Err(FirstConfigError::Invalid(_))));
    }
}
