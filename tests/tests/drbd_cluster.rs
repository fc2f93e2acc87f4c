//! `drbd` instances on a virtual cluster: replicated disks made of files
//! (no volume group), served by a `qemu-storage-daemon` on each of their
//! two nodes, with the fake hypervisor. Create, the copies' state, a lost
//! secondary copy repaired by verify-disks, migration and failover to the
//! secondary only, replace-disks, secondary evacuation of a node,
//! removal leaving nothing, and the bad inputs.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tests::VCluster;

/// The storage daemons of this cluster still running.
fn storage_daemons(vc: &VCluster) -> Vec<String> {
    let base = vc.root(1);
    let base = base.parent().unwrap().display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("qemu-storage-daemon") && cmd.contains(&base) {
            out.push(cmd);
        }
    }
    out
}

/// Files below `dir` (the node's file storage directory).
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(files_below(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

fn disk_state(vc: &VCluster, instance: &str) -> (String, String) {
    let info = vc.ok("gnt-instance", &["info", instance]);
    let line = |k: &str| {
        info.lines()
            .find(|l| l.trim_start().starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    (line("on primary:"), line("on secondary:"))
}

#[test]
fn a_drbd_instance_lives_on_two_nodes_from_create_to_remove() {
    let vc = VCluster::up("0.63", 3);
    // The instance policy may allow only enabled templates (Ganeti's rule).
    let err = vc.fails(
        "gnt-cluster",
        &["modify", "--enabled-disk-templates=drbd,diskless"],
    );
    assert!(
        err.contains("allowed by the ipolicy, but not enabled on the cluster: sharedfile, file"),
        "{err}"
    );
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=file,diskless,sharedfile,drbd",
            "--ipolicy-disk-templates=file,diskless,sharedfile,drbd",
        ],
    );

    // Bad inputs first: they leave nothing.
    let one = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "drbd",
            "--disk",
            "0:size=64M",
            "-n",
            "node1",
            "-o",
            "tiny",
            "--no-name-check",
            "--no-ip-check",
            "bad1",
        ],
    );
    assert!(one.contains("need a mirror node"), "{one}");
    let same = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "drbd",
            "--disk",
            "0:size=64M",
            "-n",
            "node1:node1",
            "-o",
            "tiny",
            "--no-name-check",
            "--no-ip-check",
            "bad2",
        ],
    );
    assert!(
        same.contains("The secondary node cannot be the primary node"),
        "{same}"
    );
    assert!(storage_daemons(&vc).is_empty());

    vc.ok(
        "gnt-instance",
        &[
            "add",
            "-t",
            "drbd",
            "--disk",
            "0:size=64M",
            "-n",
            "node1:node2",
            "-o",
            "tiny",
            "--no-name-check",
            "--no-ip-check",
            "d1",
        ],
    );
    let rows = vc.list("gnt-instance", "name,pnode,snodes,status", &[]);
    assert_eq!(rows, vec![vec!["d1", "node1", "node2", "running"]]);
    assert_eq!(storage_daemons(&vc).len(), 2, "one daemon per copy");
    let (p, s) = disk_state(&vc, "d1");
    assert!(p.contains("in sync, status ok"), "{p}");
    assert!(s.contains("in sync, status ok"), "{s}");
    assert!(files_below(&vc.root(3).join("srv/ganeti/file-storage")).is_empty());

    // The secondary's daemon dies: the disk is degraded, and
    // verify-disks brings its copy back.
    let pid_dir = vc.root(2).join("var/run/ganeti/drbd");
    let pidfile = std::fs::read_dir(&pid_dir)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .expect("the secondary's storage daemon pid file")
        .path();
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (p, _) = disk_state(&vc, "d1");
    assert!(p.contains("*DEGRADED*"), "{p}");
    // verify says so with Ganeti's code: an error for the dead copy, a
    // warning for the primary's (whole, but alone).
    let out = vc.gnt("gnt-cluster", &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "ERROR: instance d1: disk/0 on node2 is degraded; local disk state is 'faulty'"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "WARNING: instance d1: disk/0 on node1 is degraded; local disk state is 'ok'"
        ),
        "{text}"
    );
    let out = vc.ok("gnt-cluster", &["verify-disks"]);
    assert!(out.contains("Activating disks for instance 'd1'"), "{out}");
    // activate-disks --wait-for-sync returns once the copy is whole again.
    vc.ok("gnt-instance", &["activate-disks", "--wait-for-sync", "d1"]);
    let (p, s) = disk_state(&vc, "d1");
    assert!(p.contains("in sync, status ok"), "{p}");
    assert!(s.contains("in sync, status ok"), "{s}");
    let out = vc.ok("gnt-cluster", &["verify"]);
    assert!(
        !out.contains("EINSTANCEFAULTYDISK") && !out.contains("degraded"),
        "{out}"
    );

    // Migration and failover go to the secondary, and only there.
    vc.ok("gnt-instance", &["migrate", "-f", "d1"]);
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes", &[]),
        vec![vec!["node2", "node1"]]
    );
    vc.ok("gnt-instance", &["failover", "-f", "d1"]);
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes", &[]),
        vec![vec!["node1", "node2"]]
    );
    let err = vc.fails("gnt-instance", &["migrate", "-f", "-n", "node3", "d1"]);
    assert!(
        err.contains("cannot be migrated to arbitrary nodes"),
        "{err}"
    );

    // A new secondary: the copy moves to node3, node2 keeps nothing, and
    // the instance fails over to node3.
    vc.ok("gnt-instance", &["replace-disks", "-n", "node3", "d1"]);
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes", &[]),
        vec![vec!["node1", "node3"]]
    );
    assert!(files_below(&vc.root(2).join("srv/ganeti/file-storage")).is_empty());
    assert_eq!(storage_daemons(&vc).len(), 2);
    let (_, s) = disk_state(&vc, "d1");
    assert!(
        s.contains("in sync, status ok") && s.contains("127.0.63.3"),
        "{s}"
    );
    // The secondary's copy made again in place.
    vc.ok("gnt-instance", &["replace-disks", "-s", "d1"]);
    let (p, s) = disk_state(&vc, "d1");
    assert!(
        p.contains("in sync, status ok") && s.contains("in sync, status ok"),
        "{p} {s}"
    );
    let err = vc.fails("gnt-instance", &["replace-disks", "-p", "d1"]);
    assert!(err.contains("not supported by ganeti-rs yet"), "{err}");
    vc.ok("gnt-instance", &["failover", "-f", "d1"]);
    assert_eq!(
        vc.list("gnt-instance", "pnode,snodes", &[]),
        vec![vec!["node3", "node1"]]
    );

    vc.ok("gnt-instance", &["remove", "-f", "d1"]);
    assert!(
        storage_daemons(&vc).is_empty(),
        "{:?}",
        storage_daemons(&vc)
    );
    for k in 1..=3 {
        let left = files_below(&vc.root(k).join("srv/ganeti/file-storage"));
        assert!(left.is_empty(), "node{k} keeps {left:?}");
    }
}

