//! The master daemon's state: configuration, job queue, locks and node RPC,
//! and the executor that runs opcodes for the job queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use objects::paths::Paths;

use crate::config::ConfigStore;
use crate::jobqueue::JobQueue;
use crate::locking::LockManager;
use crate::query::live::LiveCache;
use crate::query::CellCaches;
use crate::rpc::Rpc;

/// Everything the master daemon holds.
pub struct Master {
    pub paths: Paths,
    pub config: ConfigStore,
    pub locks: Arc<LockManager>,
    pub rpc: Arc<Rpc>,
    queue: OnceLock<Arc<JobQueue>>,
    /// ssconf distribution: `.0` a change is waiting to be pushed, `.1` a
    /// push is running (bursts of commits coalesce into few pushes).
    ssconf: std::sync::Mutex<(bool, bool)>,
    /// Which ssconf values each node holds (see [`SsconfSync`]).
    ssconf_sync: std::sync::Mutex<SsconfSync>,
    /// Held while a push runs.
    ssconf_push: tokio::sync::Mutex<()>,
    /// The nodes' instance lists, reused by instance queries for a moment
    /// (see [`LiveCache`] for when that is right).
    pub live_cache: LiveCache,
    /// Configuration-only cells of instance queries, kept per version of
    /// the configuration (see [`CellCaches`]).
    pub cell_caches: CellCaches,
    /// The master candidates' copies (see [`crate::replication`]).
    pub replication: crate::replication::Replication,
}

/// Least time between the starts of two ssconf pushes: a burst of commits
/// (thousands of instance creations) costs one push per interval, each
/// sending every node the keys that changed, instead of a push per commit.
const SSCONF_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What the nodes hold of the ssconf values, so that a push sends each
/// node only the keys that changed since it last got them (on a big
/// cluster usually `instance_list` alone), and nothing when nothing did.
#[derive(Debug, Default)]
struct SsconfSync {
    /// Each key's value and the generation in which it last changed.
    values: BTreeMap<String, (String, u64)>,
    /// Bumped by every push that changes a value.
    generation: u64,
    /// Per node UUID (the master's for its local files), the generation
    /// of which the node holds every key; absent: nothing known, send all.
    nodes: HashMap<String, u64>,
}

impl SsconfSync {
    /// Records `values` as current; returns the generation that holds them.
    fn update(&mut self, values: BTreeMap<String, String>) -> u64 {
        let mut changed = false;
        let next = self.generation + 1;
        for (k, v) in values {
            match self.values.get_mut(&k) {
                Some((old, _)) if *old == v => {}
                Some(slot) => {
                    *slot = (v, next);
                    changed = true;
                }
                None => {
                    self.values.insert(k, (v, next));
                    changed = true;
                }
            }
        }
        if changed {
            self.generation = next;
        }
        self.generation
    }

