//! The master daemon's state: configuration, job queue, locks and node RPC,
//! and the executor that runs opcodes for the job queue.

use std::sync::{Arc, OnceLock, Weak};

use luxi::error::GanetiError;
use objects::paths::Paths;
use serde_json::Value;

use crate::config::ConfigStore;
use crate::jobqueue::{JobQueue, OpContext, OpExecutor, OpFuture};
use crate::locking::LockManager;
use crate::rpc::Rpc;

/// Everything the master daemon holds.
pub struct Master {
    pub paths: Paths,
    pub config: ConfigStore,
    pub locks: Arc<LockManager>,
    pub rpc: Arc<Rpc>,
    queue: OnceLock<Arc<JobQueue>>,
    /// Watcher pause, as Ganeti's `SetWatcherPause` sets it.
    pub watcher_pause: std::sync::Mutex<Option<f64>>,
    /// ssconf distribution: `.0` a change is waiting to be pushed, `.1` a
    /// push is running (bursts of commits coalesce into few pushes).
    ssconf: std::sync::Mutex<(bool, bool)>,
}

impl Master {
    pub fn new(paths: Paths, config: ConfigStore, rpc: Rpc) -> Arc<Self> {
        Arc::new(Master {
            paths,
            config,
            locks: LockManager::new(),
            rpc: Arc::new(rpc),
            queue: OnceLock::new(),
            watcher_pause: std::sync::Mutex::new(None),
            ssconf: std::sync::Mutex::new((false, false)),
        })
    }

    /// Attaches the job queue (once, at start-up).
    pub fn set_queue(&self, q: Arc<JobQueue>) {
        let _ = self.queue.set(q);
    }

    /// The job queue.
    pub fn queue(&self) -> &Arc<JobQueue> {
        self.queue
            .get()
            .expect("the job queue is attached before the master serves")
    }
}

/// Runs opcodes for the job queue. Holds the master weakly: the queue is
/// owned by the master.
pub struct Executor {
    master: Weak<Master>,
}

impl Executor {
    pub fn new(master: &Arc<Master>) -> Arc<Self> {
        Arc::new(Executor {
            master: Arc::downgrade(master),
        })
    }
}

impl OpExecutor for Executor {
    fn validate(&self, op: &Value) -> Result<(), GanetiError> {
        luxi::opcodes::parse(op).map(|_| ())
    }

    fn summary(&self, op: &Value) -> String {
        match luxi::opcodes::parse(op) {
            Ok(i) => i.op.summary(),
            Err(_) => op
                .get("OP_ID")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .trim_start_matches("OP_")
                .to_string(),
        }
    }

    fn execute(&self, ctx: OpContext, op: Value) -> OpFuture {
        let master = self.master.upgrade();
        Box::pin(async move {
            let master =
                master.ok_or_else(|| GanetiError::exec("The master daemon is shutting down"))?;
            let input = luxi::opcodes::parse(&op)?;
            crate::lu::run(master, ctx, input).await
        })
    }
}

impl Master {
    /// Commits config changes, then pushes the ssconf files to the nodes
    /// in the background.
    pub fn commit(self: &Arc<Self>, changes: crate::config::Changes) -> Result<u64, GanetiError> {
        let serial = self.config.commit(changes).map_err(|e| {
            GanetiError::configuration(format!(
                "Could not save the configuration: {}",
                crate::lu::common::error_chain(&e)
            ))
        })?;
        self.schedule_ssconf();
        Ok(serial)
    }

    /// Pushes the ssconf files soon. While a push runs, further changes
    /// only mark it to run once more when it ends.
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
            loop {
                {
                    let mut st = me.ssconf.lock().unwrap_or_else(|e| e.into_inner());
                    if !st.0 {
                        st.1 = false;
                        return;
                    }
                    st.0 = false;
                }
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

    /// Writes the ssconf files locally and on every online node. Failures
    /// are logged: the next change retries.
    pub async fn distribute_ssconf(self: &Arc<Self>) {
        let values = self.ssconf_values();
        if let Err(e) = write_ssconf_local(&self.paths, &values) {
            tracing::warn!("cannot write local ssconf files: {e}");
        }
        let nodes: Vec<objects::Node> = {
            let cfg = self.config.read();
            cfg.nodes
                .values()
                .filter(|n| !n.offline && n.uuid != cfg.cluster.master_node)
                .cloned()
                .collect()
        };
        let req = noded::api::WriteSsconfFiles { values };
        for (n, r) in nodes.iter().zip(self.rpc.call_many(&nodes, &req).await) {
            if let Err(e) = r {
                tracing::warn!(
                    "cannot write ssconf files on node {}: {}",
                    n.name,
                    crate::lu::common::error_chain(&e)
                );
            }
        }
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