/// `gnt-node evacuate -s`: every instance whose secondary is the node gets
/// a new secondary, one replace-disks job each, named by `-n` or chosen
/// by hail; the node keeps no copy.
#[test]
fn secondary_evacuation_empties_a_node_of_its_copies() {
    let vc = VCluster::up("0.64", 3);
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=drbd,diskless",
            "--ipolicy-disk-templates=drbd,diskless",
        ],
    );
    for (name, nodes) in [("e1", "node1:node2"), ("e2", "node3:node2")] {
        vc.ok(
            "gnt-instance",
            &[
                "add",
                "-t",
                "drbd",
                "--disk",
                "0:size=32M",
                "-n",
                nodes,
                "-o",
                "tiny",
                "--no-name-check",
                "--no-ip-check",
                name,
            ],
        );
    }
    let node2_copies = || files_below(&vc.root(2).join("srv/ganeti/file-storage"));
    assert!(!node2_copies().is_empty());

    // A new secondary that is some instance's primary is refused, and
    // nothing moves.
    let err = vc.fails(
        "gnt-node",
        &["evacuate", "-f", "-s", "-n", "node3", "node2"],
    );
    assert!(
        err.contains("Node node3 is the primary node of instance e2, cannot use it as secondary"),
        "{err}"
    );
    let err = vc.fails(
        "gnt-node",
        &["evacuate", "-f", "-s", "-n", "node2", "node2"],
    );
    assert!(err.contains("Can not use evacuated node"), "{err}");
    assert_eq!(
        vc.list("gnt-instance", "name,pnode,snodes", &[]),
        vec![vec!["e1", "node1", "node2"], vec!["e2", "node3", "node2"]]
    );

    // hail chooses: each instance's other node is the only one left.
    let out = vc.ok("gnt-node", &["evacuate", "-f", "-s", "-I", "hail", "node2"]);
    assert!(
        out.contains("All instances evacuated successfully."),
        "{out}"
    );
    assert_eq!(
        vc.list("gnt-instance", "name,pnode,snodes", &[]),
        vec![vec!["e1", "node1", "node3"], vec!["e2", "node3", "node1"]]
    );
    assert!(node2_copies().is_empty(), "{:?}", node2_copies());
    for name in ["e1", "e2"] {
        let info = vc.ok("gnt-instance", &["info", name]);
        assert_eq!(info.matches("in sync, status ok").count(), 2, "{info}");
    }

    // Back with a named node: e1's secondary goes from node3 to node2.
    vc.ok("gnt-instance", &["remove", "-f", "e2"]);
    let out = vc.ok(
        "gnt-node",
        &["evacuate", "-f", "-s", "-n", "node2", "node3"],
    );
    assert!(
        out.contains("All instances evacuated successfully."),
        "{out}"
    );
    assert_eq!(
        vc.list("gnt-instance", "name,pnode,snodes", &[]),
        vec![vec!["e1", "node1", "node2"]]
    );
    assert!(files_below(&vc.root(3).join("srv/ganeti/file-storage")).is_empty());
}

