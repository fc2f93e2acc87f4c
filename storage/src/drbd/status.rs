//! A `drbd` disk's status on one node, in Ganeti's terms (sync percent,
//! time left, degraded, local disk status) and in its own.

use rpc::storage::{BlockDevStatus, DrbdStatus, LocalDiskStatus};

use super::layout::host_port;
use super::meta;
use super::replication::{self, Job};
use super::state::RunState;
use super::DrbdDevice;
use crate::error::Result;

pub(super) fn status(dev: &DrbdDevice) -> Result<BlockDevStatus> {
    let uuid = dev.uuid();
    let consistent = dev
        .volume_path(false)
        .and_then(|m| meta::read_data(&m, uuid))
        .ok()
        .flatten()
        .is_some_and(|d| d.consistent);
    let st = RunState::load(&dev.dirs.state_file(uuid)).ok().flatten();
    let local_disk = if consistent {
        LocalDiskStatus::Okay
    } else {
        LocalDiskStatus::Unknown
    };
    let primary = st.as_ref().is_some_and(|s| s.primary);
    let peer = format!(
        "{} ({})",
        dev.link.peer.node,
        host_port(&dev.link.peer.ip, dev.link.port)
    );
    let down = |problem: String, ldisk| BlockDevStatus {
        dev_path: None,
        sync_percent: None,
        estimated_time: None,
        is_degraded: true,
        ldisk_status: ldisk,
        drbd: Some(DrbdStatus {
            primary,
            daemon_running: false,
            peer_reachable: replication::probe(&dev.link),
            replicating: false,
            out_of_sync_bytes: 0,
            syncing: false,
            problem: Some(problem),
        }),
    };
    if dev.live_pid().is_none() {
        return Ok(match st {
            // Assembled once, and the daemon is gone.
            Some(_) => down(
                "the storage daemon died: assemble the disk again".into(),
                LocalDiskStatus::Faulty,
            ),
            None => down("not assembled on this node".into(), local_disk),
        });
    }
    let mut q = dev.qmp()?;
    let job = replication::job(&mut q, uuid)?;
    let peer_reachable = replication::probe(&dev.link);
    let standalone = st.as_ref().is_some_and(|s| s.standalone);
    let in_sync = job.as_ref().is_some_and(Job::in_sync) && peer_reachable;
    let (syncing, oos) = match &job {
        Some(j) => (
            !j.stopped_on_error() && j.out_of_sync() > 0,
            j.out_of_sync(),
        ),
        None => (false, 0),
    };
    let sync_percent = match (&job, syncing) {
        (Some(j), true) => Some(percent(j, st.as_ref().and_then(|s| s.resync_total))),
        _ => None,
    };
    let estimated_time = match (syncing, st.as_ref().and_then(|s| s.rate)) {
        (true, Some(rate)) if rate > 0.0 => Some((oos as f64 / rate).ceil() as u64),
        _ => None,
    };
    let problem = if !peer_reachable {
        Some(format!("peer {peer} does not answer"))
    } else if standalone {
        Some("disconnected from its peer on request".to_string())
    } else if job.is_none() {
        Some(format!("not connected to peer {peer}"))
    } else if job.as_ref().is_some_and(Job::stopped_on_error) {
        Some(format!(
            "replication stopped on a failed write: the peer misses {oos} bytes"
        ))
    } else if syncing {
        Some(format!(
            "syncing: {oos} bytes left ({:.1}%)",
            sync_percent.unwrap_or(0.0)
        ))
    } else if !consistent {
        Some("the local copy is not consistent: a sync into it has not finished".into())
    } else {
        None
    };
    Ok(BlockDevStatus {
        dev_path: Some(dev.uri()),
        sync_percent,
        estimated_time,
        is_degraded: !(in_sync && consistent),
        ldisk_status: local_disk,
        drbd: Some(DrbdStatus {
            primary,
            daemon_running: true,
            peer_reachable,
            replicating: job.as_ref().is_some_and(|j| !j.stopped_on_error()),
            out_of_sync_bytes: oos,
            syncing,
            problem,
        }),
    })
}

/// How far a sync is, percent (below 100 while anything is left): of the
/// disk for a first full copy, of what the peer missed for a resync.
fn percent(job: &Job, resync_total: Option<u64>) -> f64 {
    let left = job.out_of_sync() as f64;
    let p = match resync_total {
        Some(total) if job.ready && total > 0 => 100.0 * (1.0 - left / total as f64),
        _ if job.len > 0 => 100.0 * job.offset.min(job.len) as f64 / job.len as f64,
        _ => 0.0,
    };
    p.clamp(0.0, 99.9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_progress_is_of_what_is_copied() {
        let full = Job {
            status: "running".into(),
            ready: false,
            paused: false,
            io_ok: true,
            offset: 256 << 20,
            len: 1024 << 20,
            dirty: Some(768 << 20),
        };
        assert_eq!(percent(&full, None), 25.0);
        let resync = Job {
            ready: true,
            offset: 1024 << 20,
            len: 1025 << 20,
            dirty: Some(1 << 19),
            ..full.clone()
        };
        assert_eq!(percent(&resync, Some(1 << 20)), 50.0);
        // Never 100 while anything is left.
        let nearly = Job {
            offset: 1024 << 20,
            len: 1024 << 20,
            ..full
        };
        assert!(percent(&nearly, None) < 100.0);
    }
}
