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
    /// `<storage dir>/<instance>/<uuid>.<template>.disk<index>`.
    #[serde(default)]
    pub logical_id: Option<String>,
    #[serde(default)]
    pub mode: DiskMode,
    #[serde(default)]
    pub name: Option<String>,
    /// Disk parameters of the template (free-form).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// What a node knows about a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The path the hypervisor uses, if the device has one.
    pub path: Option<PathBuf>,
    /// Current size in MiB (rounded down).
    pub size_mib: u64,
}
