//! The master candidates' copies of the configuration and of the job
//! queue, which `gnt-cluster master-failover` starts a new master from.
//!
//! # What a candidate holds
//!
//! - The whole configuration as one JSON document (`write_config`), with
//!   its `serial_no`. The node keeps a push only when its serial is higher
//!   than the copy's, so copies only ever move forward.
//! - Every job the master's queue has committed (`jobqueue_update`), one
//!   file per job, newest state.
//! - The cluster files a master needs (RAPI certificate and users, ...),
//!   sent when the node becomes a candidate, as `redist-conf` sends them.
//!
//! # When
//!
//! After every configuration commit and every job queue commit, in the
//! background: one push at a time (so a candidate sees the configuration's
//! serials and each job's states in the order they were committed), and a
//! burst of commits coalesces into one push of the newest state. A node
//! that just became a candidate, or missed a push of jobs, is sent the
//! whole queue the next time. The master daemon pushes once more when it
//! is told to stop (`node_stop_master`, the first step of a planned
//! failover), so a planned failover loses nothing that was acknowledged.
//! A master that dies loses what it had not pushed yet: at most the
//! changes of the last moments (pushes take milliseconds on a LAN).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use objects::error_chain;
use rpc::api::{JobqueueUpdate, ReplicatedJob, WriteConfig};

use crate::master::Master;

/// Most jobs sent in one `jobqueue_update`.
const JOBS_PER_CALL: usize = 500;

/// How long a stopping master daemon tries to push its last changes.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// What the master knows of the candidates' copies.
#[derive(Default)]
pub struct Replication {
    /// The configuration changed since the last push.
    config_dirty: AtomicBool,
    /// Candidates (by UUID) whose queue copy has every committed job;
    /// any other candidate is sent the whole queue.
    queue_synced: std::sync::Mutex<HashSet<String>>,
    /// Signalled when the configuration changed.
    wake: tokio::sync::Notify,
    /// Held while a push runs.
    push: tokio::sync::Mutex<()>,
}

/// The jobs to send each candidate: those committed since the last push,
/// and to a candidate that lacks part of the queue the whole queue (whose
/// states are at least as new: `snapshot` is read after the outbox was
/// taken).
pub fn jobs_for(
    synced: bool,
    outbox: &BTreeMap<u64, (bool, String)>,
    snapshot: &[(u64, bool, String)],
) -> Vec<ReplicatedJob> {
    let mut out: BTreeMap<u64, ReplicatedJob> = outbox
        .iter()
        .map(|(id, (archived, data))| {
            (
                *id,
                ReplicatedJob {
                    id: *id,
                    archived: *archived,
                    data: data.clone(),
                },
            )
        })
        .collect();
    if !synced {
        for (id, archived, data) in snapshot {
            out.insert(
                *id,
                ReplicatedJob {
                    id: *id,
                    archived: *archived,
                    data: data.clone(),
                },
            );
        }
    }
    out.into_values().collect()
}

impl Master {
    /// Marks the configuration changed: the candidates get it soon.
    pub fn schedule_replication(&self) {
        self.replication.config_dirty.store(true, Ordering::Release);
        self.replication.wake.notify_one();
    }

