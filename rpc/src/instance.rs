//! The description of an instance that a node needs to run it.

use std::collections::BTreeMap;

use objects::{DiskMode, NicMode};
use serde::{Deserialize, Serialize};

use crate::storage::DiskSpec;

/// Hypervisor parameters: name to JSON value, as in the cluster config.
pub type HvParams = BTreeMap<String, serde_json::Value>;

/// Backend parameters (already filled from cluster and group defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeParams {
    /// Maximum memory in MiB (`memory` is accepted as Ganeti's old name).
    #[serde(alias = "memory")]
    pub maxmem: u64,
    /// Minimum memory in MiB; defaults to `maxmem`.
    #[serde(default)]
    pub minmem: Option<u64>,
    pub vcpus: u32,
    #[serde(default = "default_true")]
    pub auto_balance: bool,
    #[serde(default)]
    pub always_failover: bool,
    #[serde(default = "default_one")]
    pub spindle_use: u32,
}

fn default_true() -> bool {
    true
}

fn default_one() -> u32 {
    1
}

impl BeParams {
    /// The minimum memory, `maxmem` when unset.
    pub fn min_memory(&self) -> u64 {
        self.minmem.unwrap_or(self.maxmem).min(self.maxmem)
    }
}

/// One network interface of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NicSpec {
    pub mac: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub mode: NicMode,
    /// Bridge (bridged), routing table (routed) or switch (openvswitch).
    #[serde(default)]
    pub link: String,
    /// Name of the network the NIC is connected to, if any.
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vlan: Option<String>,
}

/// An instance as the node sees it: everything needed to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub name: String,
    pub uuid: String,
    pub primary_node: String,
    #[serde(default)]
    pub secondary_nodes: Vec<String>,
    /// Hypervisor name (`fake`, `kvm`, ...).
    pub hypervisor: String,
    #[serde(default)]
    pub hvparams: HvParams,
    pub beparams: BeParams,
    /// OS name, with the variant after `+` (`debootstrap+bookworm`).
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub osparams: BTreeMap<String, String>,
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A disk ready for the hypervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachedDisk {
    pub index: usize,
    /// Local path (file or block device), if the disk has one.
    pub path: Option<std::path::PathBuf>,
    /// User-space URI (e.g. an NBD or RBD address), if any; a hypervisor
    /// that can use it prefers it to `path`. A `drbd` disk's is
    /// `nbd://<ip>:<port>/<export>`, its node's storage daemon.
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub mode: DiskMode,
    /// TLS that the client of `uri` must speak, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<DiskTls>,
}

/// How a client reaches a disk's `uri` over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskTls {
    /// Directory of the client's credentials in QEMU's `tls-creds-x509`
    /// layout (`ca-cert.pem`, `client-cert.pem`, `client-key.pem`).
    pub creds_dir: std::path::PathBuf,
    /// The name the server's certificate must carry.
    pub hostname: String,
}
