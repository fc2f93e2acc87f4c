//! htools against a running master over LUXI: hbal and hinfo read the
//! cluster (`-L`), and hbal executes its moves as jobs (`-X`): migrations
//! of shared-file instances, and failovers and new secondaries of drbd
//! instances.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use tests::{bin_dir, VCluster};

fn htool(vc: &VCluster, tool: &str, args: &[&str]) -> String {
    let out = Command::new(bin_dir().join(tool))
        .args(args)
        .env("GANETI_ROOTDIR", vc.root(1))
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

fn pnodes(vc: &VCluster) -> Vec<String> {
    vc.list("gnt-instance", "pnode", &[])
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn hbal_reads_the_cluster_and_executes_its_moves_over_luxi() {
    let vc = VCluster::up("0.77", 3);
    // The virtual cluster's nodes share one shared-file storage directory,
    // so migrations find the disks.
    for name in ["inst1", "inst2", "inst3"] {
        vc.ok(
            "gnt-instance",
            &[
                "add",
                "-t",
                "sharedfile",
                "--disk",
                "0:size=16M",
                "-o",
                "tiny",
                "-n",
                "node1",
                "--no-name-check",
                "--no-ip-check",
                name,
            ],
        );
    }

    // reading: the default socket under GANETI_ROOTDIR, and an explicit one
    let out = htool(&vc, "hbal", &["-L", "-v", "-v"]);
    assert!(out.contains("Loaded 3 nodes, 3 instances"), "{out}");
    assert!(out.contains("Initial coefficients: overall"), "{out}");
    let arg = format!("--luxi={}", vc.paths().luxi_socket().display());
    let out = htool(&vc, "hinfo", &[&arg]);
    assert!(
        out.contains("Loaded 3 nodes, 3 instances, 1 node group"),
        "{out}"
    );

    // executing: the instances piled on node1 spread out
    let out = htool(&vc, "hbal", &["-L", "-X"]);
    assert!(out.contains("Executing jobset for instances"), "{out}");
    assert!(!out.contains("did not succeed"), "{out}");
    let on_node1 = pnodes(&vc).iter().filter(|p| *p == "node1").count();
    assert!(on_node1 < 3, "no instance left node1\n{out}");
    // balanced now: a second run finds nothing to do
    let out = htool(&vc, "hbal", &["-L"]);
    assert!(
        out.contains("Nothing to do") || out.contains("No solution found"),
        "{out}"
    );
}

/// `drbd` instances piled on one pair of nodes: hbal reads their
/// secondaries over LUXI and executes failovers (migrations) and new
/// secondaries (replace-disks -n) as jobs; every copy ends in sync.
#[test]
fn hbal_moves_drbd_instances_with_migrations_and_new_secondaries() {
    let vc = VCluster::up("0.66", 3);
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=drbd,diskless",
            "--ipolicy-disk-templates=drbd,diskless",
        ],
    );
    for name in ["d1", "d2", "d3", "d4"] {
        vc.add_instance(
            "node1:node2",
            name,
            &[
                "-t",
                "drbd",
                "--disk",
                "0:size=64M",
                "-B",
                "maxmem=512,minmem=512",
            ],
        );
    }
    let plan = htool(&vc, "hbal", &["-L", "-C"]);
    assert!(
        plan.contains("gnt-instance replace-disks -n node3"),
        "{plan}"
    );
    let out = htool(&vc, "hbal", &["-L", "-X"]);
    assert!(out.contains("Executing jobset for instances"), "{out}");
    assert!(!out.contains("did not succeed"), "{out}");
    let rows = vc.list("gnt-instance", "name,pnode,snodes", &[]);
    let uses_node3 = rows
        .iter()
        .filter(|r| r[1] == "node3" || r[2] == "node3")
        .count();
    assert!(uses_node3 > 0, "nothing moved to node3: {rows:?}\n{out}");
    for r in &rows {
        let info = vc.ok("gnt-instance", &["info", &r[0]]);
        assert_eq!(info.matches("in sync, status ok").count(), 2, "{info}");
    }
    let out = htool(&vc, "hbal", &["-L"]);
    assert!(
        out.contains("Nothing to do") || out.contains("No solution found"),
        "{out}"
    );
}