    /// Starts pushing to the candidates (once, at start-up): the whole
    /// configuration and queue first, then every change.
    pub fn start_replication(self: &Arc<Self>) {
        let outbox = self.queue().outbox();
        outbox.enable();
        self.replication.config_dirty.store(true, Ordering::Release);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                me.replicate().await;
                tokio::select! {
                    _ = me.replication.wake.notified() => {}
                    _ = outbox.notify.notified() => {}
                }
            }
        });
    }

    /// Pushes what changed (the configuration if it did, the jobs
    /// committed since the last push) to every online master candidate
    /// but this node. Failures are logged; the next push retries.
    pub async fn replicate(self: &Arc<Self>) {
        let _push = self.replication.push.lock().await;
        let config_dirty = self.replication.config_dirty.swap(false, Ordering::AcqRel);
        let outbox = self.queue().outbox().take();
        let candidates: Vec<objects::Node> = {
            let cfg = self.config.read();
            cfg.nodes
                .values()
                .filter(|n| n.master_candidate && !n.offline && n.uuid != cfg.cluster.master_node)
                .cloned()
                .collect()
        };
        if candidates.is_empty() {
            self.replication
                .queue_synced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            return;
        }
        if config_dirty {
            let (serial_no, data) = self.config.snapshot_json();
            let req = WriteConfig { serial_no, data };
            let results = self.rpc.call_many(&candidates, &req).await;
            for (n, r) in candidates.iter().zip(results) {
                if let Err(e) = r {
                    tracing::warn!(
                        "cannot push configuration {serial_no} to candidate {}: {}",
                        n.name,
                        error_chain(&e)
                    );
                }
            }
        }
        let (synced, unsynced): (Vec<objects::Node>, Vec<objects::Node>) = {
            let mut set = self
                .replication
                .queue_synced
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // A node that stopped being a candidate (or left) missed jobs
            // meanwhile: when it is one again, it gets the whole queue.
            set.retain(|u| candidates.iter().any(|n| n.uuid == *u));
            candidates.into_iter().partition(|n| set.contains(&n.uuid))
        };
        let snapshot = if unsynced.is_empty() {
            Vec::new()
        } else {
            self.queue().snapshot()
        };
        for n in &unsynced {
            self.upload_cluster_files(n).await;
        }
        for (nodes, is_synced) in [(synced, true), (unsynced, false)] {
            if nodes.is_empty() {
                continue;
            }
            let jobs = jobs_for(is_synced, &outbox, &snapshot);
            if jobs.is_empty() && is_synced {
                continue;
            }
            let last_id = self.queue().last_id();
            let mut ok: Vec<bool> = vec![true; nodes.len()];
            // At least one call, so that a new candidate learns `last_id`.
            let chunks: Vec<&[ReplicatedJob]> = if jobs.is_empty() {
                vec![&[]]
            } else {
                jobs.chunks(JOBS_PER_CALL).collect()
            };
            for chunk in chunks {
                let req = JobqueueUpdate {
                    jobs: chunk.to_vec(),
                    last_id,
                };
                let results = self.rpc.call_many(&nodes, &req).await;
                for (i, r) in results.into_iter().enumerate() {
                    if let Err(e) = r {
                        ok[i] = false;
                        tracing::warn!(
                            "cannot push jobs to candidate {}: {}",
                            nodes[i].name,
                            error_chain(&e)
                        );
                    }
                }
            }
            let mut set = self
                .replication
                .queue_synced
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (n, good) in nodes.iter().zip(ok) {
                if good {
                    set.insert(n.uuid.clone());
                } else {
                    set.remove(&n.uuid);
                }
            }
        }
    }

    /// Sends a new candidate the cluster files a master needs (the RAPI
    /// certificate and users, ...), as `redist-conf` does.
    async fn upload_cluster_files(self: &Arc<Self>, node: &objects::Node) {
        use crate::lu::cluster::{FILES_ALL, FILES_CANDIDATES};
        for rel in FILES_ALL.iter().chain(FILES_CANDIDATES) {
            let Ok(content) = std::fs::read_to_string(self.paths.root().join(rel)) else {
                continue;
            };
            let req = rpc::api::UploadFile {
                path: format!("/{rel}"),
                content,
                mode: 0o600,
            };
            if let Err(e) = self.rpc.call(node, &req).await {
                tracing::warn!(
                    "cannot copy /{rel} to candidate {}: {}",
                    node.name,
                    error_chain(&e)
                );
            }
        }
    }

    /// Pushes everything once more, waiting for it (at most
    /// [`FLUSH_TIMEOUT`]): the last act of a master daemon told to stop.
    pub async fn flush_replication(self: &Arc<Self>) {
        self.replication.config_dirty.store(true, Ordering::Release);
        if tokio::time::timeout(FLUSH_TIMEOUT, self.replicate())
            .await
            .is_err()
        {
            tracing::warn!("the last push to the master candidates did not finish in time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(pairs: &[(u64, &str)]) -> BTreeMap<u64, (bool, String)> {
        pairs
            .iter()
            .map(|(id, d)| (*id, (false, d.to_string())))
            .collect()
    }

    #[test]
    fn a_synced_candidate_gets_only_the_jobs_committed_since() {
        let jobs = jobs_for(
            true,
            &outbox(&[(3, "c3")]),
            &[(1, false, "a".into()), (3, false, "c3".into())],
        );
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].id, 3);
    }

    #[test]
    fn a_new_candidate_gets_the_whole_queue_in_job_order() {
        let jobs = jobs_for(
            false,
            &outbox(&[(3, "old")]),
            &[(2, false, "b".into()), (3, true, "new".into())],
        );
        let ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![2, 3]);
        // The snapshot, read after the outbox was taken, is the newer state.
        assert_eq!(jobs[1].data, "new");
        assert!(jobs[1].archived);
    }
}
