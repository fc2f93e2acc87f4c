//! Errors of hypervisor operations.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HypervisorError {
    #[error("unknown hypervisor '{name}' (known: {known})")]
    Unknown { name: String, known: String },

    #[error("hypervisor '{hypervisor}' does not support {operation}")]
    Unsupported {
        hypervisor: &'static str,
        operation: &'static str,
    },

    #[error("instance '{0}' is already running")]
    AlreadyRunning(String),

    #[error("instance '{0}' is not running")]
    NotRunning(String),

    #[error("not enough memory to start instance '{instance}': needs at least {needed} MiB, node has {free} MiB free")]
    NotEnoughMemory {
        instance: String,
        needed: u64,
        free: u64,
    },

    #[error("invalid instance name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("invalid hypervisor parameter '{name}': {reason}")]
    InvalidParameter { name: String, reason: String },

    #[error("cannot {action} '{path}'")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot talk to QEMU of instance '{instance}'")]
    Qmp {
        instance: String,
        #[source]
        source: crate::qmp::QmpError,
    },

    #[error("migration of instance '{instance}' failed: {reason}")]
    Migration { instance: String, reason: String },

    /// Ganeti's `HotplugError`, as its node daemon words it.
    #[error("Hotplug is not supported: {0}")]
    Hotplug(String),

    #[error("cannot read node resources: {0}")]
    NodeInfo(String),

    #[error("{0}")]
    Failed(String),
}

impl HypervisorError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HypervisorError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = HypervisorError> = std::result::Result<T, E>;
