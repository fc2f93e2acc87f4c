//! `gnt-cluster destroy`: stopping the cluster's daemons and removing its
//! files, on the master and, on a virtual cluster, on the other nodes.

use objects::paths::Paths;

use crate::daemons;
use crate::join::vcluster_root;

/// Stops the RAPI and master daemons, the other nodes' daemons and files when they
/// live in this machine's virtual cluster (known from the `node_list`
/// ssconf file), then this node's daemon, and removes the master's
/// cluster files. `me` is this node's name.
pub fn destroy_cluster(paths: &Paths, me: &str) -> std::io::Result<()> {
    let nodes: Vec<String> = std::fs::read_to_string(paths.ssconf("node_list"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|n| !n.is_empty() && *n != me)
        .collect();
    daemons::stop(&paths.rapi_pid());
    daemons::stop(&paths.masterd_pid());
    for n in nodes {
        if let Some(root) = vcluster_root(paths, me, &n) {
            let np = Paths::new(root);
            daemons::stop(&np.noded_pid());
            let _ = crate::tree::remove_cluster_files(&np);
        }
    }
    daemons::stop(&paths.noded_pid());
    crate::tree::remove_cluster_files(paths)
}
