//! The supervision of a node's `drbd` disks, run by the node daemon about
//! once a second (and by tests, step by step): it reports a storage
//! daemon that died, connects a disk to a peer that answers again,
//! resumes a mirror stopped by a failed write (a resync of what the peer
//! missed), records the peer's copy as consistent once it has every
//! write, and measures the sync speed.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{debug, error, info, warn};

use super::daemon;
use super::layout::DrbdDirs;
use super::meta::{self, DataState};
use super::replication::{self, Job};
use super::state::{DiskLock, RunState};
use crate::context::StorageContext;
use crate::error::Result;
use crate::qmp::Qmp;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One round over every `drbd` disk assembled on the node of `ctx`.
pub fn supervise(ctx: &StorageContext) {
    let dirs = DrbdDirs::new(ctx.paths());
    for disk in dirs.disks() {
        let state_file = dirs.state_file(&disk);
        let lock = DiskLock::of(&state_file);
        let _held = lock.lock();
        let mut st = match RunState::load(&state_file) {
            Ok(Some(st)) => st,
            // Shut down meanwhile.
            Ok(None) => continue,
            Err(e) => {
                warn!(disk, error = %objects::error_chain(&e), "unreadable drbd runtime state");
                continue;
            }
        };
        let before = st.clone();
        if let Err(e) = tick(&dirs, &mut st) {
            debug!(disk, error = %objects::error_chain(&e), "drbd supervision");
        }
        if st != before {
            if let Err(e) = st.save(&state_file) {
                warn!(disk, error = %objects::error_chain(&e), "cannot save the drbd runtime state");
            }
        }
    }
}

fn tick(dirs: &DrbdDirs, st: &mut RunState) -> Result<()> {
    let disk = st.disk.clone();
    let qmp = dirs.qmp_socket(&disk);
    if daemon::live_pid(&dirs.pid_file(&disk), &qmp).is_none() {
        if !st.death_reported {
            error!(
                disk,
                instance = %st.instance,
                "the storage daemon of drbd disk {disk} died: the disk is unusable on this node \
                 until it is assembled again"
            );
            st.death_reported = true;
        }
        return Ok(());
    }
    let mut q = daemon::qmp(&disk, &qmp)?;
    let Some(job) = replication::job(&mut q, &disk)? else {
        st.sample = None;
        return connect_if_needed(&mut q, dirs, st);
    };
    if job.stopped_on_error() && !st.sync_paused {
        if !replication::probe(&st.link) {
            return Ok(());
        }
        if st.primary && st.peer_marked != Some(false) {
            // The peer's copy is inconsistent while it catches up.
            replication::push(
                &disk,
                &st.link,
                dirs,
                &DataState::new(&disk, false, &st.link.local.node),
            )?;
            st.peer_marked = Some(false);
        }
        info!(disk, peer = %st.link.peer.node, missed = job.out_of_sync(), "peer is back: resyncing what it missed");
        st.resync_total = Some(job.out_of_sync());
        return replication::resume(&mut q, &disk);
    }
    if job.in_sync() {
        if st.primary && st.peer_marked != Some(true) {
            replication::push(
                &disk,
                &st.link,
                dirs,
                &DataState::new(&disk, true, &st.link.local.node),
            )?;
            st.peer_marked = Some(true);
            info!(disk, peer = %st.link.peer.node, "peer's copy is in sync");
        }
        st.resync_total = None;
        st.sample = None;
        st.rate = None;
        return Ok(());
    }
    sample(st, &job);
    Ok(())
}

/// Measures the sync speed from the bytes left between two rounds.
fn sample(st: &mut RunState, job: &Job) {
    let t = now();
    let left = job.out_of_sync();
    if let Some((t0, left0)) = st.sample {
        let dt = t - t0;
        if dt > 0.0 && left0 >= left {
            let r = (left0 - left) as f64 / dt;
            st.rate = Some(match st.rate {
                Some(old) => 0.5 * old + 0.5 * r,
                None => r,
            });
        }
    }
    st.sample = Some((t, left));
}

/// Connects a disk that does not replicate to its peer when the peer
/// answers (not after a disconnect on request). A primary that does not
/// know its peer to have every write first marks the peer's copy
/// inconsistent, then copies the whole disk.
pub(super) fn connect_if_needed(q: &mut Qmp, dirs: &DrbdDirs, st: &mut RunState) -> Result<()> {
    if st.standalone || replication::job(q, &st.disk)?.is_some() || !replication::probe(&st.link) {
        return Ok(());
    }
    let disk = st.disk.clone();
    // A secondary connects back once its copy is whole (the primary
    // marks it so when its sync into it ends): not while the primary
    // may be connecting to it (see `replication::add_peer_node`).
    if !st.primary
        && !meta::read_data(&st.meta, &disk)
            .ok()
            .flatten()
            .is_some_and(|d| d.consistent)
    {
        return Ok(());
    }
    let full = st.primary && !st.skip_sync_once;
    st.skip_sync_once = false;
    if full {
        replication::push(
            &disk,
            &st.link,
            dirs,
            &DataState::new(&disk, false, &st.link.local.node),
        )?;
        st.peer_marked = Some(false);
    }
    replication::connect(q, &disk, &st.link, full, st.resync_rate)?;
    st.resync_total = None;
    st.sample = None;
    st.rate = None;
    Ok(())
}
