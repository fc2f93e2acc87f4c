//! Live data for queries, fetched from the nodes in parallel. A node that
//! does not answer gives "no data" for its rows; an offline node gives
//! "offline". Neither fails the query.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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

/// Live data of the nodes asked.
#[derive(Default)]
pub struct Live {
    pub node_info: HashMap<String, NodeAnswer<api::NodeInfoResult>>,
    pub instances: HashMap<String, NodeAnswer<BTreeMap<String, api::RunningInstance>>>,
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
                    Ok(d) => NodeAnswer::Data(d),
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
