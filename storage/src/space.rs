//! Free and total space of the file system holding a directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::MIB;

/// Space of one storage unit, in MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceInfo {
    pub path: PathBuf,
    pub total_mib: u64,
    pub free_mib: u64,
}

/// Space of the file system holding `dir` (the nearest existing ancestor
/// when `dir` does not exist yet).
pub fn space_info(dir: &Path) -> Result<SpaceInfo> {
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    let st = nix::sys::statvfs::statvfs(probe)
        .map_err(|e| StorageError::io("get the file system size of", probe, e.into()))?;
    let frag = st.fragment_size() as u64;
    Ok(SpaceInfo {
        path: dir.to_path_buf(),
        total_mib: (st.blocks() as u64).saturating_mul(frag) / MIB,
        free_mib: (st.blocks_available() as u64).saturating_mul(frag) / MIB,
    })
}
