//! Block devices of a node: the [`BlockDevice`] trait and its drivers
//! (`diskless`, `file`, `sharedfile`, `plain`, and `drbd`: replicated
//! through QEMU's block layer, see [`drbd`]).
//!
//! The crate knows nothing of jobs or the cluster configuration: the node
//! daemon gives it a [`DiskSpec`] and a [`StorageContext`] (where this node
//! keeps its disks) and gets a device to act on.

pub mod context;
pub mod convert;
pub mod dirs;
pub mod drbd;
pub mod error;
pub mod file;
pub mod lvm;
pub mod qmp;
pub mod space;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;

use std::path::PathBuf;

pub use context::StorageContext;
pub use error::{Result, StorageError};
pub use file::FileDevice;
pub use objects::{DiskMode, DiskTemplate};
pub use rpc::instance::AttachedDisk;
pub use rpc::storage::{BlockDevStatus, DeviceInfo, DiskSpec, LocalDiskStatus};

/// Bytes in a MiB.
pub const MIB: u64 = 1024 * 1024;

/// One block device of an instance on this node.
///
/// Operations are idempotent where that is safe: creating an existing
/// device of the same size and removing a missing one succeed.
pub trait BlockDevice: Send + Sync + std::fmt::Debug {
    /// Creates the device with `size_mib` MiB; returns its path.
    fn create(&self, size_mib: u64) -> Result<PathBuf>;
    /// Removes the device and its data.
    fn remove(&self) -> Result<()>;
    /// Makes the device usable; returns the path to give the hypervisor.
    fn assemble(&self) -> Result<Option<PathBuf>>;
    /// Makes the device unused (the data stays).
    fn shutdown(&self) -> Result<()>;
    /// Grows the device by `amount_mib` MiB (only checks when `dry_run`).
    fn grow(&self, amount_mib: u64, dry_run: bool) -> Result<()>;
    /// Whether the device exists on this node.
    fn exists(&self) -> Result<bool>;
    /// Path and size.
    fn info(&self) -> Result<DeviceInfo>;

    /// Creates the device on one of its nodes: `on_primary` says whether
    /// this node is the instance's primary (it matters to mirrored disks).
    fn create_on(&self, size_mib: u64, _on_primary: bool) -> Result<PathBuf> {
        self.create(size_mib)
    }

    /// Assembles the device for a hypervisor, as the instance's primary
    /// node (`on_primary`) or a secondary; what the hypervisor needs.
    fn attach(&self, mode: DiskMode, _on_primary: bool) -> Result<AttachedDisk> {
        Ok(AttachedDisk {
            index: 0,
            path: self.assemble()?,
            uri: None,
            mode,
            tls: None,
        })
    }

    /// The device's state for `blockdev_find` (`None`: not on this node).
    fn status(&self) -> Result<Option<BlockDevStatus>> {
        match self.info() {
            Ok(info) => Ok(Some(BlockDevStatus {
                dev_path: info.path.map(|p| p.display().to_string()),
                sync_percent: None,
                estimated_time: None,
                is_degraded: false,
                ldisk_status: LocalDiskStatus::Okay,
                drbd: None,
            })),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The "device" of a disk-less instance: nothing to create or assemble.
#[derive(Debug, Clone, Copy, Default)]
pub struct DisklessDevice;

impl BlockDevice for DisklessDevice {
    fn create(&self, _size_mib: u64) -> Result<PathBuf> {
        Err(StorageError::Unsupported(DiskTemplate::Diskless))
    }
    fn remove(&self) -> Result<()> {
        Ok(())
    }
    fn assemble(&self) -> Result<Option<PathBuf>> {
        Ok(None)
    }
    fn shutdown(&self) -> Result<()> {
        Ok(())
    }
    fn grow(&self, _amount_mib: u64, _dry_run: bool) -> Result<()> {
        Err(StorageError::Unsupported(DiskTemplate::Diskless))
    }
    fn exists(&self) -> Result<bool> {
        Ok(true)
    }
    fn info(&self) -> Result<DeviceInfo> {
        Ok(DeviceInfo {
            path: None,
            size_mib: 0,
        })
    }
}

/// The device of `disk`, an instance's disk, on this node.
pub fn open(
    ctx: &StorageContext,
    instance_name: &str,
    disk: &DiskSpec,
) -> Result<Box<dyn BlockDevice>> {
    match disk.dev_type {
        DiskTemplate::Diskless => Ok(Box::new(DisklessDevice)),
        DiskTemplate::File | DiskTemplate::SharedFile => {
            Ok(Box::new(FileDevice::open(ctx, instance_name, disk)?))
        }
        DiskTemplate::Plain => Ok(Box::new(lvm::PlainDevice::open(disk)?)),
        DiskTemplate::Drbd => Ok(Box::new(drbd::DrbdDevice::open(ctx, instance_name, disk)?)),
        other => Err(StorageError::Unsupported(other)),
    }
}
