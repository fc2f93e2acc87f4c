//! The replication of a running storage daemon, over QMP: the connection
//! to the peer's copy (an NBD client node, `peer`), the synchronous mirror
//! onto it (job `replicate`), and the records written into the peer's
//! meta volume.
//!
//! The mirror is QEMU's `blockdev-mirror` in `write-blocking` mode from
//! the disk's `top` node: every write of a local user goes to the local
//! volume, then to the peer's, before it is acknowledged (DRBD's protocol
//! C). `sync: full` first copies the whole disk (a primary whose peer may
//! lack writes); `sync: none` copies only new writes. A failed write to
//! the peer (`on-target-error: stop`) does not fail the user's write: the
//! job stops, with the region marked in its dirty bitmap, and keeps
//! marking what the user writes; resuming it once the peer is back copies
//! exactly what the peer missed.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{debug, info};

use super::layout::{exports, DrbdDirs, Link};
use super::meta::DataState;
use crate::error::{Result, StorageError};
use crate::qmp::Qmp;

/// The mirror job.
pub const JOB: &str = "replicate";
/// The node of the peer's data volume.
const PEER: &str = "peer";
/// The mirror's filter node.
const FILTER: &str = "replicating";
/// How long the peer has to accept a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a connection to the peer that failed waits before its second
/// try (see `add_peer_node`).
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long a job may take to go away once cancelled.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the record for the peer's meta volume may take to send.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

fn qmp_err(disk: &str) -> impl Fn(crate::qmp::QmpError) -> StorageError + '_ {
    move |source| StorageError::Qmp {
        disk: disk.to_string(),
        source,
    }
}

/// The mirror job as QEMU reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub status: String,
    /// The first full copy is done (QEMU's `ready`).
    pub ready: bool,
    pub paused: bool,
    /// The last write to the peer worked (`io-status: ok`).
    pub io_ok: bool,
    pub offset: u64,
    pub len: u64,
    /// Bytes the peer lacks, from the job's dirty bitmap.
    pub dirty: Option<u64>,
}

impl Job {
    /// Bytes the peer lacks.
    pub fn out_of_sync(&self) -> u64 {
        self.dirty
            .unwrap_or_else(|| self.len.saturating_sub(self.offset))
    }

    /// The peer has every write and gets each new one.
    pub fn in_sync(&self) -> bool {
        self.ready && !self.paused && self.io_ok && self.out_of_sync() == 0
    }

    /// The job stopped on a failed write to the peer.
    pub fn stopped_on_error(&self) -> bool {
        !self.io_ok && (self.paused || self.status == "standby" || self.status == "paused")
    }
}

/// The mirror job of the daemon, if it runs.
pub fn job(q: &mut Qmp, disk: &str) -> Result<Option<Job>> {
    let jobs = q.execute("query-block-jobs", None).map_err(qmp_err(disk))?;
    let Some(j) = jobs
        .as_array()
        .and_then(|a| a.iter().find(|j| j["device"] == JOB))
    else {
        return Ok(None);
    };
    let u = |k: &str| j.get(k).and_then(Value::as_u64).unwrap_or(0);
    let b = |k: &str| j.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut job = Job {
        status: j["status"].as_str().unwrap_or_default().to_string(),
        ready: b("ready"),
        paused: b("paused"),
        io_ok: j["io-status"].as_str().unwrap_or("ok") == "ok",
        offset: u("offset"),
        len: u("len"),
        dirty: None,
    };
    // The job's own (unnamed) bitmap on the disk's node counts what the
    // peer lacks, without the writes in flight that `len - offset` holds.
    let nodes = q
        .run("query-named-block-nodes", json!({"flat": true}))
        .map_err(qmp_err(disk))?;
    job.dirty = nodes
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node-name"] == "top"))
        .and_then(|n| n["dirty-bitmaps"].as_array())
        .and_then(|bms| bms.iter().find(|b| b.get("name").is_none()))
        .and_then(|b| b["count"].as_u64());
    Ok(Some(job))
}

/// Whether the peer's storage daemon accepts connections.
pub fn probe(link: &Link) -> bool {
    let Ok(ip) = link.peer.ip.parse() else {
        return false;
    };
    TcpStream::connect_timeout(&SocketAddr::new(ip, link.port), PROBE_TIMEOUT).is_ok()
}

