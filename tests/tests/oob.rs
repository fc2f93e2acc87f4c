//! Out-of-band management on the virtual cluster: `gnt-node power`,
//! `health` and `powercycle`, with OOB programs written by the test that
//! record what they are asked and answer Ganeti's OOB API's JSON.
//!
//! Needs the workspace binaries built first (`cargo build --workspace
//! --bins`). Also compares with Ganeti 3.0's Python `gnt-node`
//! (`scripts/python-ganeti.sh`) unless `GANETI_SKIP_PYTHON_ORACLE=1`.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::{repo_root, VCluster};

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An OOB program: appends `<command> <node>` to `calls.log`, keeps each
/// node's power state in `state-<node>`, answers power-status and health.
fn good_program(dir: &Path) -> PathBuf {
    let p = dir.join("oob");
    let d = dir.display();
    script(
        &p,
        &format!(
            r#"echo "$1 $2" >> {d}/calls.log
case "$1" in
  power-on) echo on > {d}/state-$2 ;;
  power-off) echo off > {d}/state-$2 ;;
  power-cycle) ;;
  power-status)
    if [ "$(cat {d}/state-$2 2>/dev/null)" = off ]; then
      echo '{{"powered": false}}'
    else
      echo '{{"powered": true}}'
    fi ;;
  health) echo '[["disk0", "OK"], ["psu1", "WARNING"]]' ;;
  *) echo "unknown command $1" >&2; exit 2 ;;
esac"#
        ),
    );
    p
}

fn calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default()
}

