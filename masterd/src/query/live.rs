//! Live data for queries, fetched from the nodes in parallel. A node that
//! does not answer gives "no data" for its rows; an offline node gives
//! "offline". Neither fails the query.
//!
//! The instance lists of instance queries may come from [`LiveCache`]: a
//! node's answer is reused for at most [`LIVE_TTL`], and never across an
//! opcode or a configuration change (see there why that stays correct).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use objects::Node;
use rpc::api;

use crate::master::Master;

/// What one node told us (or why it did not).
#[derive(Debug, Clone)]
pub enum NodeAnswer<T> {
    Offline,
    NoData,
    Data(T),
}

impl<T> NodeAnswer<T> {
    pub fn data(&self) -> Option<&T> {
        match self {
            NodeAnswer::Data(d) => Some(d),
            _ => None,
        }
    }
}

/// What runs on one node, by instance name.
pub type RunningMap = BTreeMap<String, api::RunningInstance>;

/// Live data of the nodes asked.
#[derive(Default)]
pub struct Live {
    pub node_info: HashMap<String, NodeAnswer<api::NodeInfoResult>>,
    pub instances: HashMap<String, NodeAnswer<Arc<RunningMap>>>,
}

/// How long a node's instance list may be reused by instance queries.
pub const LIVE_TTL: Duration = Duration::from_millis(1000);

/// The nodes' instance lists, kept for a moment so that a burst of
/// instance queries (a web page polling every instance, scripts listing
/// one instance after another) does not ask every node each time.
///
/// Why a kept answer is still right: it is used only while
/// - it is younger than [`LIVE_TTL`];
/// - no opcode ran since its fetch began, and none runs now: every change
///   the master makes to what runs where (start, shutdown, reboot,
///   migration, failover, creation, removal, ...) is an opcode of a job,
///   and the start and the end of each opcode drop every kept answer;
/// - the configuration did not change since its fetch began (a node's
///   address, offline flag, the enabled hypervisors).
///
/// What changes without the master (a guest that crashes, is killed or
/// shuts itself down) shows within [`LIVE_TTL`], as it would in a query
/// sent that much earlier. Node answers that failed are never kept, and
/// node queries, the iallocator and the logical units always ask the nodes.
#[derive(Default)]
pub struct LiveCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Opcodes running now.
    running: u32,
    /// Bumped by the start and the end of each opcode and by each
    /// configuration commit.
    generation: u64,
    /// By node UUID: when the fetch began, in which generation, the answer.
    entries: HashMap<String, (Instant, u64, Arc<RunningMap>)>,
}

impl LiveCache {
    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An opcode starts: nothing kept is used until it ends.
    pub fn op_started(&self) -> OpRunning<'_> {
        let mut st = self.state();
        st.running += 1;
        st.generation += 1;
        st.entries.clear();
        OpRunning(self)
    }

    /// The configuration changed: nothing kept is used again.
    pub fn invalidate(&self) {
        let mut st = self.state();
        st.generation += 1;
        st.entries.clear();
    }

    /// The generation a fetch starting now belongs to; `None` while an
    /// opcode runs (then nothing is kept or reused).
    fn begin(&self) -> Option<u64> {
        let st = self.state();
        (st.running == 0).then_some(st.generation)
    }

    /// The kept answer of `node`, if it may be used now (see the type).
    fn get(&self, node: &str, generation: u64) -> Option<Arc<RunningMap>> {
        let st = self.state();
        match st.entries.get(node) {
            Some((at, g, map))
                if st.running == 0 && *g == generation && at.elapsed() < LIVE_TTL =>
            {
                Some(map.clone())
            }
            _ => None,
        }
    }

    /// Keeps `map`, the answer of a fetch that began at `at` in
    /// `generation`, unless an opcode or a commit came since.
    fn put(&self, node: &str, generation: u64, at: Instant, map: Arc<RunningMap>) {
        let mut st = self.state();
        if st.running == 0 && st.generation == generation {
            st.entries.insert(node.to_string(), (at, generation, map));
        }
    }
}

/// An opcode running; its end (drop) lets kept answers be made again.
pub struct OpRunning<'a>(&'a LiveCache);

impl Drop for OpRunning<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state();
        st.running = st.running.saturating_sub(1);
        st.generation += 1;
        st.entries.clear();
    }
}

