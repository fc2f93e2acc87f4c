//! The node setup of `gnt-node add`: a new node gets the cluster CA
//! certificate and a certificate of its own, signed by the CA, and its
//! node daemon is started. Ganeti does this over SSH; ganeti-rs does it
//! on a virtual cluster, where every node's tree lives under one base
//! directory and `GANETI_ROOTDIR` is `<base>/<node name>` (Ganeti's
//! vcluster convention).

use std::path::PathBuf;

use objects::paths::Paths;

use crate::daemons::{self, DaemonError};

/// Why a node could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "Cannot set up node {node}: ganeti-rs installs certificates only on a virtual \
         cluster (GANETI_ROOTDIR=<base>/<node name>). Copy {} and a node certificate \
         signed by the cluster CA to the node, start ganeti-noded there, and use \
         --no-node-setup",
        ca_cert.display()
    )]
    NotVirtual { node: String, ca_cert: PathBuf },
    #[error("Node name '{0}' cannot be resolved to an address")]
    Unresolvable(String),
    #[error("Cannot read the cluster CA")]
    ReadCa(#[source] rpc::tls::TlsError),
    #[error("Cannot create a certificate for {node}")]
    CreateCert {
        node: String,
        #[source]
        source: rpc::tls::TlsError,
    },
    #[error("Cannot create {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot install the cluster CA on {node}")]
    InstallCa {
        node: String,
        #[source]
        source: rpc::tls::TlsError,
    },
    #[error("Cannot install the certificate on {node}")]
    InstallCert {
        node: String,
        #[source]
        source: rpc::tls::TlsError,
    },
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// The tree of `node` on a virtual cluster whose master's tree is
/// `master` (named `master_name`): its sibling named after the node.
pub fn vcluster_root(master: &Paths, master_name: &str, node: &str) -> Option<PathBuf> {
    let root = master.root();
    let last = root.file_name()?.to_str()?;
    (last == master_name).then(|| root.with_file_name(node))
}

/// Installs the cluster's certificates on `node` and starts its node
/// daemon; `master` is the tree of this node, the master `master_name`.
pub fn join_node(master: &Paths, master_name: &str, node: &str) -> Result<(), JoinError> {
    let Some(root) = vcluster_root(master, master_name, node) else {
        return Err(JoinError::NotVirtual {
            node: node.to_string(),
            ca_cert: master.cluster_ca_cert(),
        });
    };
    let node_paths = Paths::new(&root);
    let ip = objects::resolver::resolve(master, node)
        .or_else(|| objects::resolver::resolve(&node_paths, node))
        .ok_or_else(|| JoinError::Unresolvable(node.to_string()))?;
    let ca = rpc::tls::read_cluster_ca(master).map_err(JoinError::ReadCa)?;
    let cert =
        rpc::tls::create_node_cert(&ca, node, ip).map_err(|source| JoinError::CreateCert {
            node: node.to_string(),
            source,
        })?;
    for path in crate::tree::node_dirs(&node_paths) {
        std::fs::create_dir_all(&path).map_err(|source| JoinError::Dir { path, source })?;
    }
    rpc::tls::write_cluster_ca(&node_paths, &ca, false).map_err(|source| JoinError::InstallCa {
        node: node.to_string(),
        source,
    })?;
    rpc::tls::write_node_cert(&node_paths, &cert).map_err(|source| JoinError::InstallCert {
        node: node.to_string(),
        source,
    })?;
    daemons::start_noded(&node_paths, node, ip)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_of_a_virtual_cluster_lives_beside_the_master() {
        let master = Paths::new("/tmp/vc/node1");
        assert_eq!(
            vcluster_root(&master, "node1", "node2"),
            Some(PathBuf::from("/tmp/vc/node2"))
        );
    }

    #[test]
    fn a_tree_not_named_after_the_master_is_no_virtual_cluster() {
        assert_eq!(vcluster_root(&Paths::new("/"), "node1", "node2"), None);
        assert_eq!(
            vcluster_root(&Paths::new("/tmp/vc/other"), "node1", "node2"),
            None
        );
    }

    #[test]
    fn joining_outside_a_virtual_cluster_says_what_to_do() {
        let e = join_node(&Paths::new("/"), "node1", "node2").unwrap_err();
        assert!(matches!(e, JoinError::NotVirtual { .. }));
        assert!(e.to_string().contains("--no-node-setup"), "{e}");
    }
}
