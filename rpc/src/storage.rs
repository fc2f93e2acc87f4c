//! Disks as the node RPC carries them: the description of one disk, as the
//! master sends it to a node, and what a node reports about its device.

use std::collections::BTreeMap;
use std::path::PathBuf;

use objects::{DiskMode, DiskTemplate};
use serde::{Deserialize, Serialize};

/// One disk of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskSpec {
    pub uuid: String,
    /// Position of the disk in the instance (0-based).
    pub index: usize,
    /// Size in MiB.
    pub size: u64,
    pub dev_type: DiskTemplate,
    /// Where the data lives. For `file` and `sharedfile` disks: the file's
    /// path as the cluster configuration knows it (absolute, without the
    /// node's `GANETI_ROOTDIR`); when absent the node derives the default
    /// `<storage dir>/<instance>/<uuid>.<template>.disk<index>`. For
    /// `plain` disks: `<volume group>/<volume>`. Unused by `drbd` disks
    /// (see [`DiskSpec::drbd`] and [`DiskSpec::children`]).
    #[serde(default)]
    pub logical_id: Option<String>,
    #[serde(default)]
    pub mode: DiskMode,
    #[serde(default)]
    pub name: Option<String>,
    /// Disk parameters of the template (free-form; for `drbd` the node
    /// reads `resync-rate`, KiB/s, as Ganeti's).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// The volumes under a mirrored disk, as Ganeti's: for `drbd`, the
    /// data volume then the meta volume, each a `plain` disk (a logical
    /// volume, where the cluster has a volume group) or a `file` disk.
    /// Empty: the node uses files in its file storage directory
    /// (`<instance>/<uuid>_data` and `_meta`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<DiskSpec>,
    /// For `drbd` disks: the replication link (Ganeti's logical id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd: Option<DrbdLink>,
}

/// The two ends of a `drbd` disk's replication, as Ganeti's logical id
/// `(node A, node B, port, minor A, minor B, secret)` without what this
/// implementation does not need: no kernel minors, and the cluster's
/// certificates (mutual TLS) instead of a shared secret.
///
/// Each node finds itself among `nodes` by its own name; the other one is
/// its peer. Which node is primary is not part of the link (it changes
/// with migrations): calls say it (`on_primary`, `primary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrbdLink {
    pub nodes: [DrbdEndpoint; 2],
    /// TCP port of the replication endpoint, the same on both nodes (from
    /// the cluster's port pool, as Ganeti's).
    pub port: u16,
}

/// One node of a replication link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrbdEndpoint {
    /// The node's name: its certificate must name it.
    pub node: String,
    /// The address replication uses: the node's secondary IP.
    pub ip: String,
}

/// What a node knows about a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The path the hypervisor uses, if the device has one.
    pub path: Option<PathBuf>,
    /// Current size in MiB (rounded down).
    pub size_mib: u64,
}

/// Health of a disk's local data (Ganeti's `ldisk` status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalDiskStatus {
    /// The local copy is whole and current.
    Okay,
    /// The local copy is not known to be whole: a replicated disk's copy
    /// that is being synced into, or was left half synced.
    Unknown,
    /// The local copy cannot be used (missing volume, dead daemon).
    Faulty,
}

/// Status of one disk on this node (`gnt-instance info`, Ganeti's
/// `blockdev_find` and `blockdev_getmirrorstatus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDevStatus {
    pub dev_path: Option<String>,
    /// Resync progress in percent, while a replicated disk syncs.
    pub sync_percent: Option<f64>,
    /// Seconds left of the resync, if known.
    pub estimated_time: Option<u64>,
    /// A replicated disk that does not have two current copies.
    pub is_degraded: bool,
    pub ldisk_status: LocalDiskStatus,
    /// For `drbd` disks: the state of the replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd: Option<DrbdStatus>,
}

/// The replication state of a `drbd` disk on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrbdStatus {
    /// Whether this node is the disk's primary (the sync source when the
    /// two copies differ).
    pub primary: bool,
    /// The node's storage daemon runs.
    pub daemon_running: bool,
    /// The peer's storage daemon answers on its replication address.
    pub peer_reachable: bool,
    /// Writes made here are copied to the peer as they happen.
    pub replicating: bool,
    /// Bytes written here that the peer does not have yet (while
    /// disconnected: what a resync will copy; during a full sync: what is
    /// left of it).
    pub out_of_sync_bytes: u64,
    /// A resync or full sync runs.
    pub syncing: bool,
    /// Why the disk is degraded, in words (`None` when it is not).
    pub problem: Option<String>,
}
