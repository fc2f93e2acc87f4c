//! Backups end to end on a virtual cluster (`gnt-backup`): an instance with
//! data on its disk is exported from node1 to node2 through the `tiny` OS
//! definition's export script, removed, and imported back on node3 through
//! its import script, the dump crossing nodes over the node RPC; the data
//! must come back, also for a kvm guest (the test guest, which keeps a
//! counter on its disk). `gnt-backup list` must answer as Debian's Python
//! `gnt-backup` of Ganeti 3.0 does against the same master (skipped with
//! `GANETI_SKIP_PYTHON_ORACLE=1`), and bad input must change nothing.
//!
//! Needs the workspace binaries built first (`cargo build --workspace
//! --bins`), qemu-img and qemu-storage-daemon.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::{repo_root, VCluster};

/// Where the test writes its data on the instance's disk: past the tiny
/// OS's header, in the second MiB.
const DATA_OFFSET: u64 = 1024 * 1024 + 4096;
const DATA: &[u8] = b"ganeti-rs backup round trip: the data survives";

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(files_below(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// The one disk file of `instance` on node `k`.
fn disk_file(vc: &VCluster, k: usize, instance: &str) -> PathBuf {
    let files = files_below(&vc.root(k).join("srv/ganeti/file-storage").join(instance));
    assert_eq!(
        files.len(),
        1,
        "disk files of {instance} on node{k}: {files:?}"
    );
    files[0].clone()
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// The entries of node `k`'s export directory (hidden staging ones too).
fn exports_on(vc: &VCluster, k: usize) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vc.root(k).join("srv/ganeti/export"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Debian's Python tools of Ganeti 3.0 (see `scripts/python-ganeti.sh`),
/// or `None` when skipping was asked for.
fn python_tools() -> Option<PathBuf> {
    if std::env::var("GANETI_SKIP_PYTHON_ORACLE").as_deref() == Ok("1") {
        eprintln!("GANETI_SKIP_PYTHON_ORACLE=1: not comparing with Ganeti's Python tools");
        return None;
    }
    let out = Command::new(repo_root().join("scripts/python-ganeti.sh"))
        .output()
        .expect("running scripts/python-ganeti.sh");
    assert!(
        out.status.success(),
        "scripts/python-ganeti.sh failed; set GANETI_SKIP_PYTHON_ORACLE=1 to skip:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Our command and Debian's Python one give the same exit code and output.
fn same_as_python(vc: &VCluster, py: &Path, cmd: &str, args: &[&str]) -> String {
    let ours = vc.gnt(cmd, args);
    let theirs = Command::new("timeout")
        .arg("120")
        .arg("/usr/bin/python3")
        .arg(py.join(cmd))
        .args(args)
        .env("PYTHONPATH", py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("GANETI_ROOTDIR", vc.root(1))
        .env("GANETI_HOSTNAME", "node1")
        .output()
        .expect("running Python");
    let show = |o: &std::process::Output| {
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(
        show(&ours),
        show(&theirs),
        "{cmd} {args:?}: ours (left) and Ganeti's Python (right) differ"
    );
    String::from_utf8_lossy(&ours.stdout).into_owned()
}

#[test]
fn an_instance_is_exported_removed_and_imported_on_another_node_with_its_data() {
    let vc = VCluster::up("0.110", 3);
    vc.add_instance("node1", "inst1", &["-t", "file", "--disk", "0:size=4M"]);
    vc.ok("gnt-instance", &["shutdown", "inst1"]);
    let disk = disk_file(&vc, 1, "inst1");
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.seek(SeekFrom::Start(DATA_OFFSET)).unwrap();
        f.write_all(DATA).unwrap();
        f.sync_all().unwrap();
    }
    let header = read_at(&disk, 0, 17);
    assert_eq!(header, b"GANETI-RS TINY OS");

    // A running instance is exported only with --long-sleep (ganeti-rs
    // takes no snapshots): refused before anything changed.
    vc.ok("gnt-instance", &["startup", "inst1"]);
    let err = vc.fails("gnt-backup", &["export", "-n", "node2", "inst1"]);
    assert!(err.contains("--long-sleep option; aborting"), "{err}");
    let err = vc.fails(
        "gnt-backup",
        &["export", "--noshutdown", "-n", "node2", "inst1"],
    );
    assert!(err.contains("you requested a live export"), "{err}");
    let status = vc.list("gnt-instance", "status", &["inst1"]);
    assert_eq!(status, [["running"]]);
    // Bad input: no target, an unknown target.
    let err = vc.fails("gnt-backup", &["export", "inst1"]);
    assert!(err.contains("Target node must be specified"), "{err}");
    let err = vc.fails("gnt-backup", &["export", "-n", "node9", "inst1"]);
    assert!(err.contains("node9"), "{err}");
    assert!(exports_on(&vc, 2).is_empty());

    // Stopped, it is exported: the dump crosses to node2 and nothing stays
    // behind on node1.
    vc.ok("gnt-instance", &["shutdown", "inst1"]);
    vc.ok("gnt-backup", &["export", "-n", "node2", "inst1"]);
    assert_eq!(exports_on(&vc, 2), ["inst1"]);
    assert!(exports_on(&vc, 1).is_empty(), "{:?}", exports_on(&vc, 1));
    let dir = vc.root(2).join("srv/ganeti/export/inst1");
    let ini = std::fs::read_to_string(dir.join("config.ini")).unwrap();
    assert!(ini.starts_with("[export]\nversion = 0\n"), "{ini}");
    assert!(ini.contains("os = tiny"), "{ini}");
    assert!(ini.contains("disk0_size = 4\n"), "{ini}");
    let dump_name = ini
        .lines()
        .find_map(|l| l.strip_prefix("disk0_dump = "))
        .unwrap();
    let dump = dir.join(dump_name);
    assert_eq!(std::fs::metadata(&dump).unwrap().len(), 4 * 1024 * 1024);
    assert_eq!(read_at(&dump, DATA_OFFSET, DATA.len()), DATA);

    let list = vc.ok("gnt-backup", &["list"]);
    assert_eq!(list, "Node  Export\nnode2 inst1\n");
    let nodes = vc.ok("gnt-backup", &["list", "--node", "node1", "--no-headers"]);
    assert_eq!(nodes, "");
    if let Some(py) = python_tools() {
        same_as_python(&vc, &py, "gnt-backup", &["list"]);
        same_as_python(&vc, &py, "gnt-backup", &["list", "--node", "node2"]);
        same_as_python(
            &vc,
            &py,
            "gnt-backup",
            &["list", "--no-headers", "--separator=:"],
        );
        same_as_python(&vc, &py, "gnt-backup", &["list-fields"]);
    }

    // Gone from the cluster, it comes back on node3 from node2's export.
    vc.ok("gnt-instance", &["remove", "-f", "inst1"]);
    let err = vc.fails(
        "gnt-backup",
        &[
            "import",
            "-t",
            "file",
            "-n",
            "node3",
            "--src-node",
            "node1",
            "--no-name-check",
            "--no-ip-check",
            "inst1",
        ],
    );
    assert!(err.contains("No export or invalid export found"), "{err}");
    let err = vc.fails(
        "gnt-backup",
        &[
            "import",
            "-t",
            "file",
            "-n",
            "node3",
            "--src-dir",
            "nosuch",
            "--no-name-check",
            "--no-ip-check",
            "inst1",
        ],
    );
    assert!(
        err.contains("No export found for relative path nosuch"),
        "{err}"
    );
    assert_eq!(vc.ok("gnt-instance", &["list", "--no-headers"]), "");
    assert!(files_below(&vc.root(3).join("srv/ganeti/file-storage")).is_empty());

    vc.ok(
        "gnt-backup",
        &[
            "import",
            "-t",
            "file",
            "-n",
            "node3",
            "--src-node",
            "node2",
            "--src-dir",
            "inst1",
            "--no-name-check",
            "--no-ip-check",
            "inst1",
        ],
    );
    let row = vc.list("gnt-instance", "pnode,os,status,disk.sizes", &["inst1"]);
    assert_eq!(row, [["node3", "tiny", "ADMIN_down", "4"]]);
    let disk = disk_file(&vc, 3, "inst1");
    assert_eq!(read_at(&disk, 0, 17), b"GANETI-RS TINY OS");
    assert_eq!(read_at(&disk, DATA_OFFSET, DATA.len()), DATA);
    // The dumps copied to node3 for the import script are gone.
    assert!(exports_on(&vc, 3).is_empty(), "{:?}", exports_on(&vc, 3));
    vc.ok("gnt-instance", &["startup", "inst1"]);

    // Over RAPI (Ganeti's body: `destination` is the target node), a
    // running instance with `long_sleep`: the new export is on node1, the
    // older one on node2 goes, the instance runs again.
    let users = vc.root(1).join("var/lib/ganeti/rapi/users");
    std::fs::create_dir_all(users.parent().unwrap()).unwrap();
    std::fs::write(&users, "admin secret write\n").unwrap();
    let url = format!("https://{}:5080/2/instances/inst1/export", vc.master_ip());
    let body = r#"{"mode": "local", "destination": "node1", "long_sleep": true}"#;
    let mut answer = String::new();
    // The users file is read again when it changes: until then, 401.
    for _ in 0..500 {
        let out = Command::new("curl")
            .args(["-sk", "-u", "admin:secret", "-X", "PUT", "-H"])
            .args([
                "Content-Type: application/json",
                "-d",
                body,
                "-w",
                "\n%{http_code}",
            ])
            .arg(&url)
            .output()
            .unwrap();
        answer = String::from_utf8_lossy(&out.stdout).into_owned();
        if !answer.ends_with("\n401") {
            break;
        }
        std::thread::yield_now();
    }
    let (job, code) = answer.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "{answer}");
    assert_eq!(vc.wait_job(job.trim().parse().unwrap()), "success");
    assert_eq!(exports_on(&vc, 1), ["inst1"]);
    assert!(exports_on(&vc, 2).is_empty(), "{:?}", exports_on(&vc, 2));
    assert_eq!(vc.list("gnt-instance", "status", &["inst1"]), [["running"]]);
    // QueryExports answers Ganeti 3.0's rows.
    let rows = vc
        .luxi()
        .call("QueryExports", serde_json::json!([[], false]))
        .unwrap();
    assert_eq!(rows, serde_json::json!([["node1", "inst1"]]));
    vc.ok(
        "gnt-backup",
        &["export", "-n", "node2", "--long-sleep", "inst1"],
    );
    assert!(exports_on(&vc, 1).is_empty());

    // Removing: an export that does not exist changes nothing; the real
    // one goes.
    let out = vc.ok("gnt-backup", &["remove", "nosuch"]);
    assert!(out.contains("Export not found"), "{out}");
    assert_eq!(exports_on(&vc, 2), ["inst1"]);
    vc.ok("gnt-backup", &["remove", "inst1"]);
    assert!(exports_on(&vc, 2).is_empty());
    assert_eq!(vc.ok("gnt-backup", &["list", "--no-headers"]), "");
}

fn resumed_from(line: &str) -> Option<u64> {
    line.split_once("resumed from ")?.1.trim().parse().ok()
}

/// The test guest keeps its counter on its disk (each value written with
/// O_DIRECT and O_SYNC before it is printed) and says where it resumes
/// when it boots: exported from node1 to node2 and imported on node3, it
/// resumes from at least the last counter it printed.
#[test]
fn a_kvm_guest_exported_and_imported_on_another_node_resumes_from_its_disk() {
    use tests::guest::{kvm_cluster_booting, serial_socket, Serial};
    let vc = kvm_cluster_booting("0.111", 3, "panic=-1 quiet counter_disk=/dev/vda", "");
    vc.add_instance(
        "node1",
        "g1",
        &[
            "-t",
            "file",
            "--disk",
            "0:size=16M",
            "--no-nics",
            "-B",
            "maxmem=128,minmem=128",
        ],
    );
    let mut serial = Serial::connect(&serial_socket(&vc, "g1"));
    assert_eq!(serial.wait("the resume line", resumed_from), 0);
    let mut printed = serial.counter();
    while printed < 10 {
        printed = serial.counter();
    }
    vc.ok("gnt-instance", &["shutdown", "g1"]);
    vc.ok("gnt-backup", &["export", "-n", "node2", "g1"]);
    vc.ok("gnt-instance", &["remove", "-f", "g1"]);
    vc.ok(
        "gnt-backup",
        &[
            "import",
            "-t",
            "file",
            "-n",
            "node3",
            "--src-node",
            "node2",
            "--no-name-check",
            "--no-ip-check",
            "g1",
        ],
    );
    assert_eq!(
        vc.list("gnt-instance", "pnode,hypervisor,be/maxmem", &["g1"]),
        [["node3", "kvm", "128"]]
    );
    vc.ok("gnt-instance", &["startup", "g1"]);
    let mut serial = Serial::connect(&serial_socket(&vc, "g1"));
    let resumed = serial.wait("the resume line", resumed_from);
    assert!(
        resumed >= printed,
        "resumed from {resumed}, printed {printed} before the export"
    );
    assert!(serial.counter() > resumed);
    vc.ok("gnt-instance", &["remove", "-f", "g1"]);
}
