//! What a node's hypervisors report: the run state of instances, the
//! node's memory and CPUs, consoles and migrations.

use serde::{Deserialize, Serialize};

/// Run state of an instance as its hypervisor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Running,
    Paused,
    Shutdown,
}

/// What a hypervisor knows about one of its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRuntimeInfo {
    pub name: String,
    /// Hypervisor-specific id (a domain id, a pid).
    pub id: String,
    /// Memory in use, MiB.
    pub memory: u64,
    pub vcpus: u32,
    pub state: InstanceState,
    /// CPU time used, seconds.
    pub cpu_time: f64,
}

/// Node resources as a hypervisor sees them (memory in MiB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HvNodeInfo {
    pub memory_total: u64,
    /// Memory available for new instances.
    pub memory_free: u64,
    /// Memory used by the node itself.
    pub memory_dom0: u64,
    /// Memory used by this hypervisor's instances.
    pub memory_instances: u64,
    pub cpu_total: u32,
    pub cpu_dom0: u32,
    pub cpu_nodes: u32,
    pub cpu_sockets: u32,
}

/// How to reach an instance's console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConsoleInfo {
    /// Nothing to connect to; a message for the user.
    Message { instance: String, message: String },
    /// Run a command on a node (e.g. `socat` on a serial socket).
    Ssh {
        instance: String,
        host: String,
        user: String,
        command: Vec<String>,
    },
    Vnc {
        instance: String,
        host: String,
        port: u16,
        display: u16,
    },
    Spice {
        instance: String,
        host: String,
        port: u16,
    },
}

/// State of a running migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStatus {
    /// `active`, `completed`, `failed`, `cancelled`.
    pub status: String,
    #[serde(default)]
    pub transferred_ram: Option<u64>,
    #[serde(default)]
    pub total_ram: Option<u64>,
    /// Time the migration took (or has taken so far), milliseconds.
    #[serde(default)]
    pub total_time_ms: Option<u64>,
    /// Time the guest was stopped for the switch-over, milliseconds.
    #[serde(default)]
    pub downtime_ms: Option<u64>,
}

/// What a hotplug does (Ganeti's `hotadd`, `hotdel`, `hotmod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HotplugAction {
    #[serde(rename = "hotadd")]
    Add,
    #[serde(rename = "hotdel")]
    Remove,
    #[serde(rename = "hotmod")]
    Modify,
}

impl HotplugAction {
    pub fn as_str(self) -> &'static str {
        match self {
            HotplugAction::Add => "hotadd",
            HotplugAction::Remove => "hotdel",
            HotplugAction::Modify => "hotmod",
        }
    }
}

/// The device a hotplug is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HotplugDevice {
    /// Disk `uuid`; for an addition, the disk as assembled on the node.
    Disk {
        uuid: String,
        #[serde(default)]
        attached: Option<crate::instance::AttachedDisk>,
    },
    /// A NIC (for a removal, as it was; otherwise as it is to be).
    Nic(crate::instance::NicSpec),
}

impl HotplugDevice {
    /// Ganeti's name of the device kind (`disk`, `nic`).
    pub fn kind(&self) -> &'static str {
        match self {
            HotplugDevice::Disk { .. } => "disk",
            HotplugDevice::Nic(_) => "nic",
        }
    }
}
