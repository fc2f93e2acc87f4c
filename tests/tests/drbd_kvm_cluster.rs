//! A real QEMU guest (TCG, the test guest) on a `drbd` disk on a 3-node
//! virtual cluster. The guest writes its counter to its disk (O_DIRECT,
//! O_SYNC) before printing it, and prints the last counter it finds on
//! disk when it boots ("resumed from N"). It migrates while it counts,
//! its secondary moves to a third node while it counts, it counts on
//! while its secondary's storage daemon is dead and until verify-disks
//! has brought that copy back, and when its
//! primary node crashes (QEMU, storage daemon and node daemon killed) it
//! is failed over with `--ignore-consistency` and resumes from at least
//! the last counter it printed: no acknowledged write is lost.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tests::guest::{counter_of, kvm_cluster_booting, serial_socket, Serial};
use tests::VCluster;

fn resumed_from(line: &str) -> Option<u64> {
    line.split_once("resumed from ")?.1.trim().parse().ok()
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Kills node `k` as a crash would: its guests' QEMUs, its storage
/// daemons and its node daemon, at once and without warning.
fn crash_node(vc: &VCluster, k: usize) {
    let run = vc.root(k).join("var/run/ganeti");
    let mut pids = Vec::new();
    for dir in [run.join("kvm-hypervisor/pid"), run.join("drbd")] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let is_pid = dir.ends_with("pid") || p.extension().is_some_and(|x| x == "pid");
            if let Some(pid) = is_pid.then(|| read_pid(&p)).flatten() {
                pids.push(pid);
            }
        }
    }
    pids.push(read_pid(&run.join("ganeti-noded.pid")).expect("node daemon pid"));
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// The last counter printed before the serial console went quiet.
fn last_counter(serial: &mut Serial, mut last: u64) -> u64 {
    while let Ok(n) = serial.wait_for(std::time::Duration::from_secs(3), counter_of) {
        last = last.max(n);
    }
    last
}

#[test]
fn a_drbd_guest_migrates_changes_secondary_and_survives_its_primarys_crash() {
    let vc = kvm_cluster_booting("0.65", 3, "panic=-1 quiet counter_disk=/dev/vda", "");
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=drbd,diskless",
            "--ipolicy-disk-templates=drbd,diskless",
        ],
    );
    vc.add_instance(
        "node1:node2",
        "g1",
        &[
            "-t",
            "drbd",
            "--disk",
            "0:size=16M",
            "--no-nics",
            "-B",
            "maxmem=128,minmem=128",
        ],
    );
    let mut serial = Serial::connect(&serial_socket(&vc, "g1"));
    let first = serial.wait("the resume line", resumed_from);
    assert_eq!(first, 0, "a new disk holds no counter");
    serial.counter();

    // Live migration swaps the copies' roles; the guest counts on.
    let before = serial.counter();
    vc.ok("gnt-instance", &["migrate", "-f", "g1"]);
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes,status", &["g1"]),
        vec![vec!["node2", "node1", "running"]]
    );
    let after = serial.counter();
    assert!(after > before, "the guest restarted: {before} then {after}");

    // The secondary moves from node1 to node3 while the guest writes.
    vc.ok("gnt-instance", &["replace-disks", "-n", "node3", "g1"]);
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes", &["g1"]),
        vec![vec!["node2", "node3"]]
    );
    let node1_files: Vec<_> = std::fs::read_dir(vc.root(1).join("srv/ganeti/file-storage/g1"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(node1_files.is_empty(), "{node1_files:?}");
    let info = vc.ok("gnt-instance", &["info", "g1"]);
    assert_eq!(info.matches("in sync, status ok").count(), 2, "{info}");
    let counting = serial.counter();
    assert!(counting > after);

    // The secondary's storage daemon dies: the guest counts on, degraded;
    // verify-disks brings the copy back and it resyncs.
    let drbd_run = vc.root(3).join("var/run/ganeti/drbd");
    let pid = std::fs::read_dir(&drbd_run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pid"))
        .and_then(|p| read_pid(&p))
        .expect("node3's storage daemon");
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let n = serial.counter();
    let info = vc.ok("gnt-instance", &["info", "g1"]);
    assert!(info.contains("*DEGRADED*"), "{info}");
    assert!(serial.counter() > n, "the guest stopped with its secondary");
    let out = vc.ok("gnt-cluster", &["verify-disks"]);
    assert!(out.contains("Activating disks for instance 'g1'"), "{out}");
    vc.ok("gnt-instance", &["activate-disks", "--wait-for-sync", "g1"]);
    let info = vc.ok("gnt-instance", &["info", "g1"]);
    assert_eq!(info.matches("in sync, status ok").count(), 2, "{info}");
    let counting = serial.counter();

    // node2 crashes; node3's copy has every write the guest saw done.
    crash_node(&vc, 2);
    let printed = last_counter(&mut serial, counting);
    // As Ganeti asks: the dead node is marked offline first; then the
    // failover that `gnt-instance failover --ignore-consistency` submits
    // once the admin confirms that.
    vc.ok("gnt-node", &["modify", "-f", "-O", "yes", "node2"]);
    let id = vc
        .luxi()
        .submit_job(vec![json!({"OP_ID": "OP_INSTANCE_FAILOVER",
            "instance_name": "g1", "ignore_consistency": true})])
        .unwrap();
    assert_eq!(vc.wait_job(id), "success");
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes", &["g1"]),
        vec![vec!["node3", "node2"]]
    );
    let mut serial = Serial::connect(&serial_socket(&vc, "g1"));
    let resumed = serial.wait("the resume line after the failover", resumed_from);
    assert!(
        resumed >= printed,
        "resumed from {resumed}, but the guest printed {printed} before the crash"
    );
    assert_eq!(serial.counter(), resumed + 1);
}