/// `gnt-cluster repair-disk-sizes`: a disk whose file grew behind the
/// master's back is recorded at the size its primary finds, with
/// Ganeti's log line (a mirrored disk's data child following it is
/// tested in `masterd`: on files, as here, it has no children).
#[test]
fn repair_disk_sizes_records_what_the_primary_holds() {
    let vc = VCluster::up("0.67", 2);
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=file,drbd,diskless",
            "--ipolicy-disk-templates=file,drbd,diskless",
        ],
    );
    vc.add_instance("node1", "f1", &["-t", "file", "--disk", "0:size=32M"]);
    vc.add_instance("node1:node2", "m1", &["-t", "drbd", "--disk", "0:size=32M"]);
    // Nothing to repair: nothing changes.
    let out = vc.ok("gnt-cluster", &["repair-disk-sizes"]);
    assert!(!out.contains("mismatched"), "{out}");

    let files = files_below(&vc.root(1).join("srv/ganeti/file-storage"));
    for (instance, suffix) in [("f1", ".disk0"), ("m1", "_data")] {
        let file = files
            .iter()
            .find(|f| f.contains(&format!("/{instance}/")) && f.ends_with(suffix))
            .unwrap_or_else(|| panic!("{instance}'s disk file in {files:?}"));
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .unwrap()
            .set_len(48 << 20)
            .unwrap();
    }
    let out = vc.ok("gnt-cluster", &["repair-disk-sizes", "f1"]);
    assert!(
        out.contains(
            "Disk 0 of instance f1 has mismatched size, correcting: recorded 32, actual 48"
        ),
        "{out}"
    );
    assert!(!out.contains("m1"), "{out}");
    assert_eq!(
        vc.list("gnt-instance", "name,disk.size/0", &[]),
        vec![vec!["f1", "48"], vec!["m1", "32"]]
    );
    let out = vc.ok("gnt-cluster", &["repair-disk-sizes"]);
    assert!(
        out.contains(
            "Disk 0 of instance m1 has mismatched size, correcting: recorded 32, actual 48"
        ),
        "{out}"
    );
    assert_eq!(
        vc.list("gnt-instance", "name,disk.size/0", &[]),
        vec![vec!["f1", "48"], vec!["m1", "48"]]
    );
    let err = vc.fails("gnt-cluster", &["repair-disk-sizes", "nosuch"]);
    assert!(err.contains("Instance 'nosuch' not known"), "{err}");
}

