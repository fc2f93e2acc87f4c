//! Moving instances off nodes on a virtual cluster (fake hypervisor):
//! migrate and failover with the default iallocator, `migrate --cleanup`
//! after an interrupted migration, `gnt-node migrate` and
//! `gnt-node evacuate`.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::VCluster;

fn add_diskless(vc: &VCluster, node: &str, name: &str) {
    vc.add_instance(node, name, &["-t", "diskless"]);
}

fn fake_state(vc: &VCluster, node: usize, name: &str) -> std::path::PathBuf {
    vc.root(node)
        .join("var/run/ganeti/fake-hypervisor")
        .join(name)
}

#[test]
fn migrate_and_failover_choose_the_target_with_the_default_iallocator() {
    let vc = VCluster::up("0.40", 3);
    let out = vc.ok("gnt-cluster", &["info"]);
    assert!(
        out.lines()
            .any(|l| l.trim() == "default instance allocator: hail"),
        "{out}"
    );
    add_diskless(&vc, "node2", "roamer");
    let out = vc.ok("gnt-instance", &["migrate", "-f", "roamer"]);
    assert!(out.contains("via iallocator hail"), "{out}");
    let rows = vc.list("gnt-instance", "pnode,status", &["roamer"]);
    assert_ne!(rows[0][0], "node2", "{rows:?}");
    assert_eq!(rows[0][1], "running");
    let after_migrate = rows[0][0].clone();
    let out = vc.ok("gnt-instance", &["failover", "-f", "-I", "hail", "roamer"]);
    assert!(out.contains("via iallocator hail"), "{out}");
    let rows = vc.list("gnt-instance", "pnode,status", &["roamer"]);
    assert_ne!(rows[0][0], after_migrate, "{rows:?}");
    assert_eq!(rows[0][1], "running");
    // A target node and an iallocator together are refused.
    let err = vc.fails(
        "gnt-instance",
        &[
            "migrate",
            "-f",
            "-I",
            "hail",
            "--target-node",
            "node1",
            "roamer",
        ],
    );
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn migrate_cleanup_finds_where_the_instance_runs() {
    let vc = VCluster::up("0.41", 3);
    add_diskless(&vc, "node2", "lost");
    // The migration "finished" on node3 but the master never recorded it.
    std::fs::rename(fake_state(&vc, 2, "lost"), fake_state(&vc, 3, "lost")).unwrap();
    // A list of every instance asks every node; one that names its
    // instances asks only their primaries, as Ganeti's does, and so sees
    // the instance down.
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &[]),
        vec![vec!["node2", "ERROR_wrongnode"]]
    );
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["lost"]),
        vec![vec!["node2", "ERROR_down"]]
    );
    let out = vc.ok("gnt-instance", &["migrate", "-f", "--cleanup", "lost"]);
    assert!(out.contains("running on secondary node (node3)"), "{out}");
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["lost"]),
        vec![vec!["node3", "running"]]
    );
    // Cut off half-way: it runs on both; the copy on the target goes.
    std::fs::copy(fake_state(&vc, 3, "lost"), fake_state(&vc, 1, "lost")).unwrap();
    let out = vc.ok("gnt-instance", &["migrate", "-f", "--cleanup", "lost"]);
    assert!(out.contains("cleanup after failed migration"), "{out}");
    assert!(
        out.contains("confirmed to be running on its primary node (node3)"),
        "{out}"
    );
    assert!(!fake_state(&vc, 1, "lost").exists());
    assert!(fake_state(&vc, 3, "lost").exists());
    // Nowhere at all: refused, config untouched.
    std::fs::remove_file(fake_state(&vc, 3, "lost")).unwrap();
    let err = vc.fails("gnt-instance", &["migrate", "-f", "--cleanup", "lost"]);
    assert!(err.contains("does not seem to be running at all"), "{err}");
    assert_eq!(
        vc.list("gnt-instance", "pnode", &["lost"]),
        vec![vec!["node3"]]
    );
}