/// An NBD client node for export `export` of the peer.
fn nbd_client(link: &Link, export: String) -> Value {
    json!({
        "driver": "nbd",
        "server": {"type": "inet", "host": link.peer.ip, "port": link.port.to_string()},
        "export": export,
        "tls-creds": "tls-client",
        "tls-hostname": link.peer.node,
        // Never hold a write while the peer is away: fail it (the job
        // marks it dirty) and reconnect on a later request.
        "reconnect-delay": 0,
    })
}

/// Adds a node that connects to the peer's NBD server, trying twice.
///
/// QEMU opens such a node synchronously, and its own NBD server serves
/// no handshake meanwhile. When both nodes of a disk open one at the
/// same moment, each waits for the other until one server's handshake
/// limit (10 s) drops its client. The dropped side then pauses before
/// its second try, which lets its server finish the other side's
/// handshake; the second try finds the other side idle. (Trying again at
/// once would start the same wait over.) A peer that refuses for good
/// fails both tries quickly.
fn add_peer_node(q: &mut Qmp, disk: &str, node: Value) -> Result<()> {
    match q.run("blockdev-add", node.clone()) {
        Ok(_) => Ok(()),
        Err(e) => {
            debug!(disk, error = %e, "connecting to the peer failed once; trying again");
            if let Some(name) = node["node-name"].as_str() {
                let _ = q.run("blockdev-del", json!({"node-name": name}));
            }
            std::thread::sleep(RETRY_PAUSE);
            q.run("blockdev-add", node)
                .map(|_| ())
                .map_err(qmp_err(disk))
        }
    }
}

/// Connects to the peer's copy and starts the mirror: `full` copies the
/// whole disk first; `speed` caps that background copy (bytes/s, 0: no
/// cap).
pub fn connect(q: &mut Qmp, disk: &str, link: &Link, full: bool, speed: u64) -> Result<()> {
    if !probe(link) {
        return Err(StorageError::Peer {
            disk: disk.to_string(),
            peer: link.peer.node.clone(),
            reason: format!(
                "nothing answers on {}",
                super::layout::host_port(&link.peer.ip, link.port)
            ),
        });
    }
    // A peer node left by an earlier connection.
    let _ = q.run("blockdev-del", json!({"node-name": PEER}));
    let mut peer = nbd_client(link, exports::data(disk));
    peer["node-name"] = json!(PEER);
    add_peer_node(q, disk, peer)?;
    let mut mirror = json!({
        "job-id": JOB,
        "device": "top",
        "target": PEER,
        "sync": if full { "full" } else { "none" },
        "copy-mode": "write-blocking",
        "on-target-error": "stop",
        "on-source-error": "report",
        "filter-node-name": FILTER,
        "auto-finalize": true,
        "auto-dismiss": true,
    });
    if speed > 0 {
        mirror["speed"] = json!(speed);
        // QEMU copies a buffer's worth, then waits out the rate: with its
        // default 16 MiB buffer a slow sync moves in long jumps.
        let buf = (speed / 8).clamp(1 << 20, 16 << 20) & !0xffff;
        mirror["buf-size"] = json!(buf);
    }
    if let Err(e) = q.run("blockdev-mirror", mirror) {
        let _ = q.run("blockdev-del", json!({"node-name": PEER}));
        return Err(qmp_err(disk)(e));
    }
    info!(disk, peer = %link.peer.node, full, "replicating to the peer");
    Ok(())
}

