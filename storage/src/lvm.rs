//! LVM through lvm2's commands and their JSON reports: volume groups, the
//! logical volumes of `plain` disks, and the `plain` block device.
//!
//! A `plain` disk's logical id is `<vg>/<lv>`; Ganeti names the volume
//! `<disk uuid>.disk<N>` (the master chooses the name).
//!
//! Without device-mapper in the kernel (this project's test machines),
//! volume groups and volume metadata still work: every command then runs
//! with `global {activation=0}`, and activating a volume (assembling a
//! disk, which the guest needs) fails with an error that says so.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use tracing::debug;

use crate::error::{Result, StorageError};
use crate::{BlockDevice, DeviceInfo, DiskSpec, DiskTemplate};

/// Where the kernel's device-mapper is reached.
const DM_CONTROL: &str = "/dev/mapper/control";

/// One volume group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgInfo {
    pub name: String,
    pub size_mib: u64,
    pub free_mib: u64,
    pub pv_count: u64,
}

/// One logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvInfo {
    pub vg: String,
    pub name: String,
    pub size_mib: u64,
    /// lvm's attribute string (`-wi-a-----`).
    pub attr: String,
}

impl LvInfo {
    /// Whether the volume is active (has a device node).
    pub fn active(&self) -> bool {
        self.attr.as_bytes().get(4) == Some(&b'a')
    }
}

/// One physical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvInfo {
    /// Its device, e.g. `/dev/sdb1`.
    pub name: String,
    /// Its volume group; empty when in none.
    pub vg: String,
    pub size_mib: u64,
    pub free_mib: u64,
    /// Whether new extents may be allocated on it.
    pub allocatable: bool,
}

/// A logical volume and one physical device it lives on (a volume on
/// several devices appears once per device, as `gnt-node volumes` lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeOnDevice {
    pub vg: String,
    pub name: String,
    pub size_mib: u64,
    /// The physical device, e.g. `/dev/sdb1`.
    pub device: String,
}

/// The node's LVM.
#[derive(Debug, Clone)]
pub struct Lvm {
    /// Whether the kernel has device-mapper (volumes can be activated).
    device_mapper: bool,
}

impl Default for Lvm {
    fn default() -> Self {
        Lvm::new()
    }
}

/// Checks a volume group or logical volume name as lvm accepts it.
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    objects::validate::check_lvm_name(what, name).map_err(|e| StorageError::InvalidName {
        what,
        value: name.to_string(),
        reason: match e {
            objects::validate::InvalidValue::Name { why, .. } => why,
            _ => "it is not a valid name",
        },
    })
}

/// `"12.00"` (MiB, no suffix) as whole MiB, rounded down.
fn mib(field: &str, value: &str) -> Result<u64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
        .ok_or_else(|| StorageError::Lvm {
            command: "report".into(),
            message: format!("field {field} is not a size: '{value}'"),
        })
}

#[derive(Deserialize)]
struct Report<T> {
    report: Vec<T>,
}

#[derive(Deserialize)]
struct VgReport {
    vg: Vec<VgRow>,
}

#[derive(Deserialize)]
struct VgRow {
    vg_name: String,
    vg_size: String,
    vg_free: String,
    pv_count: String,
}

#[derive(Deserialize)]
struct PvReport {
    pv: Vec<PvRow>,
}

#[derive(Deserialize)]
struct PvRow {
    pv_name: String,
    vg_name: String,
    pv_size: String,
    pv_free: String,
    pv_attr: String,
}

#[derive(Deserialize)]
struct LvDevReport {
    lv: Vec<LvDevRow>,
}

#[derive(Deserialize)]
struct LvDevRow {
    lv_name: String,
    vg_name: String,
    lv_size: String,
    devices: String,
}

