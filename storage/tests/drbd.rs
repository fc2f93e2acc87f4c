//! `drbd` disks between two node roots on this machine: real
//! `qemu-storage-daemon` processes replicating over NBD with TLS on two
//! loopback addresses.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use objects::paths::Paths;
use rpc::storage::{DrbdEndpoint, DrbdLink};
use storage::drbd::{self, DrbdDevice, DrbdDirs};
use storage::{BlockDevStatus, DiskMode, DiskSpec, DiskTemplate, LocalDiskStatus, StorageContext};

const DEADLINE: Duration = Duration::from_secs(120);

struct Node {
    _root: tempfile::TempDir,
    ctx: StorageContext,
    name: String,
    ip: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        // A failed test leaves no daemon behind.
        storage::testing::kill_drbd_daemons(self.ctx.paths());
    }
}

impl Node {
    fn dirs(&self) -> DrbdDirs {
        DrbdDirs::new(self.ctx.paths())
    }

    fn dev(&self, disk: &DiskSpec) -> DrbdDevice {
        DrbdDevice::open(&self.ctx, "inst1", disk).unwrap()
    }

    fn data_file(&self, disk: &DiskSpec) -> PathBuf {
        self.ctx
            .file_storage_dir()
            .join("inst1")
            .join(format!("{}_data", disk.uuid))
    }

    fn status(&self, disk: &DiskSpec) -> BlockDevStatus {
        self.dev(disk)
            .status()
            .unwrap()
            .expect("the disk is on the node")
    }

    /// Kills the disk's storage daemon, as a crash would.
    fn kill_daemon(&self, disk: &DiskSpec) {
        let pid: i32 = std::fs::read_to_string(self.dirs().pid_file(&disk.uuid))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_until("the daemon to die", || {
            !drbd::daemon_running(&self.dirs(), &disk.uuid)
        });
    }
}

/// Two nodes of one cluster (certificates of one CA) on two loopback
/// addresses of their own.
fn two_nodes() -> (Node, Node) {
    let ca = rpc::tls::create_cluster_ca("cluster.example.com").unwrap();
    let pid = std::process::id();
    let mk = |k: u8| {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        let name = format!("node{k}");
        let ip = Ipv4Addr::new(127, 40 + (pid % 80) as u8, (pid >> 7) as u8, k);
        rpc::tls::write_cluster_ca(&paths, &ca, false).unwrap();
        let pem = rpc::tls::create_node_cert(&ca, &name, ip.into()).unwrap();
        rpc::tls::write_node_cert(&paths, &pem).unwrap();
        let ctx = StorageContext::new(
            paths.clone(),
            paths.file_storage_dir(),
            paths.shared_file_storage_dir(),
        )
        .with_node_name(&name);
        Node {
            _root: root,
            ctx,
            name,
            ip: ip.to_string(),
        }
    };
    (mk(1), mk(2))
}

