//! Runtime state of KVM instances on one node, laid out as Ganeti's under
//! `var/run/ganeti/kvm-hypervisor/`:
//!
//! - `pid/<instance>`: QEMU's pid file;
//! - `ctrl/<instance>.qmp`, `ctrl/<instance>.serial`: QMP and serial sockets;
//! - `conf/<instance>.runtime`: the [`KvmRuntime`] (JSON), enough to start
//!   the same device set again (on a migration target);
//! - `nic/<instance>/<index>`: the tap device of each NIC.
//!
//! QEMU's own messages go to `var/log/ganeti/kvm/<instance>.log`, the
//! guest's serial console to `var/log/ganeti/kvm/<instance>.serial`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use objects::paths::Paths;
use serde::{Deserialize, Serialize};

use crate::error::{HypervisorError, Result};
use crate::{AttachedDisk, HvParams, InstanceSpec, NicSpec};

/// Longest path a unix socket address can hold (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The runtime directories of the KVM hypervisor of one node.
#[derive(Debug, Clone)]
pub struct KvmDirs {
    base: PathBuf,
    log: PathBuf,
}

impl KvmDirs {
    pub fn new(paths: &Paths) -> Self {
        // QEMU runs from `/` once daemonized: its paths must be absolute.
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        KvmDirs {
            base: abs(paths.hypervisor_run_dir("kvm")),
            log: abs(paths.log_dir().join("kvm")),
        }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    fn pid_dir(&self) -> PathBuf {
        self.base.join("pid")
    }

    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.pid_dir().join(name)
    }

    pub fn qmp_socket(&self, name: &str) -> PathBuf {
        self.base.join("ctrl").join(format!("{name}.qmp"))
    }

    pub fn serial_socket(&self, name: &str) -> PathBuf {
        self.base.join("ctrl").join(format!("{name}.serial"))
    }

    pub fn runtime_file(&self, name: &str) -> PathBuf {
        self.base.join("conf").join(format!("{name}.runtime"))
    }

    pub fn nic_dir(&self, name: &str) -> PathBuf {
        self.base.join("nic").join(name)
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.log.join(format!("{name}.log"))
    }

    /// Everything the guest wrote to its serial console, whether or not a
    /// console was connected: appended to by each QEMU of the instance on
    /// this node (a migration target continues it); a fresh start moves
    /// the last one to `<instance>.serial.old`.
    pub fn serial_log(&self, name: &str) -> PathBuf {
        self.log.join(format!("{name}.serial"))
    }

    /// Creates the directories; refuses socket paths too long for a unix
    /// socket (a deep `GANETI_ROOTDIR` or a long instance name).
    pub fn prepare(&self, name: &str) -> Result<()> {
        for dir in ["pid", "ctrl", "conf", "nic"] {
            let d = self.base.join(dir);
            fs::create_dir_all(&d).map_err(|e| HypervisorError::io("create", &d, e))?;
        }
        fs::create_dir_all(&self.log).map_err(|e| HypervisorError::io("create", &self.log, e))?;
        for sock in [self.qmp_socket(name), self.serial_socket(name)] {
            let len = sock.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(HypervisorError::Failed(format!(
                    "socket path '{}' is {len} bytes long, more than the {MAX_SOCKET_PATH} a unix socket allows",
                    sock.display()
                )));
            }
        }
        Ok(())
    }

    /// Names of the instances with a pid file, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let dir = self.pid_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(HypervisorError::io("list", &dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| HypervisorError::io("list", &dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if !name.starts_with('.') {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes the files an instance left (not the log).
    pub fn remove(&self, name: &str) -> Result<()> {
        for f in [
            self.pid_file(name),
            self.qmp_socket(name),
            self.serial_socket(name),
            self.runtime_file(name),
        ] {
            remove_file(&f)?;
        }
        let nic = self.nic_dir(name);
        match fs::remove_dir_all(&nic) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HypervisorError::io("remove", &nic, e)),
        }
    }
}

/// Removes `path`; a missing file is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HypervisorError::io("remove", path, e)),
    }
}

/// What defines an instance's virtual hardware: the same launch spec gives
/// the same device set on any node (a migration needs that).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub name: String,
    pub uuid: String,
    /// Maximum memory, MiB (`-m`).
    pub maxmem: u64,
    pub vcpus: u32,
    pub hvparams: HvParams,
    pub disks: Vec<AttachedDisk>,
    pub nics: Vec<NicSpec>,
    /// KiB of RAM beyond `maxmem`, decided when the instance boots and
    /// kept across migrations (both sides need the same RAM size): see
    /// [`crate::kvm::qemu::TCG_RAM_PAD_KIB`].
    #[serde(default)]
    pub ram_pad_kib: u64,
    /// The QEMU device of each disk, in disk order, once the devices are
    /// pinned (by the instance's first hotplug); empty: by position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disk_devs: Vec<DevSlot>,
    /// The same for the NICs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nic_devs: Vec<DevSlot>,
}

