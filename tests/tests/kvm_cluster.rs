//! Real QEMU instances on a 3-node virtual cluster (TCG, the test guest of
//! `scripts/build-test-guest.sh`): the serial console, soft reboot, live
//! migration node1 → node2 → node3 while the guest counts, failover, a
//! disk grown while the guest runs, a QEMU killed behind the master's
//! back, shutdown with a timeout, a guest that ignores the power button,
//! and a failed migration.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tests::guest::{
    add_guest, kvm_cluster, qmp, serial_log, serial_socket, Serial, BOOT_LINE, DEADLINE,
};
use tests::VCluster;

fn pid_file(vc: &VCluster, node: usize, name: &str) -> PathBuf {
    vc.root(node)
        .join("var/run/ganeti/kvm-hypervisor/pid")
        .join(name)
}

/// The pid of the instance's QEMU on node `node`, if it runs there.
fn qemu_pid(vc: &VCluster, node: usize, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(vc, node, name))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

#[test]
fn kvm_instance_boots_reboots_migrates_fails_over_and_stops() {
    let vc = kvm_cluster("0.55");
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[{:>7.2?}] {what}", t0.elapsed());
    add_guest(&vc, "node1", "guest1");
    assert_eq!(
        vc.list("gnt-instance", "pnode,status,hypervisor", &["guest1"]),
        vec![vec!["node1", "running", "kvm"]]
    );
    let pid1 = qemu_pid(&vc, 1, "guest1").expect("QEMU runs on node1");
    let mut serial = Serial::connect(&serial_socket(&vc, "guest1"));
    serial.counter();

    // A soft reboot resets the guest inside the same QEMU.
    step("reboot");
    vc.ok("gnt-instance", &["reboot", "--type=soft", "guest1"]);
    serial.wait("boot line after the reboot", |l| {
        (l == BOOT_LINE).then_some(())
    });
    let after_reboot = serial.counter();
    assert!(
        after_reboot < 50,
        "the counter did not restart: {after_reboot}"
    );
    assert_eq!(qemu_pid(&vc, 1, "guest1"), Some(pid1));

    step("// Live migration");
    // Live migration: the guest goes on counting, it does not reboot.
    let mut last = serial.counter();
    for (from, to) in [(1, 2), (2, 3)] {
        let target = format!("node{to}");
        let out = vc.ok(
            "gnt-instance",
            &["migrate", "-f", "--target-node", &target, "guest1"],
        );
        assert!(
            out.contains(&format!("migrating instance to {target}")),
            "{out}"
        );
        assert_eq!(
            vc.list("gnt-instance", "pnode,status", &["guest1"]),
            vec![vec![target.as_str(), "running"]]
        );
        assert!(
            qemu_pid(&vc, from, "guest1").is_none(),
            "QEMU left on node{from}"
        );
        assert!(qemu_pid(&vc, to, "guest1").is_some(), "no QEMU on {target}");
        let mut s = Serial::connect(&serial_socket(&vc, "guest1"));
        let now = s.counter();
        assert!(
            now > last,
            "counter went from {last} to {now} across the migration to {target}"
        );
        assert!(
            !s.seen.iter().any(|l| l == BOOT_LINE),
            "the guest rebooted: {:?}",
            s.seen
        );
        last = s.counter();
        serial = s;
    }
    drop(serial);

    step("// Failover stops");
    // Failover stops the guest and boots it on the target.
    vc.ok(
        "gnt-instance",
        &["failover", "-f", "--target-node", "node1", "guest1"],
    );
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["guest1"]),
        vec![vec!["node1", "running"]]
    );
    assert!(qemu_pid(&vc, 3, "guest1").is_none());
    let mut s = Serial::connect(&serial_socket(&vc, "guest1"));
    let fresh = s.counter();
    assert!(
        fresh < last,
        "failover did not restart the guest ({fresh} >= {last})"
    );
    drop(s);

    step("// grow-disk while it runs");
    // The running guest's QEMU sees the grown disk at once.
    let size_of_disk0 = || {
        let blocks = qmp(&vc, 1, "guest1", "query-block");
        blocks
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["device"] == "disk0")
            .map(|b| b["inserted"]["image"]["virtual-size"].as_u64().unwrap())
            .expect("QEMU has disk0")
    };
    assert_eq!(size_of_disk0(), 16 << 20);
    let out = vc.ok("gnt-instance", &["grow-disk", "guest1", "0", "16M"]);
    assert!(!out.contains("WARNING"), "{out}");
    assert_eq!(size_of_disk0(), 32 << 20);

    step("// A QEMU that dies");
    // A QEMU that dies behind the master's back is seen by list and verify.
    let pid = qemu_pid(&vc, 1, "guest1").expect("QEMU on node1");
    nix_kill(pid);
    wait_until("QEMU to die", || !alive(pid));
    assert_eq!(
        vc.list("gnt-instance", "status", &["guest1"]),
        vec![vec!["ERROR_down"]]
    );
    let out = vc.gnt("gnt-cluster", &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("instance guest1: instance not running on its primary node node1"),
        "{text}"
    );

    step("// Started again");
    // Started again, then shut down cleanly within the timeout.
    vc.ok("gnt-instance", &["startup", "guest1"]);
    let mut s = Serial::connect(&serial_socket(&vc, "guest1"));
    s.counter();
    drop(s);
    let pid = qemu_pid(&vc, 1, "guest1").expect("QEMU on node1");
    vc.ok("gnt-instance", &["shutdown", "--timeout=60", "guest1"]);
    assert_eq!(
        vc.list("gnt-instance", "status", &["guest1"]),
        vec![vec!["ADMIN_down"]]
    );
    assert!(!alive(pid));
    assert!(!pid_file(&vc, 1, "guest1").exists());

    step("// Without ACPI");
    // Without ACPI the guest never sees the power button: the shutdown
    // kills it when the timeout is up.
    vc.ok("gnt-instance", &["modify", "-H", "acpi=false", "guest1"]);
    vc.ok("gnt-instance", &["startup", "guest1"]);
    let pid = qemu_pid(&vc, 1, "guest1").expect("QEMU on node1");
    let t = Instant::now();
    vc.ok("gnt-instance", &["shutdown", "--timeout=2", "guest1"]);
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(!alive(pid));

    step("remove");
    vc.ok("gnt-instance", &["remove", "-f", "guest1"]);
    assert!(std::fs::read_dir(vc.dir.path().join("vc/shared"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_failed_migration_leaves_the_instance_on_its_source() {
    let vc = kvm_cluster("0.56");
    add_guest(&vc, "node1", "stays");
    let mut s = Serial::connect(&serial_socket(&vc, "stays"));
    let before = s.counter();
    drop(s);
    // The target cannot listen for the migration: its node daemon holds
    // the port already.
    vc.ok(
        "gnt-instance",
        &["modify", "-H", "migration_port=1811", "stays"],
    );
    let err = vc.fails(
        "gnt-instance",
        &["migrate", "-f", "--target-node", "node2", "stays"],
    );
    assert!(err.to_lowercase().contains("migrat"), "{err}");
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["stays"]),
        vec![vec!["node1", "running"]]
    );
    assert!(
        qemu_pid(&vc, 2, "stays").is_none(),
        "QEMU left on the target"
    );
    let mut s = Serial::connect(&serial_socket(&vc, "stays"));
    let after = s.counter();
    assert!(after > before, "the guest restarted: {before} -> {after}");
}

fn nix_kill(pid: i32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` exists and is not a zombie (a QEMU that
/// daemonized is reparented to PID 1, which may be slow to reap it).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn a_guest_that_resets_while_it_migrates_fails_the_job_and_stays_stopped() {
    let vc = kvm_cluster("0.57");
    add_guest(&vc, "node1", "resets");
    Serial::connect(&serial_socket(&vc, "resets")).counter();
    // Slow enough (seconds) to reset the guest during the transfer.
    vc.ok(
        "gnt-instance",
        &["modify", "-H", "migration_bandwidth=4", "resets"],
    );
    // "JobID: N", on standard error as in Ganeti.
    let out = vc.gnt(
        "gnt-instance",
        &[
            "migrate",
            "-f",
            "--submit",
            "--target-node",
            "node2",
            "resets",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8_lossy(&out.stderr);
    let job: u64 = out
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no job id in {out:?}"));
    wait_until("the migration to be under way", || {
        qemu_pid(&vc, 1, "resets").is_some()
            && qmp(&vc, 1, "resets", "query-migrate")["status"] == "active"
    });
    // What the guest's own reboot does (QEMU handles both alike).
    qmp(&vc, 1, "resets", "system_reset");
    assert_eq!(vc.wait_job(job), "error");
    let info = vc.ok("gnt-job", &["info", &job.to_string()]);
    assert!(
        info.contains("the guest reset or powered off during the migration"),
        "{info}"
    );
    // Not rebooted on the target: stopped there, and says so.
    assert_eq!(qmp(&vc, 2, "resets", "query-status")["status"], "shutdown");
    assert!(qemu_pid(&vc, 1, "resets").is_none(), "QEMU left on node1");
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["resets"]),
        vec![vec!["node2", "ERROR_down"]]
    );
    assert!(!serial_log(&vc, 2, "resets").contains(BOOT_LINE));
    // A shutdown clears it up at once.
    vc.ok("gnt-instance", &["shutdown", "--timeout=60", "resets"]);
    assert!(qemu_pid(&vc, 2, "resets").is_none());
}
