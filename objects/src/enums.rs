//! Domain enums that the configuration, the node RPC and the drivers share:
//! disk templates, disk access modes and NIC modes, with Ganeti's spellings;
//! which hypervisors and disk templates ganeti-rs implements.

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
    /// Every disk template Ganeti knows.
    pub const ALL: [DiskTemplate; 9] = {
        use DiskTemplate::*;
        [
            Diskless, File, SharedFile, Plain, Drbd, Blockdev, Rbd, Ext, Gluster,
        ]
    };

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

impl std::str::FromStr for DiskTemplate {
    type Err = UnknownDiskTemplate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DiskTemplate::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownDiskTemplate(s.to_string()))
    }
}

/// A name that is not one of Ganeti's disk templates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown disk template '{0}'")]
pub struct UnknownDiskTemplate(pub String);

impl fmt::Display for DiskTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hypervisor, as Ganeti names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Hypervisor {
    #[serde(rename = "xen-pvm")]
    XenPvm,
    #[serde(rename = "xen-hvm")]
    XenHvm,
    #[serde(rename = "kvm")]
    Kvm,
    #[serde(rename = "fake")]
    Fake,
    #[serde(rename = "chroot")]
    Chroot,
    #[serde(rename = "lxc")]
    Lxc,
}

impl Hypervisor {
    /// Every hypervisor Ganeti knows.
    pub const ALL: [Hypervisor; 6] = [
        Hypervisor::XenPvm,
        Hypervisor::XenHvm,
        Hypervisor::Kvm,
        Hypervisor::Fake,
        Hypervisor::Chroot,
        Hypervisor::Lxc,
    ];

    /// The name Ganeti uses (`kvm`, `xen-pvm`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Hypervisor::XenPvm => "xen-pvm",
            Hypervisor::XenHvm => "xen-hvm",
            Hypervisor::Kvm => "kvm",
            Hypervisor::Fake => "fake",
            Hypervisor::Chroot => "chroot",
            Hypervisor::Lxc => "lxc",
        }
    }

    /// Whether ganeti-rs has a driver for it.
    pub fn is_implemented(self) -> bool {
        KNOWN_HYPERVISORS.contains(&self.as_str())
    }
}

impl std::str::FromStr for Hypervisor {
    type Err = UnknownHypervisor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hypervisor::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| UnknownHypervisor(s.to_string()))
    }
}

impl fmt::Display for Hypervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of Ganeti's hypervisors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hypervisor '{0}'")]
pub struct UnknownHypervisor(pub String);

/// The hypervisors ganeti-rs implements.
pub const KNOWN_HYPERVISORS: &[&str] = &["fake", "kvm"];
/// The disk templates ganeti-rs can create.
pub const KNOWN_DISK_TEMPLATES: &[&str] = &["diskless", "file", "sharedfile", "plain", "drbd"];

/// Whether one of `templates` (names) needs the cluster's volume group:
/// `plain`. (`drbd` uses the volume group when the cluster has one, and
/// files in the file storage directory otherwise.)
pub fn lvm_enabled<S: AsRef<str>>(templates: &[S]) -> bool {
    templates.iter().any(|t| t.as_ref() == "plain")
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

/// How a NIC reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicMode {
    #[default]
    Bridged,
    Routed,
    Openvswitch,
}

impl NicMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NicMode::Bridged => "bridged",
            NicMode::Routed => "routed",
            NicMode::Openvswitch => "openvswitch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON spelling (config, node RPC) and `as_str` (CLI, queries)
    /// are the same for every variant.
    #[test]
    fn json_and_display_spellings_agree() {
        for t in DiskTemplate::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for h in Hypervisor::ALL {
            assert_eq!(serde_json::to_value(h).unwrap(), h.as_str());
            assert_eq!(h.as_str().parse::<Hypervisor>(), Ok(h));
        }
        for m in [DiskMode::Rw, DiskMode::Ro] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for m in [NicMode::Bridged, NicMode::Routed, NicMode::Openvswitch] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
    }
}