/// Waits until job `id` is gone; `false` when it is still there after
/// `timeout`, or stopped on an error (a cancelled mirror that cannot
/// reach its peer stops instead of ending).
fn wait_job_gone(q: &mut Qmp, disk: &str, id: &str, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let jobs = q.execute("query-jobs", None).map_err(qmp_err(disk))?;
        let Some(j) = jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["id"] == id))
            .cloned()
        else {
            return Ok(true);
        };
        if id == JOB && job(q, disk)?.is_some_and(|j| j.stopped_on_error()) {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            debug!(disk, id, job = %j, "job still there");
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the mirror and drops the peer's node. A mirror in sync is
/// cancelled gracefully (in-flight writes reach the peer); `force` drops
/// it at once. Answers whether the peer was left with every write.
pub fn disconnect(q: &mut Qmp, disk: &str, link: &Link, force: bool) -> Result<bool> {
    let mut clean = false;
    if let Some(j) = job(q, disk)? {
        let graceful = !force && j.in_sync() && probe(link);
        q.run(
            "block-job-cancel",
            json!({"device": JOB, "force": !graceful}),
        )
        .map_err(qmp_err(disk))?;
        let gone = wait_job_gone(q, disk, JOB, CANCEL_TIMEOUT)?;
        if !gone && graceful {
            q.run("block-job-cancel", json!({"device": JOB, "force": true}))
                .map_err(qmp_err(disk))?;
            wait_job_gone(q, disk, JOB, CANCEL_TIMEOUT)?;
        }
        clean = graceful && gone;
    }
    let _ = q.run("blockdev-del", json!({"node-name": PEER}));
    debug!(disk, clean, "stopped replicating");
    Ok(clean)
}

/// Resumes a stopped mirror: it copies what the peer missed.
pub fn resume(q: &mut Qmp, disk: &str) -> Result<()> {
    q.run("block-job-resume", json!({"device": JOB}))
        .map(|_| ())
        .map_err(qmp_err(disk))
}

/// Pauses the mirror's background copy (writes still go to the peer).
pub fn pause(q: &mut Qmp, disk: &str) -> Result<()> {
    q.run("block-job-pause", json!({"device": JOB}))
        .map(|_| ())
        .map_err(qmp_err(disk))
}

/// Writes `state` into the peer's meta volume (its data record), with a
/// `qemu-io` of its own: opening a connection inside the storage daemon
/// would stop its NBD server from serving handshakes meanwhile (see
/// `add_peer_node`), and the peer may be connecting to it just then.
pub fn push(disk: &str, link: &Link, dirs: &DrbdDirs, state: &DataState) -> Result<()> {
    let fail = |reason: String| StorageError::Peer {
        disk: disk.to_string(),
        peer: link.peer.node.clone(),
        reason: format!("cannot update its meta data: {reason}"),
    };
    let file = dirs.push_file(disk);
    let bytes = state.encode()?;
    std::fs::write(&file, &bytes).map_err(|e| StorageError::io("write", &file, e))?;
    let result = run_qemu_io(
        &[
            "--object".into(),
            format!(
                "tls-creds-x509,id=tls0,dir={},endpoint=client",
                dirs.tls_dir().display()
            ),
            "--image-opts".into(),
            format!(
                "driver=nbd,server.type=inet,server.host={},server.port={},export={},\
                 tls-creds=tls0,tls-hostname={}",
                link.peer.ip,
                link.port,
                exports::meta(disk),
                link.peer.node
            ),
            "-c".into(),
            format!("write -q -s {} 0 {}", file.display(), bytes.len()),
            "-c".into(),
            "flush".into(),
        ],
        PUSH_TIMEOUT,
    );
    let _ = std::fs::remove_file(&file);
    result.map_err(fail)?;
    debug!(disk, peer = %link.peer.node, consistent = state.consistent, "peer's copy marked");
    Ok(())
}

/// Runs `qemu-io` with `args`, killed after `timeout`; its output is the
/// error when it fails.
fn run_qemu_io(args: &[String], timeout: Duration) -> std::result::Result<(), String> {
    let mut child = std::process::Command::new("qemu-io")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run qemu-io: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("qemu-io timed out after {}s", timeout.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for qemu-io: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot read qemu-io's output: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // qemu-io exits 0 even when a command fails; it then prints why.
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("qemu-io: {}", text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_in_sync_when_nothing_is_dirty() {
        let j = Job {
            status: "ready".into(),
            ready: true,
            paused: false,
            io_ok: true,
            offset: 10,
            len: 12,
            dirty: Some(0),
        };
        // Writes in flight do not count.
        assert!(j.in_sync());
        let stopped = Job {
            status: "standby".into(),
            paused: true,
            io_ok: false,
            dirty: Some(65536),
            ..j.clone()
        };
        assert!(!stopped.in_sync());
        assert!(stopped.stopped_on_error());
        assert_eq!(stopped.out_of_sync(), 65536);
        let syncing = Job {
            ready: false,
            dirty: None,
            ..j
        };
        assert!(!syncing.in_sync());
        assert_eq!(syncing.out_of_sync(), 2);
    }
}
