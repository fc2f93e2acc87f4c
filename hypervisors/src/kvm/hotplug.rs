//! Hotplug of disks and NICs into a running QEMU, as Ganeti's `hv_kvm`:
//! a disk is `blockdev-add`ed and `device_add`ed as `virtio-blk-pci`; a
//! NIC gets its tap, then `netdev_add` and `device_add`; a removal is
//! `device_del` (the guest ejects the device), then the drive or netdev
//! and the tap go. A NIC is modified by re-plugging it at the same slot.
//!
//! The runtime file follows each change: the first hotplug pins every
//! disk and NIC to the PCI slot QEMU gave it (`query-pci`), a hotplugged
//! device takes a free slot above all used ones, and a migration target
//! is started with the same devices at the same slots (see
//! [`super::runtime::DevSlot`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::info;

use super::params::KvmParams;
use super::runtime::{DevSlot, KvmRuntime};
use super::{nics, KvmHypervisor};
use crate::error::{HypervisorError, Result};
use crate::qmp::Qmp;
use crate::{AttachedDisk, HotplugAction, HotplugDevice, InstanceSpec, NicSpec};

/// How long the guest may take to eject a device after `device_del`.
const UNPLUG_TIMEOUT: Duration = Duration::from_secs(30);
/// How often QEMU is asked whether an unplugged device is gone.
const UNPLUG_POLL: Duration = Duration::from_millis(50);
/// PCI slots on bus 0.
const PCI_SLOTS: u8 = 32;

/// The NIC models that sit on the PCI bus (all but `ne2k_isa`), as
/// QEMU's driver names.
fn nic_driver(nic_type: &str) -> Option<&str> {
    match nic_type {
        "paravirtual" => Some("virtio-net-pci"),
        "ne2k_isa" => None,
        other => Some(other),
    }
}

fn unsupported(msg: impl Into<String>) -> HypervisorError {
    HypervisorError::Hotplug(msg.into())
}

/// The devices on bus `pci.0`: qdev id (if any) to slot, and the used
/// slots.
fn pci_devices(
    q: &mut Qmp,
) -> std::result::Result<(BTreeMap<String, u8>, Vec<u8>), crate::qmp::QmpError> {
    let buses = q.execute("query-pci", None)?;
    let mut ids = BTreeMap::new();
    let mut used = Vec::new();
    let bus0 = buses
        .as_array()
        .and_then(|b| b.iter().find(|b| b["bus"] == 0))
        .and_then(|b| b["devices"].as_array())
        .cloned()
        .unwrap_or_default();
    for d in bus0 {
        let Some(slot) = d["slot"].as_u64().and_then(|s| u8::try_from(s).ok()) else {
            continue;
        };
        used.push(slot);
        if let Some(id) = d["qdev_id"].as_str().filter(|i| !i.is_empty()) {
            ids.insert(id.to_string(), slot);
        }
    }
    Ok((ids, used))
}

/// The first free slot above every used one.
fn free_slot(used: &[u8]) -> Option<u8> {
    let next = used.iter().max().map_or(0, |m| m + 1);
    (next < PCI_SLOTS).then_some(next)
}

impl KvmHypervisor {
    /// Ganeti's `HotplugSupported`: the instance must run here.
    pub(super) fn hotplug_supported_impl(&self, instance: &InstanceSpec) -> Result<()> {
        Self::check_name(&instance.name)?;
        if self.live_pid(&instance.name).is_none() {
            return Err(unsupported("Instance is probably down"));
        }
        self.qmp_command(&instance.name, "query-version", None)
            .map_err(|_| unsupported("Instance is probably down"))?;
        Ok(())
    }

