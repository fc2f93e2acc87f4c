//! Where a node keeps its disks, and the checks that keep disk paths there.

use std::path::{Component, Path, PathBuf};

use objects::paths::Paths;

use crate::error::{Result, StorageError};

/// ssconf key of the cluster's file storage directory.
pub const SSCONF_FILE_STORAGE_DIR: &str = "file_storage_dir";
/// ssconf key of the cluster's shared file storage directory.
pub const SSCONF_SHARED_FILE_STORAGE_DIR: &str = "shared_file_storage_dir";

/// Directories that must never hold disk files (as Ganeti's list).
const FORBIDDEN_PREFIXES: &[&str] = &[
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/proc",
    "/root",
    "/sys",
    "/bin",
    "/lib",
    "/lib32",
    "/lib64",
    "/sbin",
    "/usr/bin",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/lib32",
    "/usr/local/lib64",
    "/usr/local/sbin",
];

/// The storage directories of one node, as real paths on this machine.
#[derive(Debug, Clone)]
pub struct StorageContext {
    paths: Paths,
    file_dir: PathBuf,
    shared_file_dir: PathBuf,
    /// This node's name, as the cluster knows it (a `drbd` disk finds
    /// itself among its link's nodes by it).
    node_name: Option<String>,
}

impl StorageContext {
    /// The node's directories: the cluster's choice from the ssconf files
    /// when present, otherwise the defaults of `paths`.
    pub fn from_paths(paths: &Paths) -> Result<Self> {
        let file_dir = match read_ssconf(paths, SSCONF_FILE_STORAGE_DIR) {
            Some(dir) => node_path(paths, &dir)?,
            None => paths.file_storage_dir(),
        };
        let shared_file_dir = match read_ssconf(paths, SSCONF_SHARED_FILE_STORAGE_DIR) {
            Some(dir) => node_path(paths, &dir)?,
            None => paths.shared_file_storage_dir(),
        };
        Ok(StorageContext {
            paths: paths.clone(),
            file_dir,
            shared_file_dir,
            node_name: None,
        })
    }

    /// Explicit directories (tests, tools).
    pub fn new(paths: Paths, file_dir: PathBuf, shared_file_dir: PathBuf) -> Self {
        StorageContext {
            paths,
            file_dir,
            shared_file_dir,
            node_name: None,
        }
    }

    /// The same context for the node named `name`.
    pub fn with_node_name(mut self, name: &str) -> Self {
        self.node_name = Some(name.to_string());
        self
    }

    /// This node's name, if the context knows it.
    pub fn node_name(&self) -> Option<&str> {
        self.node_name.as_deref()
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Directory of `file` disks on this node.
    pub fn file_storage_dir(&self) -> &Path {
        &self.file_dir
    }

    /// Directory of `sharedfile` disks on this node.
    pub fn shared_file_storage_dir(&self) -> &Path {
        &self.shared_file_dir
    }

    /// Maps a path of the cluster configuration to this node's tree.
    pub fn node_path(&self, config_path: &str) -> Result<PathBuf> {
        node_path(&self.paths, config_path)
    }
}

fn read_ssconf(paths: &Paths, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(paths.ssconf(key)).ok()?;
    let value = text.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Maps an absolute path as the configuration knows it to the node's tree
/// (prefixing `GANETI_ROOTDIR`), refusing relative paths, `..` and the
/// forbidden system directories.
pub fn node_path(paths: &Paths, config_path: &str) -> Result<PathBuf> {
    let invalid = |reason: &str| StorageError::InvalidPath {
        path: config_path.to_string(),
        reason: reason.to_string(),
    };
    let p = Path::new(config_path);
    if !p.is_absolute() {
        return Err(invalid("must be absolute"));
    }
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("must not contain '..'")),
            Component::Prefix(_) => return Err(invalid("unexpected path prefix")),
        }
    }
    let virt = Path::new("/").join(&rel);
    for forbidden in FORBIDDEN_PREFIXES {
        if virt.starts_with(forbidden) {
            return Err(invalid(&format!("uses the forbidden prefix '{forbidden}'")));
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid("must not be '/'"));
    }
    Ok(paths.root().join(rel))
}

/// Checks that `path` lies strictly below `dir`, both lexically and, where
/// the directories exist, after resolving symbolic links.
pub fn check_below(path: &Path, dir: &Path) -> Result<()> {
    let outside = || StorageError::PathOutsideStorageDir {
        path: path.to_path_buf(),
        allowed: dir.to_path_buf(),
    };
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(outside());
    }
    if !path.starts_with(dir) || path == dir {
        return Err(outside());
    }
    // Resolve links on the deepest existing ancestor of the path.
    if let Ok(real_dir) = dir.canonicalize() {
        let mut probe = path.parent();
        while let Some(p) = probe {
            if let Ok(real) = p.canonicalize() {
                if !real.starts_with(&real_dir) {
                    return Err(outside());
                }
                break;
            }
            probe = p.parent();
        }
    }
    Ok(())
}

/// Checks a name used as one path component (an instance name, a disk
/// uuid): no separators, not empty, not `.` or `..`.
pub fn check_component(what: &'static str, value: &str) -> Result<()> {
    let bad = |reason| StorageError::InvalidName {
        what,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("must not be empty"));
    }
    if value == "." || value == ".." {
        return Err(bad("must not be '.' or '..'"));
    }
    if value.contains('/') || value.contains('\0') {
        return Err(bad("must not contain '/' or NUL"));
    }
    Ok(())
}
