//! htools against a running master over LUXI (`-L`): hbal and hinfo load
//! the nodes and instances that masterd reports.

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

#[test]
fn hbal_and_hinfo_read_the_cluster_over_luxi() {
    let vc = VCluster::up("0.77", 3);
    for (name, node) in [("inst1", "node1"), ("inst2", "node1"), ("inst3", "node2")] {
        vc.ok(
            "gnt-instance",
            &[
                "add",
                "-t",
                "diskless",
                "-o",
                "tiny",
                "-n",
                node,
                "--no-name-check",
                "--no-ip-check",
                name,
            ],
        );
    }
    // the default socket under GANETI_ROOTDIR
    let out = htool(&vc, "hbal", &["-L", "-v", "-v"]);
    assert!(out.contains("Loaded 3 nodes, 3 instances"), "{out}");
    assert!(out.contains("Initial coefficients: overall"), "{out}");
    // an explicit socket
    let sock = vc.paths().luxi_socket();
    let arg = format!("--luxi={}", sock.display());
    let out = htool(&vc, "hinfo", &[&arg]);
    assert!(
        out.contains("Loaded 3 nodes, 3 instances, 1 node group"),
        "{out}"
    );
    // diskless instances cannot move, so there is nothing to execute
    let out = htool(&vc, "hbal", &["-L", "-X"]);
    assert!(out.contains("No solution found"), "{out}");
}

#[test]
fn hbal_executes_its_moves_through_luxi() {
    let vc = VCluster::up("0.78", 3);
    // one shared-file storage directory for all the nodes, so that
    // migrations find the disks
    let shared = vc.dir.path().join("vc/shared");
    for k in 1..=3 {
        let dir = vc.root(k).join("srv/ganeti/shared-file-storage");
        let _ = std::fs::remove_dir(&dir);
        std::os::unix::fs::symlink(&shared, &dir).expect("link the shared storage");
    }
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
    let out = htool(&vc, "hbal", &["-L", "-X"]);
    assert!(out.contains("Executing jobset for instances"), "{out}");
    assert!(!out.contains("did not succeed"), "{out}");
    let pnodes: Vec<String> = vc
        .list("gnt-instance", "pnode", &[])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let on_node1 = pnodes.iter().filter(|p| *p == "node1").count();
    assert!(on_node1 < 3, "no instance left node1: {pnodes:?}\n{out}");
    // the cluster is balanced now: a second run finds nothing to do
    let out = htool(&vc, "hbal", &["-L"]);
    assert!(
        out.contains("Nothing to do") || out.contains("No solution found"),
        "{out}"
    );
}