/// `gnt-instance change-group` and `gnt-group evacuate`: hail's
/// change-group answer moves a drbd instance's two copies into another
/// group (new secondary, migration, new secondary), one job that the
/// command follows; the old group's nodes keep nothing.
#[test]
fn change_group_and_group_evacuate_move_drbd_copies_between_groups() {
    let vc = VCluster::up("0.68", 4);
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=drbd,diskless",
            "--ipolicy-disk-templates=drbd,diskless",
        ],
    );
    vc.ok("gnt-group", &["add", "g2"]);
    vc.ok("gnt-group", &["assign-nodes", "g2", "node3", "node4"]);
    // 1 GiB: the group policy's smallest disk (the files are sparse).
    vc.add_instance("node1:node2", "c1", &["-t", "drbd", "--disk", "0:size=1G"]);
    let copies = |k: usize| files_below(&vc.root(k).join("srv/ganeti/file-storage"));

    let err = vc.fails("gnt-instance", &["change-group", "--to", "default", "c1"]);
    assert!(
        err.contains("Can't use group(s) 'default' as targets, they are used by the instance 'c1'"),
        "{err}"
    );
    let out = vc.ok(
        "gnt-instance",
        &["change-group", "--to", "g2", "-I", "hail", "c1"],
    );
    assert!(out.contains("changed group successfully"), "{out}");
    let rows = vc.list("gnt-instance", "pnode,snodes,status", &["c1"]);
    let mut nodes = vec![rows[0][0].clone(), rows[0][1].clone()];
    nodes.sort();
    assert_eq!(nodes, ["node3", "node4"], "{rows:?}");
    assert_eq!(rows[0][2], "running");
    assert!(copies(1).is_empty() && copies(2).is_empty());

    // The whole group back: every instance of g2 to the other group.
    let err = vc.fails("gnt-group", &["evacuate", "--to", "g2", "g2"]);
    assert!(err.contains("can not be a target group"), "{err}");
    vc.ok("gnt-group", &["evacuate", "-I", "hail", "g2"]);
    let rows = vc.list("gnt-instance", "pnode,snodes", &["c1"]);
    let mut nodes = vec![rows[0][0].clone(), rows[0][1].clone()];
    nodes.sort();
    assert_eq!(nodes, ["node1", "node2"], "{rows:?}");
    assert!(copies(3).is_empty() && copies(4).is_empty());
    let info = vc.ok("gnt-instance", &["info", "c1"]);
    assert_eq!(info.matches("in sync, status ok").count(), 2, "{info}");
}

/// The data files of `instance`'s mirrored disks on node `k`.
fn data_files(vc: &VCluster, k: usize, instance: &str) -> Vec<String> {
    files_below(&vc.root(k).join("srv/ganeti/file-storage"))
        .into_iter()
        .filter(|f| f.contains(&format!("/{instance}/")) && f.ends_with("_data"))
        .collect()
}

/// `gnt-instance modify --disk add|remove` and `--net add|remove` on a
/// `drbd` instance: a new disk is made on both nodes and synced, a removed
/// one leaves no file on either node, the instance starts with what is
/// left, and its removal leaves nothing.
#[test]
fn disks_and_nics_are_added_to_and_removed_from_a_drbd_instance() {
    let vc = VCluster::up("0.69", 2);
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=file,drbd,diskless",
            "--ipolicy-disk-templates=file,drbd,diskless",
        ],
    );
    vc.add_instance("node1:node2", "m1", &["-t", "drbd", "--disk", "0:size=32M"]);
    let out = vc.ok("gnt-instance", &["modify", "--disk", "add:size=16M", "m1"]);
    assert!(out.contains("disk/1 -> add:size=16,mode=rw"), "{out}");
    for k in [1, 2] {
        assert_eq!(data_files(&vc, k, "m1").len(), 2, "node{k}");
    }
    assert_eq!(
        vc.list("gnt-instance", "disk.count,disk.sizes", &["m1"]),
        vec![vec!["2", "32,16"]]
    );
    // Both disks, on both nodes.
    let info = vc.ok("gnt-instance", &["info", "m1"]);
    assert_eq!(info.matches("in sync, status ok").count(), 4, "{info}");

    // A disk of a running instance is removed only once it is stopped.
    let err = vc.fails("gnt-instance", &["modify", "--disk", "0:remove", "m1"]);
    assert!(
        err.contains("can't remove volume from a running instance without using hotplug"),
        "{err}"
    );
    vc.ok("gnt-instance", &["shutdown", "m1"]);
    let out = vc.ok("gnt-instance", &["modify", "--disk", "0:remove", "m1"]);
    assert!(out.contains("disk/0 -> remove"), "{out}");
    for k in [1, 2] {
        assert_eq!(data_files(&vc, k, "m1").len(), 1, "node{k}");
    }
    assert_eq!(
        vc.list("gnt-instance", "disk.count,disk.sizes", &["m1"]),
        vec![vec!["1", "16"]]
    );

    let out = vc.ok(
        "gnt-instance",
        &["modify", "--net", "add:ip=192.0.2.5,name=eth1", "m1"],
    );
    assert!(out.contains("nic.1 -> add:mac="), "{out}");
    assert!(out.contains("ip=192.0.2.5"), "{out}");
    assert_eq!(
        vc.list("gnt-instance", "nic.count,nic.ips", &["m1"]),
        vec![vec!["2", "None,192.0.2.5"]]
    );
    vc.ok("gnt-instance", &["modify", "--net", "eth1:remove", "m1"]);
    assert_eq!(
        vc.list("gnt-instance", "nic.count", &["m1"]),
        vec![vec!["1"]]
    );

    vc.ok("gnt-instance", &["startup", "m1"]);
    vc.ok("gnt-cluster", &["verify-disks"]);
    vc.ok("gnt-instance", &["remove", "-f", "m1"]);
    for k in [1, 2] {
        assert_eq!(data_files(&vc, k, "m1"), Vec::<String>::new(), "node{k}");
    }
    assert_eq!(storage_daemons(&vc), Vec::<String>::new());
}

