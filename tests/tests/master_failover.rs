//! Master candidates and `gnt-cluster master-failover` on the virtual
//! cluster: the master role moves to a candidate and back with every
//! acknowledged change, `getmaster`, `master-ping` and the ssconf files
//! agree on every node, and a failover without a majority or on a node
//! that is no candidate is refused with Ganeti's messages.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use objects::paths::Paths;
use serde_json::json;
use tests::VCluster;

fn ssconf(vc: &VCluster, k: usize, key: &str) -> String {
    std::fs::read_to_string(Paths::new(vc.root(k)).ssconf(key))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Every node names `master` in `getmaster` and in its ssconf file.
fn assert_master_everywhere(vc: &VCluster, master: &str) {
    for k in 1..=vc.nodes {
        assert_eq!(
            vc.ok_on(k, "gnt-cluster", &["getmaster"]).trim(),
            master,
            "getmaster on node{k}"
        );
        assert_eq!(ssconf(vc, k, "master_node"), master, "ssconf on node{k}");
    }
}

/// Waits (by polling the file, with a deadline) until node `k`'s ssconf
/// `key` satisfies `f`: the master pushes ssconf files in the background.
fn wait_ssconf(vc: &VCluster, k: usize, key: &str, f: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = ssconf(vc, k, key);
        if f(&v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ssconf_{key} of node{k} stays {v:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Brings up `n` nodes on `net` and waits until every node's ssconf files
/// list them all (node add pushes them in the background).
fn up(net: &str, n: usize) -> VCluster {
    let vc = VCluster::up(net, n);
    let all: Vec<String> = (1..=n).map(|k| format!("node{k}")).collect();
    let all = all.join("\n");
    for k in 1..=n {
        wait_ssconf(&vc, k, "node_list", |v| v == all);
        wait_ssconf(&vc, k, "master_candidates", |v| v == all);
    }
    vc
}

/// `id|status` of every job, as the master on node `k` lists them.
fn jobs(vc: &VCluster, k: usize) -> Vec<(String, String)> {
    vc.ok_on(
        k,
        "gnt-job",
        &["list", "--no-headers", "--separator=|", "-o", "id,status"],
    )
    .lines()
    .map(|l| {
        let (a, b) = l.split_once('|').unwrap();
        (a.to_string(), b.to_string())
    })
    .collect()
}

fn instances(vc: &VCluster, k: usize) -> Vec<String> {
    vc.ok_on(k, "gnt-instance", &["list", "--no-headers", "-o", "name"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Waits until job `id` on the master of node `k` is neither queued nor
/// waiting for its locks.
fn wait_started(vc: &VCluster, k: usize, id: u64) -> String {
    let mut c = vc.luxi_on(k);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.query_jobs(Some(&[id]), &["status"]).unwrap();
        let status = r[0][0].as_str().unwrap_or_default().to_string();
        if status != "queued" && status != "waiting" {
            return status;
        }
        assert!(Instant::now() < deadline, "job {id} stays {status}");
        let _ = c.wait_for_job_change(id, &["status"], json!([status]), json!(null), 5);
    }
}

#[test]
fn planned_failover_to_a_candidate_and_back_keeps_every_acknowledged_change() {
    let vc = up("0.130", 3);
    // Every node is a master candidate (candidate_pool_size 10).
    let roles = vc.list("gnt-node", "name,master_candidate", &[]);
    assert!(roles.iter().all(|r| r[1] == "Y"), "{roles:?}");

    vc.add_instance("node1", "inst1", &["-t", "diskless"]);
    vc.add_instance("node2", "inst2", &["-t", "diskless"]);
    vc.ok("gnt-debug", &["delay", "0"]);
    // A job still running when the master changes.
    let running = vc
        .luxi()
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 600})])
        .unwrap();
    assert_eq!(wait_started(&vc, 1, running), "running");
    let before = jobs(&vc, 1);
    let old_pid = vc.masterd_pid();

    // master-failover on node2.
    vc.ok_on(2, "gnt-cluster", &["master-failover"]);
    assert_master_everywhere(&vc, "node2");
    // The old master daemon no longer serves.
    assert!(!pid_alive(old_pid), "the old master daemon still runs");
    assert!(!vc.paths().luxi_socket().exists());
    assert_ne!(
        vc.gnt_on(1, "gnt-cluster", &["master-ping"]).status.code(),
        Some(0)
    );
    assert_eq!(
        vc.gnt_on(2, "gnt-cluster", &["master-ping"]).status.code(),
        Some(0)
    );
    let err = vc.fails_on(1, "gnt-instance", &["list"]);
    assert!(
        err.contains("This is not the master node, please connect to node 'node2'"),
        "{err}"
    );

    // The RAPI daemon moved with the master role, to the master IP.
    let rapi_pid = |k: usize| -> Option<i32> {
        std::fs::read_to_string(Paths::new(vc.root(k)).rapi_pid())
            .ok()
            .and_then(|p| p.trim().parse().ok())
    };
    assert!(rapi_pid(1).is_none_or(|p| !pid_alive(p)));
    assert!(
        rapi_pid(2).is_some_and(pid_alive),
        "no RAPI daemon on node2"
    );
    std::net::TcpStream::connect((vc.master_ip().as_str(), 5080)).expect("RAPI on the master IP");

    // Everything acknowledged is on the new master.
    assert_eq!(instances(&vc, 2), vec!["inst1", "inst2"]);
    let after = jobs(&vc, 2);
    assert_eq!(after.len(), before.len(), "{before:?} / {after:?}");
    for ((id_b, st_b), (id_a, st_a)) in before.iter().zip(&after) {
        assert_eq!(id_b, id_a);
        if *id_b == running.to_string() {
            // Ganeti marks a job that was running on the old master failed.
            assert_eq!(st_a, "error", "job {id_a}");
        } else {
            assert_eq!(st_a, st_b, "job {id_a}");
        }
    }
    let info = vc.ok_on(2, "gnt-job", &["info", &running.to_string()]);
    assert!(info.contains("master daemon stopped"), "{info}");

    // The new master works: it adds a node (signing its certificate with
    // the CA key it got as a candidate), and an instance there.
    vc.ok_on(2, "gnt-node", &["remove", "node3"]);
    vc.ok_on(2, "gnt-node", &["add", "node3"]);
    let roles = vc.ok_on(
        2,
        "gnt-node",
        &["list", "--no-headers", "--separator=|", "-o", "name,role"],
    );
    assert_eq!(roles, "node1|C\nnode2|M\nnode3|C\n");
    vc.ok_on(
        2,
        "gnt-instance",
        &[
            "add",
            "-o",
            "tiny",
            "-t",
            "diskless",
            "-n",
            "node3",
            "--no-name-check",
            "--no-ip-check",
            "inst3",
        ],
    );
    assert_eq!(instances(&vc, 2), vec!["inst1", "inst2", "inst3"]);
    let on_node2 = jobs(&vc, 2);

    // Back to node1.
    vc.ok_on(1, "gnt-cluster", &["master-failover"]);
    assert_master_everywhere(&vc, "node1");
    assert_eq!(
        vc.gnt_on(1, "gnt-cluster", &["master-ping"]).status.code(),
        Some(0)
    );
    assert_ne!(
        vc.gnt_on(2, "gnt-cluster", &["master-ping"]).status.code(),
        Some(0)
    );
    assert!(!Paths::new(vc.root(2)).masterd_pid().exists());
    assert_eq!(instances(&vc, 1), vec!["inst1", "inst2", "inst3"]);
    let back = jobs(&vc, 1);
    assert_eq!(back, on_node2);
    // Still working: an instance removed, a job run.
    vc.ok("gnt-instance", &["remove", "--force", "inst2"]);
    assert_eq!(instances(&vc, 1), vec!["inst1", "inst3"]);
    vc.ok("gnt-debug", &["delay", "0"]);
    // The other nodes follow the master that changed back.
    for k in 2..=3 {
        wait_ssconf(&vc, k, "instance_list", |v| v == "inst1\ninst3");
    }
    // The master IP is held by node1's daemon, not node2's.
    assert!(Paths::new(vc.root(1)).master_ip_state().exists());
    assert!(!Paths::new(vc.root(2)).master_ip_state().exists());
}

#[test]
fn failover_is_refused_on_the_master_on_a_non_candidate_and_without_a_majority() {
    let vc = up("0.131", 3);
    let err = vc.fails_on(1, "gnt-cluster", &["master-failover"]);
    assert!(
        err.contains("This commands must be run on the node where you want the new master to be. node1 is already the master"),
        "{err}"
    );

    vc.ok(
        "gnt-node",
        &["modify", "-C", "no", "--auto-promote", "node3"],
    );
    wait_ssconf(&vc, 3, "master_candidates", |v| v == "node1\nnode2");
    let err = vc.fails_on(3, "gnt-cluster", &["master-failover"]);
    assert!(
        err.contains(
            "This node is not among the nodes marked as master candidates. Only these nodes can become masters. Current list of master candidates is:\nnode2"
        ),
        "{err}"
    );

    // A candidate whose copy cannot be written lags; verify says so.
    let copy = Paths::new(vc.root(2)).config_copy();
    std::fs::remove_file(&copy).unwrap();
    std::fs::create_dir_all(copy.join("in-the-way")).unwrap();
    vc.ok("gnt-cluster", &["add-tags", "lagging"]);
    let out = vc.gnt("gnt-cluster", &["verify"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ERROR: cluster: Master candidate node2 holds configuration serial"),
        "{text}"
    );
    assert!(text.contains("its copy lags"), "{text}");
    std::fs::remove_dir_all(&copy).unwrap();
    let text = vc.ok("gnt-cluster", &["verify"]);
    assert!(!text.contains("lags"), "{text}");

    // Two of three node daemons down: no majority.
    vc.kill_noded(1);
    vc.kill_noded(3);
    let out = vc.gnt_on(2, "gnt-cluster", &["master-failover"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Master-failover with voting is only possible if the majority of nodes are still healthy; use the --no-voting option after ensuring by other means that you won't end up in a dual-master scenario. Unhealthy nodes: ['node1', 'node3']"),
        "{err}"
    );
    // Nothing changed: node1 is still the master and serves.
    vc.start_noded(1);
    vc.start_noded(3);
    assert_master_everywhere(&vc, "node1");
    assert_eq!(
        vc.gnt_on(1, "gnt-cluster", &["master-ping"]).status.code(),
        Some(0)
    );
    assert!(!Paths::new(vc.root(2)).masterd_pid().exists());
}

#[test]
fn no_voting_fails_over_a_two_node_cluster_whose_master_is_gone() {
    let vc = up("0.132", 2);
    vc.add_instance("node2", "inst1", &["-t", "diskless"]);
    // node2, a candidate, holds a copy of the configuration with inst1
    // (pushed in the background after the commit).
    let copy = Paths::new(vc.root(2)).config_copy();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&copy).is_ok_and(|c| c.contains("\"inst1\"")) {
        assert!(Instant::now() < deadline, "node2's copy never gets inst1");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The master's node dies: its master and node daemons.
    vc.kill_masterd(1);
    vc.kill_noded(1);
    // One of two is no majority.
    let out = vc.gnt_on(2, "gnt-cluster", &["master-failover"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Unhealthy nodes: ['node1']"), "{err}");
    // Without voting it goes ahead, warning that the old master could not
    // be told.
    let out = vc.gnt_on(
        2,
        "gnt-cluster",
        &["master-failover", "--no-voting", "--yes-do-it"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "Could not disable the master role on the old master node1, please disable manually"
        ),
        "{err}"
    );
    assert_eq!(vc.ok_on(2, "gnt-cluster", &["getmaster"]).trim(), "node2");
    assert_eq!(
        vc.gnt_on(2, "gnt-cluster", &["master-ping"]).status.code(),
        Some(0)
    );
    assert_eq!(instances(&vc, 2), vec!["inst1"]);
    // The node comes back and learns the new master.
    vc.start_noded(1);
    vc.ok_on(2, "gnt-cluster", &["redist-conf"]);
    assert_master_everywhere(&vc, "node2");
}