/// The devices of an `lvs -o devices` field: `/dev/sdb1(0),/dev/sdc1(12)`
/// gives `/dev/sdb1` and `/dev/sdc1`.
fn split_devices(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|d| d.split('(').next().unwrap_or(d).trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

#[derive(Deserialize)]
struct LvReport {
    lv: Vec<LvRow>,
}

#[derive(Deserialize)]
struct LvRow {
    lv_name: String,
    vg_name: String,
    lv_size: String,
    lv_attr: String,
}

impl Lvm {
    /// This node's LVM (device-mapper looked up once).
    pub fn new() -> Self {
        // The device node may exist without the driver behind it (open
        // then fails with ENODEV): only opening it tells.
        Lvm {
            device_mapper: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(DM_CONTROL)
                .is_ok(),
        }
    }

    /// Whether volumes can be activated on this node.
    pub fn can_activate(&self) -> bool {
        self.device_mapper
    }

    /// Runs an lvm command; its standard output, or its message on failure.
    fn run(&self, command: &str, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(command);
        if !self.device_mapper {
            cmd.args(["--config", "global {activation=0}"]);
        }
        // lvm complains about every inherited descriptor otherwise.
        cmd.args(args).env("LVM_SUPPRESS_FD_WARNINGS", "1");
        debug!(command, ?args, "running lvm");
        let out = cmd
            .output()
            .map_err(|e| StorageError::io("run", command, e))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let message = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("WARNING: Activation disabled"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StorageError::Lvm {
                command: format!("{command} {}", args.join(" ")),
                message: if message.is_empty() {
                    format!("exited with {}", out.status)
                } else {
                    message
                },
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A JSON report (`vgs`, `lvs`) of `fields`, sizes in MiB, of what
    /// `select` names (all when empty).
    fn report<T: for<'de> Deserialize<'de>>(
        &self,
        command: &str,
        fields: &str,
        select: &[&str],
    ) -> Result<Vec<T>> {
        let mut args = vec![
            "--reportformat",
            "json",
            "--units",
            "m",
            "--nosuffix",
            "-o",
            fields,
        ];
        args.extend_from_slice(select);
        let text = self.run(command, &args)?;
        let report: Report<T> = serde_json::from_str(&text).map_err(|e| StorageError::Lvm {
            command: command.to_string(),
            message: format!("unreadable JSON report: {e}"),
        })?;
        Ok(report.report)
    }

    /// The volume group `vg`, or `None` if this node has none of that name.
    pub fn vg(&self, vg: &str) -> Result<Option<VgInfo>> {
        check_name("volume group", vg)?;
        Ok(self.vgs()?.into_iter().find(|v| v.name == vg))
    }

    /// Every volume group of this node.
    pub fn vgs(&self) -> Result<Vec<VgInfo>> {
        let reports: Vec<VgReport> = self.report("vgs", "vg_name,vg_size,vg_free,pv_count", &[])?;
        reports
            .into_iter()
            .flat_map(|r| r.vg)
            .map(|row| {
                Ok(VgInfo {
                    size_mib: mib("vg_size", &row.vg_size)?,
                    free_mib: mib("vg_free", &row.vg_free)?,
                    pv_count: row.pv_count.trim().parse().unwrap_or(0),
                    name: row.vg_name,
                })
            })
            .collect()
    }

    /// The logical volumes of `vg`; an error if there is no such group.
    pub fn lvs(&self, vg: &str) -> Result<Vec<LvInfo>> {
        self.require_vg(vg)?;
        let reports: Vec<LvReport> =
            self.report("lvs", "lv_name,vg_name,lv_size,lv_attr", &[vg])?;
        reports
            .into_iter()
            .flat_map(|r| r.lv)
            .map(|row| {
                Ok(LvInfo {
                    size_mib: mib("lv_size", &row.lv_size)?,
                    vg: row.vg_name,
                    name: row.lv_name,
                    attr: row.lv_attr,
                })
            })
            .collect()
    }

    /// Every physical volume of this node.
    pub fn pvs(&self) -> Result<Vec<PvInfo>> {
        let reports: Vec<PvReport> =
            self.report("pvs", "pv_name,vg_name,pv_size,pv_free,pv_attr", &[])?;
        reports
            .into_iter()
            .flat_map(|r| r.pv)
            .map(|row| {
                Ok(PvInfo {
                    size_mib: mib("pv_size", &row.pv_size)?,
                    free_mib: mib("pv_free", &row.pv_free)?,
                    allocatable: row.pv_attr.starts_with('a'),
                    name: row.pv_name,
                    vg: row.vg_name,
                })
            })
            .collect()
    }

    /// Every logical volume of this node with the devices it lives on.
    pub fn volumes(&self) -> Result<Vec<VolumeOnDevice>> {
        let reports: Vec<LvDevReport> =
            self.report("lvs", "lv_name,vg_name,lv_size,devices", &[])?;
        let mut out = Vec::new();
        for row in reports.into_iter().flat_map(|r| r.lv) {
            let size_mib = mib("lv_size", &row.lv_size)?;
            for device in split_devices(&row.devices) {
                // lvs reports a volume once per segment: a grown volume
                // may have several on the same device.
                if out.iter().any(|v: &VolumeOnDevice| {
                    v.vg == row.vg_name && v.name == row.lv_name && v.device == device
                }) {
                    continue;
                }
                out.push(VolumeOnDevice {
                    vg: row.vg_name.clone(),
                    name: row.lv_name.clone(),
                    size_mib,
                    device,
                });
            }
        }
        Ok(out)
    }

    /// Allows or forbids new allocations on physical volume `pv`.
    pub fn set_allocatable(&self, pv: &str, allocatable: bool) -> Result<()> {
        if !self.pvs()?.iter().any(|p| p.name == pv) {
            return Err(StorageError::NoVolume(pv.to_string()));
        }
        self.run("pvchange", &["-x", if allocatable { "y" } else { "n" }, pv])?;
        Ok(())
    }

    /// Removes the missing physical volumes from group `vg`, as Ganeti's
    /// `fix-consistency` does (`vgreduce --removemissing`).
    pub fn repair_vg(&self, vg: &str) -> Result<()> {
        check_name("volume group", vg)?;
        self.require_vg(vg)?;
        self.run("vgreduce", &["--removemissing", vg])?;
        Ok(())
    }

    fn require_vg(&self, vg: &str) -> Result<VgInfo> {
        self.vg(vg)?
            .ok_or_else(|| StorageError::NoVolumeGroup(vg.to_string()))
    }

    /// Volume `lv` of `vg`, if it exists.
    pub fn lv(&self, vg: &str, lv: &str) -> Result<Option<LvInfo>> {
        check_name("logical volume", lv)?;
        Ok(self.lvs(vg)?.into_iter().find(|l| l.name == lv))
    }

    /// Creates volume `lv` of `size_mib` MiB in `vg`. Refused when the
    /// group lacks the space (with how much it has).
    pub fn create(&self, vg: &str, lv: &str, size_mib: u64) -> Result<LvInfo> {
        check_name("logical volume", lv)?;
        if size_mib == 0 {
            return Err(StorageError::InvalidSize(
                "a volume must not be 0 MiB".into(),
            ));
        }
        let group = self.require_vg(vg)?;
        if size_mib > group.free_mib {
            return Err(StorageError::NoSpace {
                vg: vg.to_string(),
                needed_mib: size_mib,
                free_mib: group.free_mib,
            });
        }
        let size = format!("{size_mib}m");
        let mut args = vec!["--yes", "-L", &size, "-n", lv];
        if !self.device_mapper {
            // Neither activation nor the zeroing that needs it.
            args.extend(["-an", "-Zn"]);
        }
        args.push(vg);
        self.run("lvcreate", &args)?;
        self.lv(vg, lv)?.ok_or_else(|| StorageError::Lvm {
            command: "lvcreate".into(),
            message: format!("{vg}/{lv} is not there after its creation"),
        })
    }

    /// Removes volume `lv` of `vg`; a volume that is not there is fine.
    pub fn remove(&self, vg: &str, lv: &str) -> Result<()> {
        if self.lv(vg, lv)?.is_none() {
            return Ok(());
        }
        self.run("lvremove", &["-f", &format!("{vg}/{lv}")])?;
        Ok(())
    }

    /// Renames volume `old` of `vg` to `new`.
    pub fn rename(&self, vg: &str, old: &str, new: &str) -> Result<()> {
        check_name("logical volume", new)?;
        if self.lv(vg, old)?.is_none() {
            return Err(StorageError::NoVolume(format!("{vg}/{old}")));
        }
        if self.lv(vg, new)?.is_some() {
            return Err(StorageError::VolumeExists(format!("{vg}/{new}")));
        }
        self.run("lvrename", &[vg, old, new])?;
        Ok(())
    }

    /// Grows volume `lv` of `vg` by `amount_mib` MiB (only the checks when
    /// `dry_run`).
    pub fn grow(&self, vg: &str, lv: &str, amount_mib: u64, dry_run: bool) -> Result<()> {
        if self.lv(vg, lv)?.is_none() {
            return Err(StorageError::NoVolume(format!("{vg}/{lv}")));
        }
        let group = self.require_vg(vg)?;
        if amount_mib > group.free_mib {
            return Err(StorageError::NoSpace {
                vg: vg.to_string(),
                needed_mib: amount_mib,
                free_mib: group.free_mib,
            });
        }
        if dry_run || amount_mib == 0 {
            return Ok(());
        }
        self.run(
            "lvextend",
            &["-L", &format!("+{amount_mib}m"), &format!("{vg}/{lv}")],
        )?;
        Ok(())
    }

    /// Activates volume `lv` of `vg`; returns its device path.
    pub fn activate(&self, vg: &str, lv: &str) -> Result<PathBuf> {
        if self.lv(vg, lv)?.is_none() {
            return Err(StorageError::NoVolume(format!("{vg}/{lv}")));
        }
        if !self.device_mapper {
            return Err(StorageError::NoDeviceMapper(format!("{vg}/{lv}")));
        }
        self.run("lvchange", &["-ay", &format!("{vg}/{lv}")])?;
        Ok(PathBuf::from("/dev").join(vg).join(lv))
    }
}

/// A `plain` disk: one logical volume.
#[derive(Debug, Clone)]
pub struct PlainDevice {
    lvm: Lvm,
    vg: String,
    lv: String,
}

impl PlainDevice {
    /// The device of `disk`, whose logical id is `<vg>/<lv>`.
    pub fn open(disk: &DiskSpec) -> Result<Self> {
        if disk.dev_type != DiskTemplate::Plain {
            return Err(StorageError::Unsupported(disk.dev_type));
        }
        let id = disk.logical_id.as_deref().unwrap_or_default();
        let (vg, lv) = id
            .split_once('/')
            .ok_or_else(|| StorageError::InvalidPath {
                path: id.to_string(),
                reason: "a plain disk's logical id is <volume group>/<volume>".into(),
            })?;
        check_name("volume group", vg)?;
        check_name("logical volume", lv)?;
        Ok(PlainDevice {
            lvm: Lvm::new(),
            vg: vg.to_string(),
            lv: lv.to_string(),
        })
    }

    fn name(&self) -> String {
        format!("{}/{}", self.vg, self.lv)
    }
}

impl BlockDevice for PlainDevice {
    fn create(&self, size_mib: u64) -> Result<PathBuf> {
        if let Some(lv) = self.lvm.lv(&self.vg, &self.lv)? {
            if lv.size_mib == size_mib {
                return Ok(PathBuf::from("/dev").join(&self.vg).join(&self.lv));
            }
            return Err(StorageError::VolumeExists(self.name()));
        }
        self.lvm.create(&self.vg, &self.lv, size_mib)?;
        Ok(PathBuf::from("/dev").join(&self.vg).join(&self.lv))
    }

    fn remove(&self) -> Result<()> {
        self.lvm.remove(&self.vg, &self.lv)
    }

    fn assemble(&self) -> Result<Option<PathBuf>> {
        self.lvm.activate(&self.vg, &self.lv).map(Some)
    }

    fn shutdown(&self) -> Result<()> {
        // As Ganeti's: a plain volume stays active while unused.
        Ok(())
    }

    fn grow(&self, amount_mib: u64, dry_run: bool) -> Result<()> {
        self.lvm.grow(&self.vg, &self.lv, amount_mib, dry_run)
    }

    fn exists(&self) -> Result<bool> {
        Ok(self.lvm.lv(&self.vg, &self.lv)?.is_some())
    }

    fn info(&self) -> Result<DeviceInfo> {
        let lv = self
            .lvm
            .lv(&self.vg, &self.lv)?
            .ok_or_else(|| StorageError::NoVolume(self.name()))?;
        Ok(DeviceInfo {
            path: lv
                .active()
                .then(|| PathBuf::from("/dev").join(&self.vg).join(&self.lv)),
            size_mib: lv.size_mib,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_lvm_does() {
        for ok in ["xenvg", "a1b2c3d4-0000.disk0", "vg_1+x"] {
            assert!(check_name("logical volume", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".", "..", "a/b", "a b", "ä"] {
            assert!(check_name("logical volume", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reports_are_read_in_mib() {
        let text = r#"{"report": [{"lv": [
            {"lv_name": "u.disk0", "vg_name": "xenvg", "lv_size": "1024.00", "lv_attr": "-wi-a-----"},
            {"lv_name": "u.disk1", "vg_name": "xenvg", "lv_size": "12.50", "lv_attr": "-wi-------"}
        ]}]}"#;
        let r: Report<LvReport> = serde_json::from_str(text).unwrap();
        let rows = &r.report[0].lv;
        assert_eq!(mib("lv_size", &rows[0].lv_size).unwrap(), 1024);
        assert_eq!(mib("lv_size", &rows[1].lv_size).unwrap(), 12);
        assert!(mib("lv_size", "lots").is_err());
        let lv = |attr: &str| LvInfo {
            vg: "v".into(),
            name: "l".into(),
            size_mib: 1,
            attr: attr.into(),
        };
        assert!(lv("-wi-a-----").active());
        assert!(!lv("-wi-------").active());
        assert!(!lv("-wi-XX----").active());
    }

    #[test]
    fn a_volume_lists_each_device_it_lives_on() {
        assert_eq!(
            split_devices("/dev/loop3(0),/dev/loop4(12)"),
            vec!["/dev/loop3", "/dev/loop4"]
        );
        assert_eq!(split_devices(""), Vec::<String>::new());
        let text = r#"{"report": [{"pv": [
            {"pv_name": "/dev/loop3", "vg_name": "xenvg", "pv_size": "60.00", "pv_free": "44.00", "pv_attr": "a--"},
            {"pv_name": "/dev/loop4", "vg_name": "", "pv_size": "64.00", "pv_free": "64.00", "pv_attr": "---"}
        ]}]}"#;
        let r: Report<PvReport> = serde_json::from_str(text).unwrap();
        assert!(r.report[0].pv[0].pv_attr.starts_with('a'));
        assert!(!r.report[0].pv[1].pv_attr.starts_with('a'));
    }

    #[test]
    fn a_plain_disk_names_its_group_and_volume() {
        let disk = |id: Option<&str>| DiskSpec {
            uuid: "u".into(),
            index: 0,
            size: 16,
            dev_type: DiskTemplate::Plain,
            logical_id: id.map(str::to_string),
            mode: Default::default(),
            name: None,
            params: Default::default(),
            children: Vec::new(),
            drbd: None,
        };
        let dev = PlainDevice::open(&disk(Some("xenvg/u.disk0"))).unwrap();
        assert_eq!((dev.vg.as_str(), dev.lv.as_str()), ("xenvg", "u.disk0"));
        for bad in [None, Some("xenvg"), Some("xenvg/a/b"), Some("/u.disk0")] {
            assert!(PlainDevice::open(&disk(bad)).is_err(), "{bad:?}");
        }
    }
}