/// Exit code, standard output and standard error.
fn raw(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Exit code, the table (without its padding at line ends) and the rest:
/// the job's log lines (which Ganeti's CLI prints on standard output, as
/// `<time>  - WARNING: ...`) and standard error.
fn out(o: &Output) -> (Option<i32>, String, String) {
    let (code, stdout, stderr) = raw(o);
    let (log, table): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .partition(|l| l.contains("  - WARNING: ") || l.contains("  - INFO: "));
    let log: String = log.iter().map(|l| format!("{l}\n")).collect();
    (
        code,
        trim_lines(&table.join("\n")),
        format!("{log}{stderr}"),
    )
}

/// [`raw`] without the times of the job's log lines.
fn untimed((code, stdout, stderr): (Option<i32>, String, String)) -> (Option<i32>, String, String) {
    let stdout = stdout
        .lines()
        .map(|l| match l.find("  - ") {
            Some(i) if l.contains("  - WARNING: ") || l.contains("  - INFO: ") => {
                format!("<time>{}\n", &l[i..])
            }
            _ => format!("{l}\n"),
        })
        .collect();
    (code, stdout, stderr)
}

fn trim_lines(s: &str) -> String {
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// Ganeti's Python tools, unless skipping was asked for.
fn python_tools() -> Option<PathBuf> {
    if std::env::var("GANETI_SKIP_PYTHON_ORACLE").as_deref() == Ok("1") {
        return None;
    }
    let o = Command::new(repo_root().join("scripts/python-ganeti.sh"))
        .output()
        .expect("running scripts/python-ganeti.sh");
    assert!(
        o.status.success(),
        "scripts/python-ganeti.sh failed; set GANETI_SKIP_PYTHON_ORACLE=1 to skip:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

fn python(vc: &VCluster, py: &Path, cmd: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg("/usr/bin/python3")
        .arg(py.join(cmd))
        .args(args)
        .env("PYTHONPATH", py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("GANETI_ROOTDIR", vc.root(1))
        .env("GANETI_HOSTNAME", "node1")
        .output()
        .expect("running Python gnt-node")
}

#[test]
fn gnt_node_power_health_and_powercycle_on_the_virtual_cluster() {
    let vc = VCluster::up("0.71", 3);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let oob = good_program(d).display().to_string();
    let fail = d.join("oob-fail");
    script(&fail, "echo BMC unreachable >&2; exit 3");
    let slow = d.join("oob-slow");
    script(&slow, "exec sleep 60");
    let nd = |p: &str| format!("oob_program={p}");

    // No node has a program yet.
    let o = vc.gnt("gnt-node", &["power", "status", "node3"]);
    assert_eq!(
        out(&o),
        (
            Some(1),
            "Node  Status\nnode3 (unavail)\n".into(),
            String::new()
        )
    );
    for n in ["node1", "node2"] {
        vc.ok("gnt-node", &["modify", "--node-parameters", &nd(&oob), n]);
    }

    // Status and health run the program on the master with the command
    // and the node's name.
    let o = vc.gnt("gnt-node", &["power", "status"]);
    assert_eq!(
        out(&o).1,
        "Node  Status\nnode1 powered\nnode2 powered\nnode3 (unavail)\n"
    );
    assert_eq!(o.status.code(), Some(1), "node3 has no program");
    assert_eq!(calls(d), "power-status node1\npower-status node2\n");
    let o = vc.gnt("gnt-node", &["health", "node1", "node2"]);
    let (code, stdout, stderr) = out(&o);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "Node  Status\nnode1 disk0=OK\n      psu1=WARNING\nnode2 disk0=OK\n      psu1=WARNING\n"
    );
    assert!(
        stderr.contains("Item 'psu1' on node 'node2' has status 'WARNING'"),
        "{stderr}"
    );

    // The master is never powered off (or cycled) through the LU.
    let e = vc.fails(
        "gnt-node",
        &["power", "off", "-f", "--ignore-status", "node1"],
    );
    assert!(
        e.contains(&format!(
            "Operating on the master node node1 is not allowed for power-off; run '{oob} \
             power-off node1' if you want to operate on the master regardless"
        )),
        "{e}"
    );
    assert!(!calls(d).contains("power-off"), "{}", calls(d));

    // Power off marks the node offline first, then clears `powered`.
    let o = trim_lines(&vc.ok("gnt-node", &["power", "off", "-f", "node2"]));
    assert_eq!(o, "Node  Status\nnode2 invoked\n");
    assert!(calls(d).ends_with("power-off node2\n"), "{}", calls(d));
    assert_eq!(
        vc.list("gnt-node", "name,offline,powered", &["node2"]),
        vec![vec!["node2".to_string(), "Y".into(), "N".into()]]
    );
    let o = vc.gnt("gnt-node", &["power", "status", "node2"]);
    assert_eq!(out(&o).1, "Node  Status\nnode2 unpowered\n");
    let o = trim_lines(&vc.ok("gnt-node", &["power", "on", "node2"]));
    assert_eq!(o, "Node  Status\nnode2 invoked\n");
    assert_eq!(
        vc.list("gnt-node", "name,powered", &["node2"]),
        vec![vec!["node2".to_string(), "Y".into()]]
    );
    vc.ok("gnt-node", &["modify", "-f", "-O", "no", "node2"]);

    // A failing program and one past its timeout: no data for the node,
    // and a warning naming the node, the command and why.
    vc.ok(
        "gnt-node",
        &[
            "modify",
            "--node-parameters",
            &nd(&fail.display().to_string()),
            "node3",
        ],
    );
    let o = vc.gnt("gnt-node", &["power", "status", "node3"]);
    let (code, stdout, stderr) = out(&o);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(1), "Node  Status\nnode3 (nodata)\n")
    );
    let want = format!(
        "Out-of-band RPC failed on node 'node3': '{} power-status node3' failed with \
         reason 'exited with code 3'; output: BMC unreachable",
        fail.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    vc.ok(
        "gnt-node",
        &[
            "modify",
            "--node-parameters",
            &nd(&slow.display().to_string()),
            "node3",
        ],
    );
    let o = vc.gnt("gnt-node", &["health", "--oob-timeout", "1", "node3"]);
    let (code, stdout, stderr) = out(&o);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(1), "Node  Status\nnode3 (nodata)\n")
    );
    assert!(
        stderr.contains("Out-of-band RPC failed on node 'node3'") && stderr.contains("timed out"),
        "{stderr}"
    );

    // Powercycle: refused on the master without --force; on the fake
    // hypervisor only recorded.
    let e = vc.fails("gnt-node", &["powercycle", "--yes", "node1"]);
    assert!(
        e.contains("The node is the master and the force parameter was not set"),
        "{e}"
    );
    let o = vc.gnt("gnt-node", &["powercycle", "--yes", "node3"]);
    let (code, _, stderr) = out(&o);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Fake powercycle recorded"), "{stderr}");
    let log = objects::paths::Paths::new(vc.root(3))
        .data_dir()
        .join("fake-powercycle.log");
    let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(log.contains("powercycle node3"), "{log}");

    // Ganeti's Python gnt-node prints the same.
    vc.ok(
        "gnt-node",
        &["modify", "--node-parameters", "oob_program=", "node3"],
    );
    if let Some(py) = python_tools() {
        for args in [
            &["power", "status"][..],
            &["power", "--no-headers", "--separator=:", "status", "node2"],
            &["health", "node1"],
            &["power", "-f", "--ignore-status", "off", "node1"],
            &["power", "off"],
            &["powercycle", "--yes", "node1"],
        ] {
            let ours = untimed(raw(&vc.gnt("gnt-node", args)));
            let theirs = untimed(raw(&python(&vc, &py, "gnt-node", args)));
            assert_eq!(
                ours, theirs,
                "gnt-node {args:?}: ours (left) and Ganeti's Python (right) differ"
            );
        }
    }
}
