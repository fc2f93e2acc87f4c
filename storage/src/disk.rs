//! The description of one disk, as the master sends it to a node.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of storage behind a disk (Ganeti's disk template / `dev_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskTemplate {
    Diskless,
    File,
    #[serde(rename = "sharedfile")]
    SharedFile,
    Plain,
    Drbd,
    Blockdev,
    Rbd,
    Ext,
    Gluster,
}

impl DiskTemplate {
    /// The name Ganeti uses (`file`, `sharedfile`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskTemplate::Diskless => "diskless",
            DiskTemplate::File => "file",
            DiskTemplate::SharedFile => "sharedfile",
            DiskTemplate::Plain => "plain",
            DiskTemplate::Drbd => "drbd",
            DiskTemplate::Blockdev => "blockdev",
            DiskTemplate::Rbd => "rbd",
            DiskTemplate::Ext => "ext",
            DiskTemplate::Gluster => "gluster",
        }
    }

    /// Whether disks of this kind are plain files on the node.
    pub fn is_file_based(self) -> bool {
        matches!(self, DiskTemplate::File | DiskTemplate::SharedFile)
    }
}

impl fmt::Display for DiskTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the hypervisor exports a disk to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskMode {
    #[default]
    Rw,
    Ro,
}

impl DiskMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskMode::Rw => "rw",
            DiskMode::Ro => "ro",
        }
    }
}

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
