//! Errors of block device operations.

use std::path::PathBuf;

use objects::DiskTemplate;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The disk template has no driver on this node.
    #[error("disk template '{0}' is not supported by this node")]
    Unsupported(DiskTemplate),

    /// A path lies outside every directory allowed for file storage.
    #[error("path '{path}' is outside the allowed storage directory '{allowed}'")]
    PathOutsideStorageDir { path: PathBuf, allowed: PathBuf },

    /// A path the configuration gave is not acceptable at all.
    #[error("invalid storage path '{path}': {reason}")]
    InvalidPath { path: String, reason: String },

    /// A name used to build a path is not acceptable.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("disk file '{0}' already exists with a different size")]
    AlreadyExists(PathBuf),

    #[error("disk file '{0}' does not exist")]
    NotFound(PathBuf),

    #[error("cannot {action} '{path}'")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid size: {0}")]
    InvalidSize(String),

    /// An lvm command failed; its own message.
    #[error("{command} failed: {message}")]
    Lvm { command: String, message: String },

    #[error("volume group '{0}' does not exist on this node")]
    NoVolumeGroup(String),

    #[error("not enough free space in volume group '{vg}': {needed_mib} MiB needed, {free_mib} MiB free")]
    NoSpace {
        vg: String,
        needed_mib: u64,
        free_mib: u64,
    },

    #[error("logical volume '{0}' does not exist")]
    NoVolume(String),

    #[error("logical volume '{0}' already exists")]
    VolumeExists(String),

    /// Activating a volume needs the kernel's device-mapper.
    #[error("cannot activate logical volume '{0}': this node's kernel has no device-mapper (/dev/mapper/control cannot be opened)")]
    NoDeviceMapper(String),

    /// A `drbd` disk's description does not fit this node.
    #[error("drbd disk '{disk}': {reason}")]
    InvalidDrbd { disk: String, reason: String },

    /// A `drbd` disk's storage daemon failed or is missing.
    #[error("storage daemon of drbd disk '{disk}': {reason}")]
    Daemon { disk: String, reason: String },

    /// A command to a `drbd` disk's storage daemon failed.
    #[error("storage daemon of drbd disk '{disk}'")]
    Qmp {
        disk: String,
        #[source]
        source: crate::qmp::QmpError,
    },

    /// A `drbd` disk that is not assembled on this node.
    #[error("drbd disk '{0}' is not assembled on this node")]
    NotAssembled(String),

    /// A `drbd` disk's meta data is missing or unreadable.
    #[error("meta data of drbd disk '{disk}' in '{path}': {reason}")]
    Meta {
        disk: String,
        path: PathBuf,
        reason: String,
    },

    /// Copying a disk between nodes failed.
    #[error("copy of disk '{disk}' between nodes: {reason}")]
    Transfer { disk: String, reason: String },

    /// The peer of a `drbd` disk cannot be reached or refused.
    #[error("drbd disk '{disk}': peer {peer}: {reason}")]
    Peer {
        disk: String,
        peer: String,
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
