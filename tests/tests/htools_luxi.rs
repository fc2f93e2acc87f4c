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
    assert!(out.contains("Loaded 3 nodes, 3 instances, 1 node group"), "{out}");
    // diskless instances cannot move, so there is nothing to execute
    let out = htool(&vc, "hbal", &["-L", "-X"]);
    assert!(out.contains("No solution found"), "{out}");
}