impl Live {
    /// Fetches node info (`with_node_info`) and instance lists
    /// (`with_instances`) from `nodes`.
    pub async fn fetch(
        master: &Arc<Master>,
        nodes: Vec<Node>,
        with_node_info: bool,
        with_instances: bool,
    ) -> Live {
        let mut live = Live::default();
        let (offline, online): (Vec<Node>, Vec<Node>) = nodes.into_iter().partition(|n| n.offline);
        for n in &offline {
            live.node_info.insert(n.uuid.clone(), NodeAnswer::Offline);
            live.instances.insert(n.uuid.clone(), NodeAnswer::Offline);
        }
        let hvs: Vec<(String, objects::ParamDict)> = {
            let cfg = master.config.read();
            cfg.cluster
                .enabled_hypervisors
                .iter()
                .map(|h| {
                    (
                        h.clone(),
                        cfg.cluster.hvparams.get(h).cloned().unwrap_or_default(),
                    )
                })
                .collect()
        };
        let info_req = api::NodeInfo {
            hypervisors: hvs.iter().take(1).cloned().collect(),
            storage: vec![default_storage_unit(&master.config.read().cluster)],
        };
        let list_req = api::AllInstancesInfo { hypervisors: hvs };
        let (infos, lists) = tokio::join!(
            async {
                if with_node_info {
                    Some(master.rpc.call_many(&online, &info_req).await)
                } else {
                    None
                }
            },
            async {
                if with_instances {
                    Some(master.rpc.call_many(&online, &list_req).await)
                } else {
                    None
                }
            }
        );
        if let Some(infos) = infos {
            for (n, r) in online.iter().zip(infos) {
                let a = match r {
                    Ok(d) => NodeAnswer::Data(d),
                    Err(e) => {
                        tracing::debug!("node_info on {} failed: {e}", n.name);
                        NodeAnswer::NoData
                    }
                };
                live.node_info.insert(n.uuid.clone(), a);
            }
        }
        if let Some(lists) = lists {
            for (n, r) in online.iter().zip(lists) {
                let a = match r {
                    Ok(d) => NodeAnswer::Data(Arc::new(d)),
                    Err(e) => {
                        tracing::debug!("all_instances_info on {} failed: {e}", n.name);
                        NodeAnswer::NoData
                    }
                };
                live.instances.insert(n.uuid.clone(), a);
            }
        }
        live
    }
}

impl Live {
    /// The instance lists of `nodes`, for an instance query: kept answers
    /// of [`Master::live_cache`] where they may be used, the other nodes
    /// asked in parallel (and their answers kept).
    pub async fn instances(master: &Arc<Master>, nodes: Vec<Node>) -> Live {
        let cache = &master.live_cache;
        let started = Instant::now();
        let generation = cache.begin();
        let mut live = Live::default();
        let mut ask = Vec::new();
        for n in nodes {
            if n.offline {
                live.instances.insert(n.uuid.clone(), NodeAnswer::Offline);
                continue;
            }
            match generation.and_then(|g| cache.get(&n.uuid, g)) {
                Some(map) => {
                    live.instances.insert(n.uuid.clone(), NodeAnswer::Data(map));
                }
                None => ask.push(n),
            }
        }
        if ask.is_empty() {
            return live;
        }
        let fetched = Live::fetch(master, ask, false, true).await;
        for (uuid, a) in fetched.instances {
            if let (Some(g), NodeAnswer::Data(map)) = (generation, &a) {
                cache.put(&uuid, g, started, map.clone());
            }
            live.instances.insert(uuid, a);
        }
        live
    }
}

/// The storage that a node's `dtotal`/`dfree` measure, as Ganeti's: that
/// of the first enabled disk template that has storage (the volume group
/// for `plain`/`drbd`), else the file storage directory.
fn default_storage_unit(cluster: &objects::Cluster) -> api::StorageUnit {
    use objects::DiskTemplate;
    for t in &cluster.enabled_disk_templates {
        match t.parse::<DiskTemplate>() {
            Ok(DiskTemplate::Plain | DiskTemplate::Drbd) => {
                if let Some(vg) = cluster.volume_group() {
                    return api::StorageUnit {
                        kind: DiskTemplate::Plain,
                        name: Some(vg.to_string()),
                    };
                }
            }
            Ok(kind @ (DiskTemplate::File | DiskTemplate::SharedFile)) => {
                return api::StorageUnit { kind, name: None }
            }
            _ => {}
        }
    }
    api::StorageUnit {
        kind: DiskTemplate::File,
        name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> Arc<RunningMap> {
        Arc::new(RunningMap::new())
    }

    #[test]
    fn a_kept_answer_serves_until_it_is_too_old() {
        let cache = LiveCache::default();
        let g = cache.begin().unwrap();
        cache.put("n1", g, Instant::now(), map());
        assert!(cache.get("n1", g).is_some());
        assert!(cache.get("n2", g).is_none());
        let old = Instant::now().checked_sub(LIVE_TTL).unwrap();
        cache.put("n1", g, old, map());
        assert!(cache.get("n1", g).is_none());
    }

    #[test]
    fn nothing_kept_serves_during_or_after_an_opcode() {
        let cache = LiveCache::default();
        let g = cache.begin().unwrap();
        cache.put("n1", g, Instant::now(), map());
        let running = cache.op_started();
        // Nothing is reused or kept while it runs.
        assert!(cache.begin().is_none());
        assert!(cache.get("n1", g).is_none());
        cache.put("n1", g, Instant::now(), map());
        drop(running);
        // Nor after: the answer was asked before the opcode ended.
        assert!(cache.get("n1", g).is_none());
        let g2 = cache.begin().unwrap();
        assert!(cache.get("n1", g2).is_none());
        // A fetch that began before an opcode that came and went is not kept.
        drop(cache.op_started());
        cache.put("n1", g2, Instant::now(), map());
        let g3 = cache.begin().unwrap();
        assert!(cache.get("n1", g3).is_none());
    }

    #[test]
    fn a_config_change_drops_what_was_kept() {
        let cache = LiveCache::default();
        let g = cache.begin().unwrap();
        cache.put("n1", g, Instant::now(), map());
        cache.invalidate();
        let g2 = cache.begin().unwrap();
        assert!(cache.get("n1", g).is_none());
        assert!(cache.get("n1", g2).is_none());
    }
}