    /// The keys node `uuid` lacks.
    fn missing(&self, uuid: &str) -> BTreeMap<String, String> {
        let since = self.nodes.get(uuid).copied().unwrap_or(0);
        self.values
            .iter()
            .filter(|(_, (_, g))| *g > since)
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

impl Master {
    pub fn new(paths: Paths, config: ConfigStore, rpc: Rpc) -> Arc<Self> {
        Arc::new(Master {
            paths,
            config,
            locks: LockManager::new(),
            rpc: Arc::new(rpc),
            queue: OnceLock::new(),
            ssconf: std::sync::Mutex::new((false, false)),
            ssconf_sync: std::sync::Mutex::new(SsconfSync::default()),
            ssconf_push: tokio::sync::Mutex::new(()),
            live_cache: LiveCache::default(),
            cell_caches: CellCaches::default(),
            replication: Default::default(),
        })
    }

    /// Attaches the job queue (once, at start-up).
    pub fn set_queue(&self, q: Arc<JobQueue>) {
        let _ = self.queue.set(q);
    }

    /// The job queue.
    // The daemon attaches the queue before it serves LUXI or runs a job,
    // and nothing else calls this.
    #[allow(clippy::expect_used)]
    pub fn queue(&self) -> &Arc<JobQueue> {
        self.queue
            .get()
            .expect("the job queue is attached before the master serves")
    }
}

impl Master {
    /// Commits config changes, then pushes the ssconf files to the nodes
    /// and the configuration to the master candidates in the background.
    pub fn commit(
        self: &Arc<Self>,
        changes: crate::config::Changes,
    ) -> Result<u64, crate::config::ConfigError> {
        let serial = self.config.commit(changes)?;
        self.live_cache.invalidate();
        self.schedule_ssconf();
        self.schedule_replication();
        Ok(serial)
    }

    /// Pushes the ssconf files soon. While a push runs, further changes
    /// only mark it to run once more when it ends, at the earliest
    /// [`SSCONF_PUSH_INTERVAL`] after it started.
    fn schedule_ssconf(self: &Arc<Self>) {
        {
            let mut st = self.ssconf.lock().unwrap_or_else(|e| e.into_inner());
            st.0 = true;
            if st.1 {
                return;
            }
            st.1 = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut last: Option<tokio::time::Instant> = None;
            loop {
                if let Some(last) = last {
                    // Pace the pushes of a burst of commits.
                    tokio::time::sleep_until(last + SSCONF_PUSH_INTERVAL).await;
                }
                {
                    let mut st = me.ssconf.lock().unwrap_or_else(|e| e.into_inner());
                    if !st.0 {
                        st.1 = false;
                        return;
                    }
                    st.0 = false;
                }
                last = Some(tokio::time::Instant::now());
                me.distribute_ssconf().await;
            }
        });
    }

    /// The ssconf key/values of the current configuration (Ganeti's
    /// `ssconf_*` files, which clients read to find the master).
    pub fn ssconf_values(&self) -> std::collections::BTreeMap<String, String> {
        let cfg = self.config.read();
        let mut nodes: Vec<&objects::Node> = cfg.nodes.values().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let lines = |f: &dyn Fn(&objects::Node) -> Option<String>| -> String {
            nodes
                .iter()
                .filter_map(|n| f(n))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut instances: Vec<&str> = cfg.instances.values().map(|i| i.name.as_str()).collect();
        instances.sort();
        let master = cfg.master_node();
        let mut v = std::collections::BTreeMap::new();
        v.insert("cluster_name".into(), cfg.cluster.cluster_name.clone());
        v.insert(
            "master_node".into(),
            master.map(|m| m.name.clone()).unwrap_or_default(),
        );
        v.insert("master_ip".into(), cfg.cluster.master_ip.clone());
        v.insert("master_netdev".into(), cfg.cluster.master_netdev.clone());
        v.insert(
            "master_netmask".into(),
            cfg.cluster.master_netmask.to_string(),
        );
        v.insert("node_list".into(), lines(&|n| Some(n.name.clone())));
        v.insert(
            "online_nodes".into(),
            lines(&|n| (!n.offline).then(|| n.name.clone())),
        );
        v.insert(
            "master_candidates".into(),
            lines(&|n| n.master_candidate.then(|| n.name.clone())),
        );
        v.insert(
            "master_candidates_ips".into(),
            lines(&|n| n.master_candidate.then(|| n.primary_ip.clone())),
        );
        v.insert(
            "node_primary_ips".into(),
            lines(&|n| Some(format!("{} {}", n.name, n.primary_ip))),
        );
        v.insert(
            "node_secondary_ips".into(),
            lines(&|n| Some(format!("{} {}", n.name, n.secondary_ip))),
        );
        v.insert("instance_list".into(), instances.join("\n"));
        v.insert(
            "hypervisor_list".into(),
            cfg.cluster.enabled_hypervisors.join("\n"),
        );
        v.insert(
            "enabled_disk_templates".into(),
            cfg.cluster.enabled_disk_templates.join("\n"),
        );
        v.insert("cluster_tags".into(), cfg.cluster.tags.join("\n"));
        v.insert(
            "file_storage_dir".into(),
            cfg.cluster.file_storage_dir.clone(),
        );
        v.insert(
            "shared_file_storage_dir".into(),
            cfg.cluster.shared_file_storage_dir.clone(),
        );
        v.insert("release_version".into(), crate::VERSION.into());
        v.insert(
            "maintain_node_health".into(),
            cfg.cluster.maintain_node_health.to_string(),
        );
        v.insert("uid_pool".into(), String::new());
        v.insert(
            "nodegroups".into(),
            cfg.groups
                .values()
                .map(|g| format!("{} {}", g.uuid, g.name))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        v
    }

    /// Makes the next push send node `uuid` every ssconf file (a node
    /// added again may have lost them).
    pub fn ssconf_resend(&self, uuid: &str) {
        let mut sync = self.ssconf_sync.lock().unwrap_or_else(|e| e.into_inner());
        sync.nodes.remove(uuid);
    }

    /// Writes every ssconf file of this (the master) node now, so that
    /// clients find the master as soon as it answers; the next
    /// [`Self::distribute_ssconf`] only sends the other nodes.
    pub fn write_local_ssconf(&self) -> std::io::Result<()> {
        let values = self.ssconf_values();
        let master_uuid = self.config.read().cluster.master_node.clone();
        let mut sync = self.ssconf_sync.lock().unwrap_or_else(|e| e.into_inner());
        let generation = sync.update(values);
        let local = sync.missing(&master_uuid);
        write_ssconf_local(&self.paths, &local)?;
        let g = sync.nodes.entry(master_uuid).or_insert(0);
        *g = (*g).max(generation);
        Ok(())
    }

    /// Writes the ssconf files locally and on every online node, each only
    /// the keys it does not hold yet. Failures are logged: the next push
    /// retries (a node that failed is sent its missing keys again).
    pub async fn distribute_ssconf(self: &Arc<Self>) {
        // One push at a time, so that a node never gets older values after
        // newer ones.
        let _push = self.ssconf_push.lock().await;
        let values = self.ssconf_values();
        let (master_uuid, nodes) = {
            let cfg = self.config.read();
            let nodes: Vec<objects::Node> = cfg
                .nodes
                .values()
                .filter(|n| !n.offline && n.uuid != cfg.cluster.master_node)
                .cloned()
                .collect();
            (cfg.cluster.master_node.clone(), nodes)
        };
        // Per set of missing keys, the nodes that lack exactly those.
        let (generation, local, batches) = {
            let mut sync = self.ssconf_sync.lock().unwrap_or_else(|e| e.into_inner());
            let generation = sync.update(values);
            // Nodes gone or offline may come back without their files.
            sync.nodes
                .retain(|u, _| *u == master_uuid || nodes.iter().any(|n| n.uuid == *u));
            let local = sync.missing(&master_uuid);
            let mut batches: BTreeMap<u64, (BTreeMap<String, String>, Vec<objects::Node>)> =
                BTreeMap::new();
            for n in nodes {
                let since = sync.nodes.get(&n.uuid).copied().unwrap_or(0);
                if since == generation {
                    continue;
                }
                batches
                    .entry(since)
                    .or_insert_with(|| (sync.missing(&n.uuid), Vec::new()))
                    .1
                    .push(n);
            }
            (generation, local, batches)
        };
        if !local.is_empty() {
            match write_ssconf_local(&self.paths, &local) {
                Ok(()) => self.ssconf_synced(&master_uuid, generation),
                Err(e) => tracing::warn!("cannot write local ssconf files: {e}"),
            }
        }
        // Usually one batch: every node lacks the same keys.
        for (values, nodes) in batches.into_values() {
            let req = rpc::api::WriteSsconfFiles { values };
            let results = self.rpc.call_many(&nodes, &req).await;
            for (n, r) in nodes.iter().zip(results) {
                match r {
                    Ok(()) => self.ssconf_synced(&n.uuid, generation),
                    Err(e) => tracing::warn!(
                        "cannot write ssconf files on node {}: {}",
                        n.name,
                        objects::error_chain(&e)
                    ),
                }
            }
        }
    }

    /// The master IP's parameters, from the configuration.
    pub fn master_network_params(&self) -> rpc::api::MasterNetworkParams {
        let cfg = self.config.read();
        rpc::api::MasterNetworkParams {
            ip: cfg.cluster.master_ip.clone(),
            netmask: cfg.cluster.master_netmask,
            netdev: cfg.cluster.master_netdev.clone(),
        }
    }

    /// Brings the master IP up on this node, as a starting master daemon
    /// does; a failure is logged (the cluster works through the node's
    /// own address meanwhile).
    pub async fn activate_master_ip(self: &Arc<Self>) {
        let node = self.config.read().master_node().cloned();
        let Some(node) = node else { return };
        let req = rpc::api::NodeActivateMasterIp {
            params: self.master_network_params(),
        };
        if let Err(e) = self.rpc.call(&node, &req).await {
            tracing::warn!(
                "cannot activate the master IP {}: {}",
                req.params.ip,
                objects::error_chain(&e)
            );
        }
    }

    fn ssconf_synced(&self, uuid: &str, generation: u64) {
        let mut sync = self.ssconf_sync.lock().unwrap_or_else(|e| e.into_inner());
        let g = sync.nodes.entry(uuid.to_string()).or_insert(0);
        *g = (*g).max(generation);
    }
}

/// Writes `ssconf_<key>` files under the local data directory.
pub fn write_ssconf_local(
    paths: &Paths,
    values: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(paths.data_dir())?;
    for (k, v) in values {
        let path = paths.ssconf(k);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{v}\n"))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SsconfSync;
    use std::collections::BTreeMap;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_node_never_synced_lacks_every_ssconf_key() {
        let mut s = SsconfSync::default();
        s.update(values(&[("cluster_name", "c"), ("instance_list", "a")]));
        assert_eq!(
            s.missing("n1"),
            values(&[("cluster_name", "c"), ("instance_list", "a")])
        );
    }

    #[test]
    fn a_synced_node_lacks_only_the_keys_changed_since() {
        let mut s = SsconfSync::default();
        let g1 = s.update(values(&[("cluster_name", "c"), ("instance_list", "a")]));
        s.nodes.insert("n1".into(), g1);
        assert!(s.missing("n1").is_empty());
        let g2 = s.update(values(&[("cluster_name", "c"), ("instance_list", "a\nb")]));
        assert!(g2 > g1);
        assert_eq!(s.missing("n1"), values(&[("instance_list", "a\nb")]));
        // A node that missed a push gets everything it lacks.
        assert_eq!(s.missing("n2").len(), 2);
    }

    #[test]
    fn unchanged_values_keep_the_generation() {
        let mut s = SsconfSync::default();
        let g1 = s.update(values(&[("cluster_name", "c")]));
        let g2 = s.update(values(&[("cluster_name", "c")]));
        assert_eq!(g1, g2);
    }
}