/// A port free on both nodes' addresses.
fn free_port(a: &Node, b: &Node) -> u16 {
    loop {
        let l = TcpListener::bind((a.ip.as_str(), 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        if TcpListener::bind((b.ip.as_str(), port)).is_ok() {
            return port;
        }
    }
}

fn drbd_disk(a: &Node, b: &Node, size: u64) -> DiskSpec {
    DiskSpec {
        uuid: "5f0c8a4e-2b7d-4c1e-9d3a-7e6b5a4c3d21".into(),
        index: 0,
        size,
        dev_type: DiskTemplate::Drbd,
        logical_id: None,
        mode: DiskMode::Rw,
        name: None,
        params: Default::default(),
        children: Vec::new(),
        drbd: Some(DrbdLink {
            nodes: [
                DrbdEndpoint {
                    node: a.name.clone(),
                    ip: a.ip.clone(),
                },
                DrbdEndpoint {
                    node: b.name.clone(),
                    ip: b.ip.clone(),
                },
            ],
            port: free_port(a, b),
        }),
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the supervisors of both nodes until `cond` holds.
fn supervise_until(what: &str, nodes: [&Node; 2], mut cond: impl FnMut() -> bool) {
    wait_until(what, || {
        for n in nodes {
            drbd::supervise(&n.ctx);
        }
        cond()
    });
}

fn in_sync(s: &BlockDevStatus) -> bool {
    !s.is_degraded && s.sync_percent.is_none()
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn write_sync(path: &Path, offset: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

fn assert_nothing_left(n: &Node, disk: &DiskSpec) {
    let left = drbd::leftovers(&n.dirs(), &disk.uuid);
    assert!(left.is_empty(), "{} left {left:?}", n.name);
    assert!(!drbd::daemon_running(&n.dirs(), &disk.uuid));
}

#[test]
fn writes_reach_both_nodes_and_a_dead_secondary_catches_up_with_only_what_it_missed() {
    let (a, b) = two_nodes();
    let disk = drbd_disk(&a, &b, 64);
    // The primary's copy holds data before the first sync.
    let old = pattern(1, 4 << 20);
    std::fs::create_dir_all(a.data_file(&disk).parent().unwrap()).unwrap();
    std::fs::File::create(a.data_file(&disk))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    write_sync(&a.data_file(&disk), 8 << 20, &old);

    // Created as Ganeti does: the secondary first.
    let attached = b.dev(&disk).create(false).unwrap();
    assert_eq!(
        attached.uri.as_deref(),
        Some(
            format!(
                "nbd://{}:{}/{}",
                b.ip,
                disk.drbd.as_ref().unwrap().port,
                disk.uuid
            )
            .as_str()
        )
    );
    assert_eq!(attached.tls.as_ref().unwrap().hostname, b.name);
    assert_eq!(b.status(&disk).ldisk_status, LocalDiskStatus::Unknown);
    a.dev(&disk).create(true).unwrap();
    supervise_until("the initial sync", [&a, &b], || {
        in_sync(&a.status(&disk)) && in_sync(&b.status(&disk))
    });
    assert_eq!(a.status(&disk).ldisk_status, LocalDiskStatus::Okay);
    // The primary marked the secondary's copy consistent.
    assert_eq!(b.status(&disk).ldisk_status, LocalDiskStatus::Okay);
    assert_eq!(read_at(&b.data_file(&disk), 8 << 20, old.len()), old);

    // Writes through the primary's disk are on the secondary's volume
    // once they are acknowledged.
    let fuse = a.dev(&disk).local_path().unwrap();
    let new = pattern(2, 1 << 20);
    write_sync(&fuse.path(), 20 << 20, &new);
    assert_eq!(read_at(&b.data_file(&disk), 20 << 20, new.len()), new);

    // The secondary's daemon dies while the primary writes.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, path) = (stop.clone(), written.clone(), fuse.path());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // 64 KiB blocks over 8 MiB from 32 MiB on.
                let off = (32 << 20) + (i % 128) * 65536;
                write_sync(&path, off, &pattern(100 + i, 65536));
                i += 1;
                written.store(i, Ordering::SeqCst);
            }
            i
        })
    };
    wait_until("some writes", || written.load(Ordering::SeqCst) >= 4);
    b.kill_daemon(&disk);
    let at_kill = written.load(Ordering::SeqCst);
    // The primary goes on writing, degraded.
    wait_until("writes after the secondary died", || {
        written.load(Ordering::SeqCst) >= at_kill + 20
    });
    let s = a.status(&disk);
    assert!(s.is_degraded, "{s:?}");
    let d = s.drbd.clone().unwrap();
    assert!(!d.peer_reachable && d.out_of_sync_bytes > 0, "{d:?}");
    assert_eq!(s.ldisk_status, LocalDiskStatus::Okay);
    assert_eq!(
        b.status(&disk).ldisk_status,
        LocalDiskStatus::Faulty,
        "a dead daemon makes the secondary's disk faulty"
    );
    stop.store(true, Ordering::SeqCst);
    let total = writer.join().unwrap();
    assert!(total > at_kill + 20);
    let missed = a.status(&disk).drbd.unwrap().out_of_sync_bytes;
    // At most the 8 MiB the writer went over: not the whole disk.
    assert!(missed <= 8 << 20, "{missed} bytes out of sync");

    // The secondary comes back: the primary resyncs what it missed.
    b.dev(&disk).assemble(false).unwrap();
    supervise_until("the resync", [&a, &b], || {
        in_sync(&a.status(&disk)) && in_sync(&b.status(&disk))
    });
    drop(fuse);
    let whole = |n: &Node| std::fs::read(n.data_file(&disk)).unwrap();
    assert!(whole(&a) == whole(&b), "the copies differ after the resync");

    // Shut down and removed: nothing left.
    for n in [&a, &b] {
        n.dev(&disk).shutdown().unwrap();
        assert_nothing_left(n, &disk);
        assert!(n.data_file(&disk).exists(), "shutdown keeps the data");
    }
    for n in [&a, &b] {
        n.dev(&disk).remove().unwrap();
        assert_nothing_left(n, &disk);
        assert!(!n.data_file(&disk).exists());
        assert!(
            std::fs::read_dir(n.ctx.file_storage_dir())
                .unwrap()
                .next()
                .is_none(),
            "{}'s file storage is not empty",
            n.name
        );
    }
}

/// Fills `n`'s data volume with `len` bytes of data at 0 before the disk
/// is created (creating keeps an existing volume of the right size).
fn prefill(n: &Node, disk: &DiskSpec, data: &[u8]) {
    let path = n.data_file(disk);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(&path)
        .unwrap()
        .set_len(disk.size << 20)
        .unwrap();
    write_sync(&path, 0, data);
}

#[test]
fn a_sync_reports_its_progress_and_a_clean_restart_needs_none() {
    let (a, b) = two_nodes();
    let mut disk = drbd_disk(&a, &b, 16);
    // 4 MiB/s: a full sync of the 16 MiB takes 4 seconds.
    disk.params
        .insert("resync-rate".into(), serde_json::json!(4096));
    let data = pattern(3, 4 << 20);
    prefill(&a, &disk, &data);
    b.dev(&disk).create(false).unwrap();
    a.dev(&disk).create(true).unwrap();
    let mut seen = None;
    supervise_until("progress with a time left", [&a, &b], || {
        let s = a.status(&disk);
        if let (Some(p), Some(eta)) = (s.sync_percent, s.estimated_time) {
            seen = Some((p, eta, s.clone()));
        }
        seen.is_some() || in_sync(&s)
    });
    let (p, _eta, s) = seen.expect("the sync ended before it reported its progress");
    assert!((0.0..100.0).contains(&p), "{p}");
    assert!(s.is_degraded && s.drbd.as_ref().unwrap().syncing, "{s:?}");
    // The secondary knows its copy is being synced into.
    let sb = b.status(&disk);
    assert_eq!(sb.ldisk_status, LocalDiskStatus::Unknown);
    assert!(sb.is_degraded);
    // Paused, the sync stays unfinished; resumed, it ends.
    a.dev(&disk).pause_sync(true).unwrap();
    assert!(a.status(&disk).drbd.unwrap().syncing);
    a.dev(&disk).pause_sync(false).unwrap();
    supervise_until("the sync", [&a, &b], || {
        in_sync(&a.status(&disk)) && in_sync(&b.status(&disk))
    });
    assert_eq!(read_at(&b.data_file(&disk), 0, data.len()), data);

    // A clean stop of the primary leaves the peer known in sync: the next
    // start connects without a sync (the peer's copy stays consistent).
    a.dev(&disk).shutdown().unwrap();
    a.dev(&disk).assemble(true).unwrap();
    // The mirror needs a moment to report itself ready; until then no
    // byte may be left to sync.
    supervise_until("the reconnection", [&a, &b], || {
        let s = a.status(&disk);
        assert!(
            s.sync_percent.is_none(),
            "a sync after a clean restart: {s:?}"
        );
        assert_eq!(
            s.drbd.as_ref().map(|d| d.out_of_sync_bytes),
            Some(0),
            "{s:?}"
        );
        in_sync(&s)
    });
    assert_eq!(b.status(&disk).ldisk_status, LocalDiskStatus::Okay);

    // A primary daemon that dies does not know what its peer has: its next
    // start syncs in full (marking the peer's copy inconsistent first).
    a.kill_daemon(&disk);
    assert_eq!(a.status(&disk).ldisk_status, LocalDiskStatus::Faulty);
    a.dev(&disk).assemble(true).unwrap();
    let s = a.status(&disk);
    assert!(s.sync_percent.is_some(), "{s:?}");
    assert_eq!(b.status(&disk).ldisk_status, LocalDiskStatus::Unknown);
    supervise_until("the full sync", [&a, &b], || {
        in_sync(&a.status(&disk)) && in_sync(&b.status(&disk))
    });
    for n in [&a, &b] {
        n.dev(&disk).remove().unwrap();
        assert_nothing_left(n, &disk);
    }
}

#[test]
fn after_a_failover_the_old_primary_is_synced_from_the_new_one() {
    let (a, b) = two_nodes();
    let disk = drbd_disk(&a, &b, 16);
    b.dev(&disk).create(false).unwrap();
    a.dev(&disk).create(true).unwrap();
    supervise_until("the initial sync", [&a, &b], || {
        in_sync(&a.status(&disk)) && in_sync(&b.status(&disk))
    });
    let before = pattern(5, 1 << 20);
    {
        let fuse = a.dev(&disk).local_path().unwrap();
        write_sync(&fuse.path(), 1 << 20, &before);
    }
    // The primary crashes; the secondary takes over, writes, degraded.
    a.kill_daemon(&disk);
    b.dev(&disk).assemble(true).unwrap();
    let s = b.status(&disk);
    assert!(s.is_degraded && s.drbd.as_ref().unwrap().primary, "{s:?}");
    assert_eq!(s.ldisk_status, LocalDiskStatus::Okay);
    let fuse = b.dev(&disk).local_path().unwrap();
    assert_eq!(read_at(&fuse.path(), 1 << 20, before.len()), before);
    let after = pattern(6, 1 << 20);
    write_sync(&fuse.path(), 4 << 20, &after);
    drop(fuse);
    // The old primary returns as the secondary: the new primary copies
    // its whole disk to it.
    a.dev(&disk).assemble(false).unwrap();
    supervise_until("the sync of the old primary", [&a, &b], || {
        in_sync(&a.status(&disk)) && in_sync(&b.status(&disk))
    });
    assert_eq!(read_at(&a.data_file(&disk), 4 << 20, after.len()), after);
    assert!(
        std::fs::read(a.data_file(&disk)).unwrap() == std::fs::read(b.data_file(&disk)).unwrap()
    );
    for n in [&a, &b] {
        n.dev(&disk).remove().unwrap();
        assert_nothing_left(n, &disk);
    }
}

#[test]
fn a_node_outside_the_link_or_a_bad_link_is_refused() {
    let (a, b) = two_nodes();
    let mut disk = drbd_disk(&a, &b, 16);
    let other = StorageContext::new(
        a.ctx.paths().clone(),
        a.ctx.file_storage_dir().to_path_buf(),
        a.ctx.shared_file_storage_dir().to_path_buf(),
    )
    .with_node_name("node3");
    let err = DrbdDevice::open(&other, "inst1", &disk).unwrap_err();
    assert!(err.to_string().contains("neither of its nodes"), "{err}");
    disk.drbd.as_mut().unwrap().nodes[1].node = a.name.clone();
    let err = DrbdDevice::open(&a.ctx, "inst1", &disk).unwrap_err();
    assert!(err.to_string().contains("both ends"), "{err}");
    let mut disk = drbd_disk(&a, &b, 16);
    disk.uuid = "a,b".into();
    assert!(DrbdDevice::open(&a.ctx, "inst1", &disk).is_err());
    // Assembling a disk that was never created says so.
    let disk = drbd_disk(&a, &b, 16);
    let err = a.dev(&disk).assemble(true).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_nothing_left(&a, &disk);
}

/// `gnt-instance move`'s copy: node1 serves a file disk read-only over
/// NBD with TLS to node2, which copies it into its own disk; once the
/// export stops, nothing is served and a copy fails saying from where.
#[test]
fn a_disk_is_copied_to_another_node_over_tls() {
    let (a, b) = two_nodes();
    let mut disk = drbd_disk(&a, &b, 8);
    let link = disk.drbd.take().unwrap();
    disk.dev_type = DiskTemplate::File;
    for n in [&a, &b] {
        storage::open(&n.ctx, "inst1", &disk)
            .unwrap()
            .create(8)
            .unwrap();
    }
    let path = |n: &Node| {
        n.ctx
            .file_storage_dir()
            .join("inst1")
            .join(format!("{}.file.disk0", disk.uuid))
    };
    let data = pattern(7, 8 << 20);
    write_sync(&path(&a), 0, &data);
    let from_a = drbd::Link::from_ends(&a.ctx, &disk.uuid, &link).unwrap();
    let from_b = drbd::Link::from_ends(&b.ctx, &disk.uuid, &link).unwrap();
    storage::transfer::start_export(&a.ctx, "inst1", &disk, &from_a).unwrap();
    storage::transfer::import(&b.ctx, "inst1", &disk, &from_b, &disk.uuid).unwrap();
    assert!(
        read_at(&path(&b), 0, data.len()) == data,
        "node2 has node1's data"
    );
    storage::transfer::stop_export(&a.ctx, &disk.uuid).unwrap();
    let name = storage::transfer::export_name(&disk.uuid);
    assert!(!a.dirs().pid_file(&name).exists());
    let err = storage::transfer::import(&b.ctx, "inst1", &disk, &from_b, &disk.uuid)
        .unwrap_err()
        .to_string();
    assert!(err.contains("copying from node node1 failed"), "{err}");
}