#[test]
fn node_migrate_and_evacuate_empty_a_node() {
    let vc = VCluster::up("0.42", 3);
    for name in ["a1", "a2", "a3"] {
        add_diskless(&vc, "node2", name);
    }
    let out = vc.ok("gnt-node", &["migrate", "-f", "node2"]);
    assert!(
        out.contains("All instances migrated successfully."),
        "{out}"
    );
    let rows = vc.list("gnt-instance", "name,pnode,status", &[]);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_ne!(r[1], "node2", "{rows:?}");
        assert_eq!(r[2], "running", "{rows:?}");
    }
    assert_eq!(
        vc.list("gnt-node", "pinst_cnt", &["node2"]),
        vec![vec!["0"]]
    );
    // Move them all to node3, then evacuate node3 with the iallocator.
    for r in &rows {
        if r[1] != "node3" {
            vc.ok(
                "gnt-instance",
                &["migrate", "-f", "--target-node", "node3", &r[0]],
            );
        }
    }
    let out = vc.ok("gnt-node", &["evacuate", "-f", "-p", "node3"]);
    assert!(
        out.contains("All instances evacuated successfully."),
        "{out}"
    );
    let rows = vc.list("gnt-instance", "name,pnode,status", &[]);
    for r in &rows {
        assert_ne!(r[1], "node3", "{rows:?}");
        assert_eq!(r[2], "running", "{rows:?}");
    }
    // Nothing left to do is not an error: the opcode submits no job.
    let mut c = vc.luxi();
    let id = c
        .submit_job(vec![serde_json::json!({
            "OP_ID": "OP_NODE_EVACUATE", "node_name": "node3", "mode": "primary-only"
        })])
        .unwrap();
    assert_eq!(vc.wait_job(id), "success");
    let r = c.query_jobs(Some(&[id]), &["opresult", "oplog"]).unwrap();
    assert_eq!(r[0][0], serde_json::json!([{"jobs": []}]), "{r}");
    assert!(
        r[0][1].to_string().contains("No instances to evacuate"),
        "{r}"
    );
    // Evacuating "all" at once is refused, as in Ganeti.
    add_diskless(&vc, "node3", "b1");
    let err = vc.fails("gnt-node", &["evacuate", "-f", "node3"]);
    assert!(
        err.contains("not possible to evacuate all instances"),
        "{err}"
    );
}

/// Every file below `dir`, recursively.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn sharedfile_instances_move_to_any_node_with_their_disk() {
    let vc = VCluster::up("0.43", 3);
    vc.add_instance(
        "node2",
        "shared1",
        &["-t", "sharedfile", "--disk", "0:size=32M"],
    );
    let shared = vc.dir.path().join("vc/shared");
    let disks = files_below(&shared);
    assert_eq!(disks.len(), 1, "{disks:?}");
    assert_eq!(std::fs::metadata(&disks[0]).unwrap().len(), 32 << 20);
    vc.ok(
        "gnt-instance",
        &["migrate", "-f", "--target-node", "node3", "shared1"],
    );
    vc.ok(
        "gnt-instance",
        &["failover", "-f", "--target-node", "node1", "shared1"],
    );
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["shared1"]),
        vec![vec!["node1", "running"]]
    );
    // The same disk all along, and verify is clean.
    assert_eq!(files_below(&shared), disks);
    let out = vc.ok("gnt-cluster", &["verify"]);
    assert!(!out.contains("ERROR"), "{out}");
    // Removed from node1, the shared disk goes.
    vc.ok("gnt-instance", &["remove", "-f", "shared1"]);
    assert!(files_below(&shared).is_empty());
}

#[test]
fn runtime_memory_balloons_within_the_instance_limits() {
    let vc = VCluster::up("0.44", 2);
    vc.add_instance(
        "node2",
        "elastic",
        &["-t", "diskless", "-B", "minmem=256,maxmem=1024"],
    );
    assert_eq!(
        vc.list("gnt-instance", "oper_ram", &["elastic"]),
        vec![vec!["1024"]]
    );
    vc.ok("gnt-instance", &["modify", "-m", "512", "elastic"]);
    assert_eq!(
        vc.list("gnt-instance", "oper_ram", &["elastic"]),
        vec![vec!["512"]]
    );
    let err = vc.fails("gnt-instance", &["modify", "-m", "128", "elastic"]);
    assert!(
        err.contains("must have memory between 256 and 1024 MB"),
        "{err}"
    );
    assert_eq!(
        vc.list("gnt-instance", "oper_ram", &["elastic"]),
        vec![vec!["512"]]
    );
    // --force goes below minmem; a stopped instance cannot balloon.
    vc.ok(
        "gnt-instance",
        &["modify", "--force", "-m", "128", "elastic"],
    );
    assert_eq!(
        vc.list("gnt-instance", "oper_ram", &["elastic"]),
        vec![vec!["128"]]
    );
    vc.ok("gnt-instance", &["shutdown", "elastic"]);
    let err = vc.fails("gnt-instance", &["modify", "-m", "512", "elastic"]);
    assert!(err.contains("is not running"), "{err}");
}
