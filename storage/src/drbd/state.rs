//! The runtime state of an assembled `drbd` disk on a node
//! (`var/run/ganeti/drbd/<uuid>.json`): what a node daemon started later
//! needs to find and supervise the disk's storage daemon, and the
//! bookkeeping of its syncs. Changed only under the disk's lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};

use super::layout::Link;
use crate::error::{Result, StorageError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub instance: String,
    pub disk: String,
    pub index: usize,
    pub size_mib: u64,
    pub link: Link,
    /// The volumes as the daemon opened them.
    pub data: PathBuf,
    pub meta: PathBuf,
    /// This node's copy is the sync source.
    pub primary: bool,
    /// Cap of background syncs, bytes/s (0: none).
    #[serde(default)]
    pub resync_rate: u64,
    /// The next connection may skip the full sync: this primary left its
    /// peer in sync when its daemon last stopped, and nothing was written
    /// since (only true until the first connection attempt).
    #[serde(default)]
    pub skip_sync_once: bool,
    /// What this node last recorded in the peer's meta data (`true`:
    /// consistent); `None` when unknown.
    #[serde(default)]
    pub peer_marked: Option<bool>,
    /// Replication was stopped on request (`drbd_disconnect_net`): the
    /// supervisor does not reconnect.
    #[serde(default)]
    pub standalone: bool,
    /// The background sync was paused on request.
    #[serde(default)]
    pub sync_paused: bool,
    /// Bytes the running resync had to copy when it started.
    #[serde(default)]
    pub resync_total: Option<u64>,
    /// Last progress sample: (seconds since the epoch, bytes left).
    #[serde(default)]
    pub sample: Option<(f64, u64)>,
    /// Sync speed measured between samples, bytes/s.
    #[serde(default)]
    pub rate: Option<f64>,
    /// The daemon's death was logged.
    #[serde(default)]
    pub death_reported: bool,
}

impl RunState {
    pub fn load(path: &Path) -> Result<Option<RunState>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("read", path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StorageError::InvalidPath {
                path: path.display().to_string(),
                reason: format!("unreadable runtime state: {e}"),
            })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| StorageError::InvalidPath {
            path: path.display().to_string(),
            reason: format!("cannot encode the runtime state: {e}"),
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| StorageError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StorageError::io("rename", &tmp, e))
    }
}

/// One lock per disk and node root, shared by the node's calls and its
/// supervisor.
pub struct DiskLock(Arc<Mutex<()>>);

impl DiskLock {
    /// The lock of the disk whose state file is `state_file`.
    pub fn of(state_file: &Path) -> DiskLock {
        static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
        let table = LOCKS.get_or_init(Default::default);
        let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
        DiskLock(table.entry(state_file.to_path_buf()).or_default().clone())
    }

    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
