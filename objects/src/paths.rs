//! File-system layout of a node, derived from one root directory.
//!
//! Every path hangs off `GANETI_ROOTDIR` (empty means `/`), as in Ganeti's
//! virtual cluster, so several nodes can live on one machine, each with its
//! own root. Nothing here touches the file system.

use std::path::{Path, PathBuf};

/// Environment variable that moves a node's whole tree under a directory.
pub const ROOTDIR_ENV: &str = "GANETI_ROOTDIR";
/// Environment variable that overrides the node's host name (virtual cluster).
pub const HOSTNAME_ENV: &str = "GANETI_HOSTNAME";

/// Default TCP port of the node daemon.
pub const NODED_PORT: u16 = 1811;
/// Default TCP port of the RAPI daemon.
pub const RAPI_PORT: u16 = 5080;
/// Ganeti's export directory, as the cluster names it (under each node's
/// root).
pub const EXPORT_DIR: &str = "/srv/ganeti/export";

/// The paths of one node's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// A tree rooted at `root` (`/` for a real node).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = if root.as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            root
        };
        Paths { root }
    }

    /// The tree named by `GANETI_ROOTDIR`, or `/` when it is unset or empty.
    pub fn from_env() -> Self {
        Paths::new(std::env::var_os(ROOTDIR_ENV).unwrap_or_default())
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `var/lib/ganeti`: configuration, certificates, ssconf files.
    pub fn data_dir(&self) -> PathBuf {
        self.join("var/lib/ganeti")
    }

    /// The master's configuration database (SQLite).
    pub fn config_db(&self) -> PathBuf {
        self.data_dir().join("config.db")
    }

    /// The master's job queue database (SQLite).
    pub fn queue_db(&self) -> PathBuf {
        self.data_dir().join("queue.db")
    }

    /// A master candidate's copy of the configuration (JSON, as the
    /// master pushes it with `write_config`).
    pub fn config_copy(&self) -> PathBuf {
        self.data_dir().join("config.data")
    }

    /// The `serial_no` of [`Self::config_copy`], kept apart so that a push
    /// is compared without reading the whole copy.
    pub fn config_copy_serial(&self) -> PathBuf {
        self.data_dir().join("config.data.serial")
    }

    /// A master candidate's copy of the job queue: one `job-<id>` file per
    /// job, as the master pushes them with `jobqueue_update`.
    pub fn queue_copy_dir(&self) -> PathBuf {
        self.data_dir().join("queue")
    }

    /// Where the node records the master IP it holds (`ip/netmask dev`),
    /// written by `node_activate_master_ip`, removed by its opposite.
    pub fn master_ip_state(&self) -> PathBuf {
        self.run_dir().join("master-ip")
    }

    /// The cluster CA certificate (PEM), present on every node.
    pub fn cluster_ca_cert(&self) -> PathBuf {
        self.data_dir().join("cluster-ca.pem")
    }

    /// The cluster CA private key (PEM), present on the master only.
    pub fn cluster_ca_key(&self) -> PathBuf {
        self.data_dir().join("cluster-ca.key")
    }

    /// This node's certificate and private key (PEM, both in one file), as
    /// Ganeti's `server.pem`; signed by the cluster CA, used both as the node
    /// daemon's server certificate and as the client certificate of RPC calls.
    pub fn node_cert(&self) -> PathBuf {
        self.data_dir().join("server.pem")
    }

    /// The certificate and key the RAPI daemon serves (PEM, both in one
    /// file), as Ganeti's `rapi.pem`.
    pub fn rapi_cert(&self) -> PathBuf {
        self.data_dir().join("rapi.pem")
    }

    /// The RAPI users file (`rapi/users`).
    pub fn rapi_users(&self) -> PathBuf {
        self.data_dir().join("rapi").join("users")
    }

    /// The RAPI API tokens (`rapi/tokens`, hashed).
    pub fn rapi_tokens(&self) -> PathBuf {
        self.data_dir().join("rapi").join("tokens")
    }

    /// An ssconf file (`ssconf_<key>`).
    pub fn ssconf(&self, key: &str) -> PathBuf {
        self.data_dir().join(format!("ssconf_{key}"))
    }

    /// `etc/ganeti`: the node's own configuration.
    pub fn conf_dir(&self) -> PathBuf {
        self.join("etc/ganeti")
    }

    /// Hook scripts, in `<hpath>-<pre|post>.d` directories.
    pub fn hooks_dir(&self) -> PathBuf {
        self.conf_dir().join("hooks")
    }

    /// Ganeti's `RESTRICTED_COMMANDS_DIR`: the only executables
    /// `gnt-node restricted-command` runs.
    pub fn restricted_commands_dir(&self) -> PathBuf {
        self.conf_dir().join("restricted-commands")
    }

    /// `var/lock`: lock files (Ganeti's `LOCK_DIR`).
    pub fn lock_dir(&self) -> PathBuf {
        self.join("var/lock")
    }

    /// Where ExtStorage providers are looked up (Ganeti's
    /// `ES_SEARCH_PATH`).
    pub fn extstorage_search_path(&self) -> Vec<PathBuf> {
        vec![self.join("srv/ganeti/extstorage")]
    }

    /// `var/run/ganeti`: runtime state.
    pub fn run_dir(&self) -> PathBuf {
        self.join("var/run/ganeti")
    }

    /// Directory of the daemons' unix sockets.
    pub fn socket_dir(&self) -> PathBuf {
        self.run_dir().join("socket")
    }

    /// The LUXI socket of the master daemon.
    pub fn luxi_socket(&self) -> PathBuf {
        self.socket_dir().join("ganeti-query")
    }

    /// The master daemon's pid file.
    pub fn masterd_pid(&self) -> PathBuf {
        self.run_dir().join("ganeti-masterd.pid")
    }

    /// The node daemon's pid file.
    pub fn noded_pid(&self) -> PathBuf {
        self.run_dir().join("ganeti-noded.pid")
    }

    /// The RAPI daemon's pid file.
    pub fn rapi_pid(&self) -> PathBuf {
        self.run_dir().join("ganeti-rapi.pid")
    }

    /// Runtime directory of a hypervisor (`var/run/ganeti/<hv>-hypervisor`).
    pub fn hypervisor_run_dir(&self, hv: &str) -> PathBuf {
        self.run_dir().join(format!("{hv}-hypervisor"))
    }

    /// `var/log/ganeti`.
    pub fn log_dir(&self) -> PathBuf {
        self.join("var/log/ganeti")
    }

    /// Log directory of OS scripts.
    pub fn os_log_dir(&self) -> PathBuf {
        self.log_dir().join("os")
    }

    /// Default directory of `file` disks.
    pub fn file_storage_dir(&self) -> PathBuf {
        self.join("srv/ganeti/file-storage")
    }

    /// Default directory of `sharedfile` disks.
    pub fn shared_file_storage_dir(&self) -> PathBuf {
        self.join("srv/ganeti/shared-file-storage")
    }

    /// Instance exports (Ganeti's `EXPORT_DIR`): one directory per export.
    pub fn export_dir(&self) -> PathBuf {
        self.join(EXPORT_DIR.trim_start_matches('/'))
    }

    /// Where OS definitions are looked up, in order.
    pub fn os_search_path(&self) -> Vec<PathBuf> {
        vec![
            self.join("srv/ganeti/os"),
            self.join("usr/local/lib/ganeti/os"),
            self.join("usr/lib/ganeti/os"),
            self.join("usr/share/ganeti/os"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_hang_off_the_root() {
        let p = Paths::new("/tmp/node1");
        assert_eq!(
            p.luxi_socket(),
            PathBuf::from("/tmp/node1/var/run/ganeti/socket/ganeti-query")
        );
        assert_eq!(
            p.config_db(),
            PathBuf::from("/tmp/node1/var/lib/ganeti/config.db")
        );
    }

    #[test]
    fn empty_root_is_slash() {
        let p = Paths::new("");
        assert_eq!(p.data_dir(), PathBuf::from("/var/lib/ganeti"));
    }
}
