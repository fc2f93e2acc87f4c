//! Directories of file-based disks (one per instance, below a storage
//! directory): create, remove when empty, rename (instance rename).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use crate::context::{check_below, StorageContext};
use crate::error::{Result, StorageError};

/// Maps `config_path` to this node and checks it lies below the file or
/// the shared file storage directory.
fn resolve(ctx: &StorageContext, config_path: &str) -> Result<PathBuf> {
    let path = ctx.node_path(config_path)?;
    match check_below(&path, ctx.file_storage_dir()) {
        Ok(()) => Ok(path),
        Err(first) => check_below(&path, ctx.shared_file_storage_dir())
            .map(|()| path)
            .map_err(|_| first),
    }
}

fn not_a_dir(path: &std::path::Path) -> StorageError {
    StorageError::InvalidPath {
        path: path.display().to_string(),
        reason: "exists and is not a directory".into(),
    }
}

/// Creates the directory (and its parents) unless it exists.
pub fn create_dir(ctx: &StorageContext, config_path: &str) -> Result<PathBuf> {
    let path = resolve(ctx, config_path)?;
    match fs::metadata(&path) {
        Ok(m) if m.is_dir() => return Ok(path),
        Ok(_) => return Err(not_a_dir(&path)),
        Err(_) => {}
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&path)
        .map_err(|e| StorageError::io("create directory", &path, e))?;
    Ok(path)
}

/// Removes the directory if it exists; fails when it is not empty.
pub fn remove_dir(ctx: &StorageContext, config_path: &str) -> Result<()> {
    let path = resolve(ctx, config_path)?;
    match fs::metadata(&path) {
        Ok(m) if !m.is_dir() => return Err(not_a_dir(&path)),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("stat", &path, e)),
    }
    fs::remove_dir(&path).map_err(|e| StorageError::io("remove directory", &path, e))
}

/// Renames a directory. Done already (only the new one exists) is fine;
/// both existing is an error.
pub fn rename_dir(
    ctx: &StorageContext,
    old_config_path: &str,
    new_config_path: &str,
) -> Result<()> {
    let old = resolve(ctx, old_config_path)?;
    let new = resolve(ctx, new_config_path)?;
    match (old.exists(), new.exists()) {
        (true, false) => {
            if !old.is_dir() {
                return Err(not_a_dir(&old));
            }
            if let Some(parent) = new.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(parent)
                    .map_err(|e| StorageError::io("create directory", parent, e))?;
            }
            fs::rename(&old, &new).map_err(|e| StorageError::io("rename", &old, e))
        }
        (false, true) => Ok(()),
        (true, true) => Err(StorageError::InvalidPath {
            path: new.display().to_string(),
            reason: format!("cannot rename '{}' to it: both exist", old.display()),
        }),
        (false, false) => Err(StorageError::NotFound(old)),
    }
}