/// The QEMU device of one disk or NIC: its ids and PCI slot, kept so that
/// a migration target creates the same devices at the same addresses
/// after hotplugs changed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevSlot {
    /// What follows `disk`, `nic` or `net` in the device's ids: the
    /// position at boot (`0`) or `-<uuid prefix>` for a hotplugged one
    /// (Ganeti's `disk-932df160-7a22-4067`).
    pub suffix: String,
    /// Its slot on bus `pci.0`, when it is a PCI device.
    #[serde(default)]
    pub addr: Option<u8>,
    /// Its drive was made by `blockdev-add` (and goes by `blockdev-del`),
    /// not by `-drive`.
    #[serde(default)]
    pub blockdev: bool,
}

impl DevSlot {
    /// The id of a hotplugged device's kind (`disk`, `nic`) and `uuid`.
    pub fn hotplugged(uuid: &str) -> Self {
        // The UUID up to its third '-': QEMU ids are kept short.
        let prefix = uuid.rsplitn(3, '-').last().unwrap_or(uuid);
        DevSlot {
            suffix: format!("-{prefix}"),
            addr: None,
            blockdev: false,
        }
    }

    fn by_position(pos: usize) -> Self {
        DevSlot {
            suffix: pos.to_string(),
            addr: None,
            blockdev: false,
        }
    }
}

impl LaunchSpec {
    pub fn new(instance: &InstanceSpec, disks: &[AttachedDisk]) -> Self {
        let mut disks = disks.to_vec();
        disks.sort_by_key(|d| d.index);
        LaunchSpec {
            name: instance.name.clone(),
            uuid: instance.uuid.clone(),
            maxmem: instance.beparams.maxmem,
            vcpus: instance.beparams.vcpus.max(1),
            hvparams: instance.hvparams.clone(),
            disks,
            nics: instance.nics.clone(),
            ram_pad_kib: 0,
            disk_devs: Vec::new(),
            nic_devs: Vec::new(),
        }
    }

    /// The device of the disk at position `pos`.
    pub fn disk_dev(&self, pos: usize) -> DevSlot {
        self.disk_devs
            .get(pos)
            .cloned()
            .unwrap_or_else(|| DevSlot::by_position(self.disks.get(pos).map_or(pos, |d| d.index)))
    }

    /// The device of the NIC at position `pos`.
    pub fn nic_dev(&self, pos: usize) -> DevSlot {
        self.nic_devs
            .get(pos)
            .cloned()
            .unwrap_or_else(|| DevSlot::by_position(pos))
    }
}

/// The runtime file of a running instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvmRuntime {
    pub launch: LaunchSpec,
    /// The QEMU binary that runs it.
    pub kvm_path: PathBuf,
    /// QEMU's arguments (after the binary), for the record.
    pub argv: Vec<String>,
    /// Tap device of each NIC, in NIC order.
    #[serde(default)]
    pub taps: Vec<String>,
    /// Memory the guest was last given (balloon), MiB.
    pub memory: u64,
    /// A migration target waiting for (or receiving) the instance; not
    /// listed as running until the migration is finalized.
    #[serde(default)]
    pub incoming: bool,
    /// In migration info: whether the source ran (not paused) when the
    /// migration began, so the target resumes it.
    #[serde(default)]
    pub was_running: Option<bool>,
}

impl KvmRuntime {
    /// Reads the runtime file of `name`; `None` when there is none.
    pub fn load(dirs: &KvmDirs, name: &str) -> Result<Option<Self>> {
        let path = dirs.runtime_file(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(HypervisorError::io("read", &path, e)),
        };
        Self::parse(&text).map(Some).map_err(|e| {
            HypervisorError::Failed(format!("bad runtime file '{}': {e}", path.display()))
        })
    }

    /// Parses runtime JSON (a runtime file or migration info).
    pub fn parse(text: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        // Plain data: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the runtime file atomically (write, then rename).
    pub fn save(&self, dirs: &KvmDirs) -> Result<()> {
        let path = dirs.runtime_file(&self.launch.name);
        let tmp = path.with_extension("runtime.tmp");
        fs::write(&tmp, self.to_json()).map_err(|e| HypervisorError::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| HypervisorError::io("rename", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_ganetis_under_the_root() {
        let dirs = KvmDirs::new(&Paths::new("/r"));
        assert_eq!(
            dirs.pid_file("i1"),
            Path::new("/r/var/run/ganeti/kvm-hypervisor/pid/i1")
        );
        assert_eq!(
            dirs.qmp_socket("i1"),
            Path::new("/r/var/run/ganeti/kvm-hypervisor/ctrl/i1.qmp")
        );
        assert_eq!(
            dirs.runtime_file("i1"),
            Path::new("/r/var/run/ganeti/kvm-hypervisor/conf/i1.runtime")
        );
    }

    #[test]
    fn too_long_socket_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = KvmDirs::new(&Paths::new(tmp.path()));
        let err = dirs.prepare(&"x".repeat(100)).unwrap_err().to_string();
        assert!(err.contains("unix socket"), "{err}");
        dirs.prepare("short").unwrap();
    }
}
