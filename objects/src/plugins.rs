//! Finding an iallocator plugin on a node: the master runs it, and
//! `gnt-cluster init` checks that the default one exists. Besides the
//! host name lookup of [`crate::resolver`], the one place where this crate
//! looks at the file system.

use std::path::{Path, PathBuf};

/// Where iallocator plugin `name` is: next to the running program, in the
/// node tree's `usr/lib/ganeti/iallocators` (`root` is the tree), the
/// system's, then on the `PATH`. A name with a `/` is a path.
pub fn find_iallocator(root: &Path, name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        dirs.push(d);
    }
    dirs.push(root.join("usr/lib/ganeti/iallocators"));
    dirs.push(PathBuf::from("/usr/lib/ganeti/iallocators"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::find_iallocator;

    #[test]
    fn a_plugin_in_the_node_tree_is_found() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("usr/lib/ganeti/iallocators");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("my-alloc"), "#!/bin/sh\n").unwrap();
        assert_eq!(
            find_iallocator(root.path(), "my-alloc"),
            Some(dir.join("my-alloc"))
        );
    }

    #[test]
    fn a_missing_plugin_is_none() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            find_iallocator(root.path(), "no-such-iallocator-plugin"),
            None
        );
    }

    #[test]
    fn a_name_with_a_slash_is_a_path() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("alloc");
        std::fs::write(&p, "").unwrap();
        let name = p.to_str().unwrap();
        assert_eq!(find_iallocator(root.path(), name), Some(p.clone()));
        assert_eq!(find_iallocator(root.path(), "./no/such/alloc"), None);
    }
}
