//! `gnt-cluster init` and `gnt-cluster destroy` as the user sees them:
//! their messages and exit codes, the files they create and remove and the
//! daemons they start and stop.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use tests::{bin_dir, VCluster};

fn pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Whether process `pid` runs (a zombie, reaped later by init, does not).
fn running(pid: i32) -> bool {
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    alive && state.split_whitespace().nth(2) != Some("Z")
}

/// The cluster's files left in the data directory of the tree `root`.
fn cluster_files(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("var/lib/ganeti")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("config.db")
                || n.starts_with("queue.db")
                || n.starts_with("ssconf_")
                || n == "server.pem"
                || n == "rapi.pem"
                || n.starts_with("cluster-ca.")
        })
        .collect()
}

#[test]
fn init_on_an_initialised_node_is_refused_and_changes_nothing() {
    let vc = VCluster::up("0.45", 1);
    let info_before = vc.ok("gnt-cluster", &["info"]);
    let out = vc.gnt(
        "gnt-cluster",
        &["init", "--enabled-hypervisors=fake", "other"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "Failure: prerequisites not met for this operation:\n\
             error type: wrong_input, error details:\n\
             Cluster is already initialised (found {})",
            vc.paths().config_db().display()
        )),
        "{stderr}"
    );
    assert_eq!(vc.ok("gnt-cluster", &["info"]), info_before);
}

#[test]
fn destroy_without_yes_do_it_says_so_and_keeps_the_cluster() {
    let vc = VCluster::up("0.46", 1);
    let out = vc.gnt("gnt-cluster", &["destroy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("supply the --yes-do-it option"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(running(vc.masterd_pid()));
    assert_eq!(vc.ok("gnt-cluster", &["getmaster"]).trim(), "node1");
}

#[test]
fn destroy_stops_every_daemon_and_removes_the_files_and_init_starts_again() {
    let vc = VCluster::up("0.47", 2);
    let mut pids = vec![vc.masterd_pid(), pid(&vc.paths().rapi_pid())];
    for k in 1..=2 {
        pids.push(pid(&vc.root(k).join("var/run/ganeti/ganeti-noded.pid")));
    }
    // Ganeti's checks: not while an instance or another node remains.
    vc.add_instance("node1", "left", &["-t", "diskless"]);
    let err = vc.fails("gnt-cluster", &["destroy", "--yes-do-it"]);
    assert!(
        err.contains("There are still 1 node(s) in this cluster."),
        "{err}"
    );
    vc.ok("gnt-node", &["remove", "node2"]);
    let err = vc.fails("gnt-cluster", &["destroy", "--yes-do-it"]);
    assert!(
        err.contains("There are still 1 instance(s) in this cluster."),
        "{err}"
    );
    assert!(running(vc.masterd_pid()), "a refused destroy stops nothing");
    vc.ok("gnt-instance", &["remove", "-f", "left"]);
    vc.ok("gnt-cluster", &["destroy", "--yes-do-it"]);
    for p in pids {
        assert!(!running(p), "daemon {p} survived gnt-cluster destroy");
    }
    for k in 1..=2 {
        assert_eq!(cluster_files(&vc.root(k)), Vec::<String>::new(), "node{k}");
        assert!(!vc.root(k).join("var/run/ganeti/ganeti-noded.pid").exists());
    }
    assert!(!vc.paths().masterd_pid().exists());
    assert!(!vc.paths().rapi_pid().exists());

    vc.ok(
        "gnt-cluster",
        &["init", "--enabled-hypervisors=fake", "again.example.com"],
    );
    assert_eq!(vc.ok("gnt-cluster", &["getmaster"]).trim(), "node1");
    let info = vc.ok("gnt-cluster", &["info"]);
    assert!(info.contains("Cluster name: again.example.com"), "{info}");
    assert!(
        running(pid(&vc.paths().rapi_pid())),
        "ganeti-rapi runs again"
    );
    for f in [
        "config.db",
        "server.pem",
        "rapi.pem",
        "cluster-ca.pem",
        "cluster-ca.key",
    ] {
        assert!(
            vc.paths().data_dir().join(f).is_file(),
            "{f} is missing after init"
        );
    }
}

#[test]
fn init_with_an_unknown_hypervisor_names_it_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node1");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hosts"), "127.0.48.1 node1\n").unwrap();
    let out = Command::new(bin_dir().join("gnt-cluster"))
        .args(["init", "--enabled-hypervisors=xen-pvm", "c.example.com"])
        .env("GANETI_ROOTDIR", &root)
        .env("GANETI_HOSTNAME", "node1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid parameter: unknown hypervisor 'xen-pvm'"),
        "{stderr}"
    );
    assert!(!root.join("var/lib/ganeti/config.db").exists());
    assert!(!root.join("var/run/ganeti/ganeti-noded.pid").exists());
    assert!(!root.join("var/run/ganeti/ganeti-masterd.pid").exists());
}
