//! A node's directory tree and the cluster's files in it.

use std::path::PathBuf;

use objects::paths::Paths;

/// The directories `gnt-cluster init` makes in the master's tree.
pub fn master_dirs(paths: &Paths) -> [PathBuf; 6] {
    [
        paths.data_dir(),
        paths.socket_dir(),
        paths.log_dir(),
        paths.os_log_dir(),
        paths.file_storage_dir(),
        paths.shared_file_storage_dir(),
    ]
}

/// The directories a joining node needs before its node daemon starts.
pub fn node_dirs(paths: &Paths) -> [PathBuf; 3] {
    [paths.data_dir(), paths.log_dir(), paths.run_dir()]
}

/// Whether `name`, a file of the data directory, is one of the cluster's:
/// the configuration and the job queue (with their SQLite companions),
/// ssconf files, the node and RAPI certificates and the cluster CA.
fn is_cluster_file(name: &str) -> bool {
    name.starts_with("config.db")
        || name.starts_with("queue.db")
        || name.starts_with("ssconf_")
        || name == "server.pem"
        || name == "rapi.pem"
        || name.starts_with("cluster-ca.")
}

/// Removes the cluster's configuration, queue, certificates and ssconf
/// files from a node's tree (its daemons must be stopped first). A tree
/// without a data directory has nothing to remove.
pub fn remove_cluster_files(paths: &Paths) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(paths.data_dir()) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if is_cluster_file(&e.file_name().to_string_lossy()) {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_cluster_files_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        let ours = [
            "config.db",
            "config.db-wal",
            "queue.db",
            "queue.db-shm",
            "ssconf_cluster_name",
            "server.pem",
            "rapi.pem",
            "cluster-ca.pem",
            "cluster-ca.key",
        ];
        for f in ours.iter().chain(&["notes.txt"]) {
            std::fs::write(paths.data_dir().join(f), "x").unwrap();
        }
        remove_cluster_files(&paths).unwrap();
        let left: Vec<String> = std::fs::read_dir(paths.data_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["notes.txt".to_string()]);
    }

    #[test]
    fn a_tree_without_data_has_nothing_to_remove() {
        let dir = tempfile::tempdir().unwrap();
        assert!(remove_cluster_files(&Paths::new(dir.path().join("none"))).is_ok());
    }
}