/// Bytes at `offset` of the file at `path`.
fn read_at(path: &str, offset: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// `gnt-instance modify -t drbd -n NODE` and back with `-t file`: the data
/// written into the file disk is on both nodes' copies after the first
/// conversion and in the new file after the second; each old disk is gone,
/// and the instance starts after each.
#[test]
fn template_conversion_file_to_drbd_and_back_keeps_the_data() {
    let vc = VCluster::up("0.70", 2);
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=file,drbd,diskless",
            "--ipolicy-disk-templates=file,drbd,diskless",
        ],
    );
    vc.add_instance("node1", "c1", &["-t", "file", "--disk", "0:size=32M"]);
    let err = vc.fails(
        "gnt-instance",
        &["modify", "-t", "drbd", "-n", "node2", "c1"],
    );
    assert!(err.contains("cannot change disk template"), "{err}");
    vc.ok("gnt-instance", &["shutdown", "c1"]);
    let file_disks = |k: usize| -> Vec<String> {
        files_below(&vc.root(k).join("srv/ganeti/file-storage"))
            .into_iter()
            .filter(|f| f.contains("/c1/") && f.ends_with(".disk0"))
            .collect()
    };
    let old = file_disks(1);
    assert_eq!(old.len(), 1, "{old:?}");
    let marker = b"ganeti-rs conversion marker";
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&old[0])
            .unwrap();
        f.write_all(marker).unwrap();
        f.seek(SeekFrom::Start(20 << 20)).unwrap();
        f.write_all(marker).unwrap();
    }

    let out = vc.ok(
        "gnt-instance",
        &["modify", "-t", "drbd", "-n", "node2", "c1"],
    );
    assert!(out.contains("disk_template -> drbd"), "{out}");
    assert_eq!(file_disks(1), Vec::<String>::new(), "the old file is gone");
    for k in [1, 2] {
        let data = data_files(&vc, k, "c1");
        assert_eq!(data.len(), 1, "node{k}: {data:?}");
        assert_eq!(read_at(&data[0], 0, marker.len()), marker, "node{k}");
        assert_eq!(read_at(&data[0], 20 << 20, marker.len()), marker, "node{k}");
    }
    assert_eq!(
        vc.list("gnt-instance", "disk_template,snodes", &["c1"]),
        vec![vec!["drbd", "node2"]]
    );
    vc.ok("gnt-instance", &["startup", "c1"]);
    vc.ok("gnt-instance", &["shutdown", "c1"]);

    let out = vc.ok("gnt-instance", &["modify", "-t", "file", "c1"]);
    assert!(out.contains("disk_template -> file"), "{out}");
    for k in [1, 2] {
        assert_eq!(data_files(&vc, k, "c1"), Vec::<String>::new(), "node{k}");
    }
    let new = file_disks(1);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(read_at(&new[0], 20 << 20, marker.len()), marker);
    assert_eq!(storage_daemons(&vc), Vec::<String>::new());
    vc.ok("gnt-instance", &["startup", "c1"]);
    vc.ok("gnt-instance", &["remove", "-f", "c1"]);
    assert_eq!(file_disks(1), Vec::<String>::new());
}
