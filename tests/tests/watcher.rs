//! The watcher inside the master: an instance killed behind the master's
//! back is restarted within seconds by an ordinary job marked as the
//! watcher's; a flapping instance is restarted with a growing backoff and
//! at most 5 times; a pause holds the watcher back; old jobs are archived.
//!
//! An instance is killed as the fake hypervisor allows: its state file on
//! its node goes away (as a QEMU process that dies).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::VCluster;

fn kill(vc: &VCluster, node: usize, name: &str) {
    std::fs::remove_file(
        vc.root(node)
            .join("var/run/ganeti/fake-hypervisor")
            .join(name),
    )
    .expect("the instance runs on the node");
}

fn status(vc: &VCluster, name: &str) -> String {
    vc.list("gnt-instance", "status", &[name])[0][0].clone()
}

/// Polls `cond` until it holds; fails after `limit`. Returns the time it
/// took.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The watcher's restart jobs: (id, received time in seconds, status).
fn restart_jobs(vc: &VCluster) -> Vec<(u64, f64, String)> {
    let rows = vc
        .luxi()
        .query_jobs(None, &["id", "ops", "received_ts", "status"])
        .expect("QueryJobs");
    rows.as_array()
        .expect("a list of jobs")
        .iter()
        .filter(|r| {
            let op = &r[1][0];
            op["OP_ID"] == "OP_INSTANCE_STARTUP" && op["reason"][0][0] == "gnt:watcher"
        })
        .map(|r| {
            let ts = &r[2];
            (
                r[0].as_u64().unwrap(),
                ts[0].as_f64().unwrap() + ts[1].as_f64().unwrap() / 1e6,
                r[3].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits (at most `limit`) until the watcher's `n`th restart job
/// succeeded; the instance then runs (a status asked right after a kill
/// may still be the nodes' answer of the last second).
fn wait_restarts(vc: &VCluster, n: usize, limit: Duration) -> Duration {
    wait_for(limit, "a restart by the watcher", || {
        let jobs = restart_jobs(vc);
        jobs.len() >= n && jobs[n - 1].2 == "success"
    })
}

/// The watcher's state file on the master.
fn notepad(vc: &VCluster) -> Value {
    std::fs::read_to_string(vc.root(1).join("var/lib/ganeti/watcher.data"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn passes(vc: &VCluster) -> u64 {
    notepad(vc)["passes"].as_u64().unwrap_or(0)
}

/// Waits until the watcher made `n` more passes.
fn wait_passes(vc: &VCluster, n: u64) {
    let from = passes(vc);
    wait_for(Duration::from_secs(30), "watcher passes", || {
        passes(vc) >= from + n
    });
}

#[test]
fn a_killed_instance_is_restarted_within_10s_by_a_watcher_job() {
    // The default settings: a poll of the instances every 5 s.
    let vc = VCluster::up_with("0.120", 2, &[("GANETI_WATCHER", "on")]);
    vc.add_instance("node2", "inst1", &["-t", "diskless"]);
    assert_eq!(status(&vc, "inst1"), "running");
    // Not right after a job's end (which triggers a pass of its own): the
    // kill is seen by the periodic poll.
    wait_passes(&vc, 1);
    kill(&vc, 2, "inst1");
    let took = wait_restarts(&vc, 1, Duration::from_secs(10));
    eprintln!("restarted {took:?} after the kill");
    assert_eq!(status(&vc, "inst1"), "running");
    let jobs = restart_jobs(&vc);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let id = jobs[0].0;
    assert_eq!(vc.wait_job(id), "success");
    // An ordinary job, in gnt-job list, with the watcher's reason.
    let list = vc.ok(
        "gnt-job",
        &["list", "--no-headers", "-o", "id,status,summary"],
    );
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    id.to_string().as_str(),
                    "success",
                    "INSTANCE_STARTUP(inst1)"
                ]),
        "{list}"
    );
    let info = vc.ok("gnt-job", &["info", &id.to_string()]);
    assert!(info.contains("gnt:watcher"), "{info}");
    // Running again, it is left alone.
    wait_passes(&vc, 1);
    assert_eq!(restart_jobs(&vc).len(), 1);
    // Ganeti's cron command checks on the master's watcher.
    let out = vc.gnt("ganeti-watcher", &["-d", "--job-age", "6h"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("The master's watcher made its last pass"),
        "{err}"
    );
}

#[test]
fn a_flapping_instance_backs_off_and_is_given_up_after_5_restarts() {
    let backoff = 0.3;
    let vc = VCluster::up_with(
        "0.121",
        2,
        &[
            ("GANETI_WATCHER", "on"),
            ("GANETI_WATCHER_POLL", "0.2"),
            ("GANETI_WATCHER_BACKOFF", "0.3"),
        ],
    );
    vc.add_instance("node2", "flap", &["-t", "diskless"]);
    // Killed as soon as it runs again, five times over.
    for k in 1..=5 {
        kill(&vc, 2, "flap");
        wait_restarts(&vc, k, Duration::from_secs(20));
        assert_eq!(restart_jobs(&vc).len(), k);
        assert_eq!(status(&vc, "flap"), "running");
    }
    let jobs = restart_jobs(&vc);
    // Each wait at least doubles: 0.3, 0.6, 1.2, 2.4 s.
    for (i, w) in jobs.windows(2).enumerate() {
        let gap = w[1].1 - w[0].1;
        let least = backoff * 2f64.powi(i as i32);
        assert!(
            gap >= least,
            "restart {} came {gap:.2}s after the one before, expected at least {least}s",
            i + 2
        );
    }
    // The sixth time the watcher gives up, and keeps to it.
    kill(&vc, 2, "flap");
    wait_for(Duration::from_secs(20), "the watcher to give up", || {
        notepad(&vc)["instance"]["flap"]["restart_count"] == 6
    });
    wait_passes(&vc, 3);
    assert_eq!(status(&vc, "flap"), "ERROR_down");
    assert_eq!(restart_jobs(&vc).len(), 5);
    // Once someone starts it, it is watched over again.
    vc.ok("gnt-instance", &["startup", "flap"]);
    wait_for(
        Duration::from_secs(20),
        "the record to be forgotten",
        || notepad(&vc)["instance"].get("flap").is_none(),
    );
    kill(&vc, 2, "flap");
    wait_restarts(&vc, 6, Duration::from_secs(20));
    assert_eq!(status(&vc, "flap"), "running");
}

#[test]
fn a_paused_watcher_restarts_nothing_until_it_continues() {
    let vc = VCluster::up_with(
        "0.122",
        2,
        &[("GANETI_WATCHER", "on"), ("GANETI_WATCHER_POLL", "0.2")],
    );
    vc.add_instance("node2", "calm", &["-t", "diskless"]);
    let out = vc.ok("gnt-cluster", &["watcher", "pause", "1h"]);
    assert!(out.contains("paused until"), "{out}");
    // Ganeti's pause file: the end as whole seconds.
    let file = std::fs::read_to_string(vc.root(1).join("var/lib/ganeti/watcher.pause")).unwrap();
    assert!(file.trim().parse::<i64>().is_ok(), "{file}");
    let out = vc.ok("gnt-cluster", &["watcher", "info"]);
    assert!(out.contains("paused until"), "{out}");
    let out = vc.gnt("ganeti-watcher", &["-d"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Pause has been set until"));
    kill(&vc, 2, "calm");
    wait_passes(&vc, 5);
    assert_eq!(status(&vc, "calm"), "ERROR_down");
    assert!(restart_jobs(&vc).is_empty());
    vc.ok("gnt-cluster", &["watcher", "continue"]);
    assert!(!vc.root(1).join("var/lib/ganeti/watcher.pause").exists());
    wait_restarts(&vc, 1, Duration::from_secs(10));
    assert_eq!(status(&vc, "calm"), "running");
}

#[test]
fn old_jobs_are_archived_by_the_full_pass() {
    let vc = VCluster::up_with(
        "0.123",
        1,
        &[
            ("GANETI_WATCHER", "on"),
            ("GANETI_WATCHER_INTERVAL", "0.5"),
            ("GANETI_WATCHER_JOB_AGE", "1"),
        ],
    );
    let id = vc
        .luxi()
        .call(
            "SubmitJob",
            json!([[{"OP_ID": "OP_TEST_DELAY", "duration": 0}]]),
        )
        .expect("SubmitJob")
        .as_u64()
        .expect("a job id");
    assert_eq!(vc.wait_job(id), "success");
    wait_for(Duration::from_secs(20), "the job to be archived", || {
        let list = vc.ok("gnt-job", &["list", "--no-headers", "-o", "id"]);
        !list.lines().any(|l| l.trim() == id.to_string())
    });
    // Archived, not lost.
    let archived = vc.ok(
        "gnt-job",
        &["list", "--archived", "--no-headers", "-o", "id"],
    );
    assert!(
        archived
            .lines()
            .any(|l| l.split_whitespace().next() == Some(id.to_string().as_str())),
        "{archived}"
    );
}

/// The pid in the kvm hypervisor's pid file of instance `name` on node
/// `node`, if that process lives.
fn qemu_pid(vc: &VCluster, node: usize, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(
        vc.root(node)
            .join("var/run/ganeti/kvm-hypervisor/pid")
            .join(name),
    )
    .ok()?
    .trim()
    .parse()
    .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    (!rest.trim_start().starts_with('Z')).then_some(pid)
}

#[test]
fn a_killed_qemu_is_restarted_by_the_watcher() {
    // Real QEMU (TCG) and the default watcher settings.
    let vc = tests::guest::kvm_cluster_env(
        "0.124",
        1,
        "panic=-1 quiet",
        "",
        &[("GANETI_WATCHER", "on")],
    );
    tests::guest::add_guest(&vc, "node1", "guest1");
    let pid = qemu_pid(&vc, 1, "guest1").expect("QEMU runs");
    wait_passes(&vc, 1);
    let killed = Instant::now();
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_restarts(&vc, 1, Duration::from_secs(10));
    eprintln!("QEMU restarted {:?} after the kill", killed.elapsed());
    let new = qemu_pid(&vc, 1, "guest1").expect("a new QEMU runs");
    assert_ne!(new, pid);
    assert_eq!(status(&vc, "guest1"), "running");
}
