//! `file` and `sharedfile` disks: sparse files below a storage directory.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::context::{check_below, check_component, StorageContext};
use crate::error::{Result, StorageError};
use crate::{BlockDevice, DeviceInfo, DiskSpec, DiskTemplate, MIB};

/// A disk stored as one sparse file.
#[derive(Debug, Clone)]
pub struct FileDevice {
    path: PathBuf,
    storage_dir: PathBuf,
    template: DiskTemplate,
}

impl FileDevice {
    /// The device of `disk` (of instance `instance_name`) in `ctx`'s storage
    /// directory for its template; the path is checked to stay inside it.
    pub fn open(ctx: &StorageContext, instance_name: &str, disk: &DiskSpec) -> Result<Self> {
        let storage_dir = match disk.dev_type {
            DiskTemplate::File => ctx.file_storage_dir().to_path_buf(),
            DiskTemplate::SharedFile => ctx.shared_file_storage_dir().to_path_buf(),
            other => return Err(StorageError::Unsupported(other)),
        };
        let path = match &disk.logical_id {
            Some(config_path) => ctx.node_path(config_path)?,
            None => {
                check_component("instance name", instance_name)?;
                check_component("disk uuid", &disk.uuid)?;
                storage_dir.join(instance_name).join(format!(
                    "{}.{}.disk{}",
                    disk.uuid,
                    disk.dev_type.as_str(),
                    disk.index
                ))
            }
        };
        check_below(&path, &storage_dir)?;
        Ok(FileDevice {
            path,
            storage_dir,
            template: disk.dev_type,
        })
    }

    /// The `file` device at `path`, a node path that must lie below
    /// `storage_dir` (the volumes of a `drbd` disk).
    pub fn at(path: PathBuf, storage_dir: &Path, template: DiskTemplate) -> Result<Self> {
        check_below(&path, storage_dir)?;
        Ok(FileDevice {
            path,
            storage_dir: storage_dir.to_path_buf(),
            template,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn template(&self) -> DiskTemplate {
        self.template
    }

    fn current_size(&self) -> Result<u64> {
        match fs::metadata(&self.path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(StorageError::NotFound(self.path.clone()))
            }
            Err(e) => Err(StorageError::io("stat", &self.path, e)),
        }
    }
}

fn bytes(size_mib: u64) -> Result<u64> {
    size_mib
        .checked_mul(MIB)
        .ok_or_else(|| StorageError::InvalidSize(format!("{size_mib} MiB is too large")))
}

impl BlockDevice for FileDevice {
    fn create(&self, size_mib: u64) -> Result<PathBuf> {
        if size_mib == 0 {
            return Err(StorageError::InvalidSize("a disk must not be 0 MiB".into()));
        }
        let size = bytes(size_mib)?;
        if let Some(parent) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(parent)
                .map_err(|e| StorageError::io("create directory", parent, e))?;
        }
        // Re-check now that the directories exist: a symbolic link on the
        // way must not lead outside the storage directory.
        check_below(&self.path, &self.storage_dir)?;
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Creating twice is fine when the result is the same.
                return if self.current_size()? == size {
                    Ok(self.path.clone())
                } else {
                    Err(StorageError::AlreadyExists(self.path.clone()))
                };
            }
            Err(e) => return Err(StorageError::io("create", &self.path, e)),
        };
        if let Err(e) = file.set_len(size) {
            let _ = fs::remove_file(&self.path);
            return Err(StorageError::io("set the size of", &self.path, e));
        }
        Ok(self.path.clone())
    }

    fn remove(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("remove", &self.path, e)),
        }
        // Drop the instance's directory once its last disk is gone.
        if let Some(parent) = self.path.parent() {
            if parent != self.storage_dir && parent.starts_with(&self.storage_dir) {
                let _ = fs::remove_dir(parent);
            }
        }
        Ok(())
    }

    fn assemble(&self) -> Result<Option<PathBuf>> {
        self.current_size()?;
        Ok(Some(self.path.clone()))
    }

    fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    fn grow(&self, amount_mib: u64, dry_run: bool) -> Result<()> {
        let current = self.current_size()?;
        let new_size = current.checked_add(bytes(amount_mib)?).ok_or_else(|| {
            StorageError::InvalidSize(format!("growing by {amount_mib} MiB overflows"))
        })?;
        if dry_run {
            return Ok(());
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| StorageError::io("open", &self.path, e))?;
        file.set_len(new_size)
            .map_err(|e| StorageError::io("grow", &self.path, e))
    }

    fn exists(&self) -> Result<bool> {
        match self.current_size() {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn info(&self) -> Result<DeviceInfo> {
        let size = self.current_size()?;
        Ok(DeviceInfo {
            path: Some(self.path.clone()),
            size_mib: size / MIB,
        })
    }
}