    pub(super) fn hotplug_device_impl(
        &self,
        instance: &InstanceSpec,
        action: HotplugAction,
        device: &HotplugDevice,
        seq: usize,
    ) -> Result<()> {
        let name = &instance.name;
        Self::check_name(name)?;
        let _guard = self.instance_lock(name);
        if self.live_pid(name).is_none() {
            return Err(unsupported("Instance is probably down"));
        }
        let mut rt = KvmRuntime::load(&self.dirs, name)?
            .ok_or_else(|| unsupported(format!("instance '{name}' has no runtime file")))?;
        if rt.incoming {
            return Err(unsupported(format!(
                "instance '{name}' is the target of a migration"
            )));
        }
        // Ganeti's VerifyHotplugSupport: the device type must be one that
        // can be hotplugged.
        let params = KvmParams::parse(&rt.launch.hvparams)?;
        match device {
            HotplugDevice::Disk { .. } if params.disk_type != "paravirtual" => {
                return Err(unsupported(format!(
                    "Hotplug is not supported for device type {}",
                    params.disk_type
                )))
            }
            HotplugDevice::Nic(_) if nic_driver(&params.nic_type).is_none() => {
                return Err(unsupported(format!(
                    "Hotplug is not supported for device type {}",
                    params.nic_type
                )))
            }
            _ => {}
        }
        self.pin_devices(&mut rt, &params)?;
        match (action, device) {
            (HotplugAction::Add, HotplugDevice::Disk { uuid, attached }) => {
                let disk = attached.as_ref().ok_or_else(|| {
                    HypervisorError::Failed(format!(
                        "hot-adding disk {seq} of instance '{name}': the node sent no assembled disk"
                    ))
                })?;
                self.hot_add_disk(&mut rt, &params, uuid, disk, seq)?
            }
            (HotplugAction::Remove, HotplugDevice::Disk { .. }) => {
                self.hot_del_disk(&mut rt, seq)?
            }
            (HotplugAction::Modify, HotplugDevice::Disk { .. }) => {
                return Err(unsupported("disks cannot be hot-modified"))
            }
            (HotplugAction::Add, HotplugDevice::Nic(nic)) => {
                self.hot_add_nic(&mut rt, &params, nic, seq, None)?
            }
            (HotplugAction::Remove, HotplugDevice::Nic(nic)) => {
                self.hot_del_nic(&mut rt, nic, seq)?;
            }
            (HotplugAction::Modify, HotplugDevice::Nic(nic)) => {
                // Re-plugged at the same position and slot, as Ganeti's.
                let pos = self.hot_del_nic(&mut rt, nic, seq)?;
                self.hot_add_nic(&mut rt, &params, nic, pos.0, pos.1)?
            }
        }
        rt.save(&self.dirs)?;
        self.write_nic_files(name, &rt.taps)?;
        info!(instance = %name, action = action.as_str(), device = device.kind(), seq, "hotplug done");
        Ok(())
    }

    /// Records the id and PCI slot of every disk and NIC (once: the
    /// first hotplug), so that they keep them on a migration target.
    fn pin_devices(&self, rt: &mut KvmRuntime, params: &KvmParams) -> Result<()> {
        let name = rt.launch.name.clone();
        let (ids, _) = self.with_qmp(&name, super::QMP_TIMEOUT, pci_devices)?;
        let l = &mut rt.launch;
        if l.disk_devs.len() != l.disks.len() {
            l.disk_devs = (0..l.disks.len()).map(|i| l.disk_dev(i)).collect();
        }
        if l.nic_devs.len() != l.nics.len() {
            l.nic_devs = (0..l.nics.len()).map(|i| l.nic_dev(i)).collect();
        }
        if params.disk_type == "paravirtual" {
            for d in &mut l.disk_devs {
                d.addr = d
                    .addr
                    .or(ids.get(&format!("disk{}-dev", d.suffix)).copied());
            }
        }
        if nic_driver(&params.nic_type).is_some() {
            for d in &mut l.nic_devs {
                d.addr = d.addr.or(ids.get(&format!("nic{}", d.suffix)).copied());
            }
        }
        Ok(())
    }

    /// A free PCI slot for a new device.
    fn new_slot(&self, name: &str) -> Result<u8> {
        let (_, used) = self.with_qmp(name, super::QMP_TIMEOUT, pci_devices)?;
        free_slot(&used).ok_or_else(|| {
            HypervisorError::Failed(format!("instance '{name}' has no free PCI slot left"))
        })
    }

