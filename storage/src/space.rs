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

/// The space the files below `dir` take on disk, in MiB (rounded down);
/// 0 for a directory that does not exist.
pub fn dir_usage_mib(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, total: &mut u64) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
            let path = entry.path();
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| StorageError::io("stat", &path, e))?;
            // Blocks of 512 bytes actually allocated (sparse files count
            // what they hold, as du does).
            *total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                walk(&path, total)?;
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(dir, &mut total)?;
    Ok(total / MIB)
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