    /// Asks the guest to eject device `id` and waits until QEMU has
    /// removed it.
    fn unplug(&self, name: &str, id: &str) -> Result<()> {
        self.qmp_command(name, "device_del", Some(json!({"id": id})))?;
        let deadline = Instant::now() + UNPLUG_TIMEOUT;
        loop {
            let (ids, _) = self.with_qmp(name, super::QMP_TIMEOUT, pci_devices)?;
            if !ids.contains_key(id) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HypervisorError::Failed(format!(
                    "Device {id} should have been removed but is still there (the guest of \
                     instance '{name}' did not eject it within {}s)",
                    UNPLUG_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(UNPLUG_POLL);
        }
    }

    fn hot_add_disk(
        &self,
        rt: &mut KvmRuntime,
        params: &KvmParams,
        uuid: &str,
        disk: &AttachedDisk,
        seq: usize,
    ) -> Result<()> {
        let name = rt.launch.name.clone();
        let path = match (&disk.path, &disk.uri) {
            (Some(path), None) => path.clone(),
            _ => {
                return Err(unsupported(
                    "disks reached over a URI (drbd disks) cannot be hotplugged by ganeti-rs",
                ))
            }
        };
        let pos = seq.min(rt.launch.disks.len());
        let mut dev = DevSlot::hotplugged(uuid);
        dev.blockdev = true;
        let slot = self.new_slot(&name)?;
        dev.addr = Some(slot);
        let node = format!("disk{}", dev.suffix);
        let mut file = json!({"driver": "file", "filename": path});
        if params.disk_cache == "none" {
            file["cache"] = json!({"direct": true});
        }
        let read_only = disk.mode == objects::DiskMode::Ro;
        self.qmp_command(
            &name,
            "blockdev-add",
            Some(json!({"driver": "raw", "node-name": node, "read-only": read_only, "file": file})),
        )?;
        let added = self.qmp_command(
            &name,
            "device_add",
            Some(json!({
                "driver": "virtio-blk-pci",
                "id": format!("{node}-dev"),
                "drive": node,
                "bus": "pci.0",
                "addr": format!("0x{slot:x}"),
            })),
        );
        if let Err(e) = added {
            let _ = self.qmp_command(&name, "blockdev-del", Some(json!({"node-name": node})));
            return Err(e);
        }
        let mut disk = disk.clone();
        disk.index = seq;
        rt.launch.disks.insert(pos, disk);
        rt.launch.disk_devs.insert(pos, dev);
        renumber_disks(&mut rt.launch.disks);
        Ok(())
    }

    fn hot_del_disk(&self, rt: &mut KvmRuntime, seq: usize) -> Result<()> {
        let name = rt.launch.name.clone();
        let pos = rt
            .launch
            .disks
            .iter()
            .position(|d| d.index == seq)
            .ok_or_else(|| {
                HypervisorError::Failed(format!(
                    "instance '{name}' runs without a disk {seq}: nothing to unplug"
                ))
            })?;
        let dev = rt.launch.disk_dev(pos);
        let node = format!("disk{}", dev.suffix);
        self.unplug(&name, &format!("{node}-dev"))?;
        if dev.blockdev {
            // A drive of `-drive` goes with its device; one of
            // `blockdev-add` must be deleted.
            self.qmp_command(&name, "blockdev-del", Some(json!({"node-name": node})))?;
        }
        rt.launch.disks.remove(pos);
        rt.launch.disk_devs.remove(pos);
        renumber_disks(&mut rt.launch.disks);
        Ok(())
    }

    /// Plugs `nic` in at position `seq` (at `slot` when given).
    fn hot_add_nic(
        &self,
        rt: &mut KvmRuntime,
        params: &KvmParams,
        nic: &NicSpec,
        seq: usize,
        slot: Option<u8>,
    ) -> Result<()> {
        let name = rt.launch.name.clone();
        let driver = nic_driver(&params.nic_type).unwrap_or("virtio-net-pci");
        let pos = seq.min(rt.launch.nics.len());
        // A tap name no NIC of the instance uses.
        let tap = (0..)
            .map(|k| nics::tap_name(self.paths.root(), &name, k))
            .find(|t| !rt.taps.contains(t))
            .unwrap_or_default();
        let mut dev = DevSlot::hotplugged(nic.uuid.as_deref().unwrap_or(&nic.mac));
        let slot = match slot {
            Some(s) => s,
            None => self.new_slot(&name)?,
        };
        dev.addr = Some(slot);
        nics::setup_tap(&name, pos, nic, &tap)?;
        let netdev = format!("net{}", dev.suffix);
        let plugged = self
            .qmp_command(
                &name,
                "netdev_add",
                Some(json!({"type": "tap", "id": netdev, "ifname": tap, "script": "no", "downscript": "no"})),
            )
            .and_then(|_| {
                self.qmp_command(
                    &name,
                    "device_add",
                    Some(json!({
                        "driver": driver,
                        "id": format!("nic{}", dev.suffix),
                        "netdev": netdev,
                        "mac": nic.mac,
                        "bus": "pci.0",
                        "addr": format!("0x{slot:x}"),
                    })),
                )
                .inspect_err(|_| {
                    let _ = self.qmp_command(&name, "netdev_del", Some(json!({"id": netdev})));
                })
            });
        if let Err(e) = plugged {
            nics::remove_tap(&tap);
            return Err(e);
        }
        rt.launch.nics.insert(pos, nic.clone());
        rt.launch.nic_devs.insert(pos, dev);
        rt.taps.insert(pos, tap);
        Ok(())
    }

    /// Unplugs the NIC `nic` (found by UUID, else MAC, else position
    /// `seq`); returns its position and slot.
    fn hot_del_nic(
        &self,
        rt: &mut KvmRuntime,
        nic: &NicSpec,
        seq: usize,
    ) -> Result<(usize, Option<u8>)> {
        let name = rt.launch.name.clone();
        let nics = &rt.launch.nics;
        let pos = nic
            .uuid
            .as_ref()
            .and_then(|u| nics.iter().position(|n| n.uuid.as_ref() == Some(u)))
            .or_else(|| nics.iter().position(|n| n.mac == nic.mac))
            .or((seq < nics.len()).then_some(seq))
            .ok_or_else(|| {
                HypervisorError::Failed(format!(
                    "instance '{name}' runs without a NIC {seq}: nothing to unplug"
                ))
            })?;
        let dev = rt.launch.nic_dev(pos);
        self.unplug(&name, &format!("nic{}", dev.suffix))?;
        self.qmp_command(
            &name,
            "netdev_del",
            Some(json!({"id": format!("net{}", dev.suffix)})),
        )?;
        if let Some(tap) = rt.taps.get(pos) {
            nics::remove_tap(tap);
        }
        rt.launch.nics.remove(pos);
        rt.launch.nic_devs.remove(pos);
        if pos < rt.taps.len() {
            rt.taps.remove(pos);
        }
        Ok((pos, dev.addr))
    }
}

/// The runtime's disks numbered by position again, as the configuration
/// numbers them after a change.
fn renumber_disks(disks: &mut [AttachedDisk]) {
    for (i, d) in disks.iter_mut().enumerate() {
        d.index = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_device_takes_the_slot_after_the_highest_used() {
        assert_eq!(free_slot(&[0, 1, 2, 4, 3]), Some(5));
        assert_eq!(free_slot(&[]), Some(0));
        assert_eq!(free_slot(&[0, 31]), None);
    }

    #[test]
    fn only_isa_nics_cannot_be_hotplugged() {
        assert_eq!(nic_driver("paravirtual"), Some("virtio-net-pci"));
        assert_eq!(nic_driver("e1000"), Some("e1000"));
        assert_eq!(nic_driver("ne2k_isa"), None);
    }
}
