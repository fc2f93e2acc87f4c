//! End to end on a 3-node virtual cluster of real processes: nodes, groups,
//! instances, queries, jobs, the drain flag, offline nodes and verify.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tests::VCluster;

#[test]
fn nodes_and_groups() {
    let vc = VCluster::up("0.11", 3);
    let nodes = vc.list("gnt-node", "name,pip,role,group", &[]);
    assert_eq!(
        nodes,
        vec![
            vec!["node1", "127.0.11.1", "M", "default"],
            vec!["node2", "127.0.11.2", "C", "default"],
            vec!["node3", "127.0.11.3", "C", "default"],
        ]
    );
    // Ganeti's defaults (sorted by name, as the master sends them), every
    // template's disk parameters.
    let out = vc.ok("gnt-group", &["list"]);
    assert!(
        out.contains(
            "cpu_speed=1, exclusive_storage=False, oob_program=, ovs=False, \
             ovs_link=, ovs_name=switch1, spindle_count=1, ssh_port=22"
        ),
        "{out}"
    );
    // (Ganeti ends a heading's line with a blank; not compared here.)
    let trimmed =
        |s: String| -> String { s.lines().map(|l| l.trim_end().to_string() + "\n").collect() };
    let info = trimmed(vc.ok("gnt-group", &["info", "default"]));
    for line in [
        "  Disk parameters:\n    blockdev: default ({})\n    diskless: default ({})\n    drbd:\n      c-delay-target: default (1)\n",
        "      resync-rate: default (61440)\n    ext:\n      access: default (kernelspace)\n    file: default ({})\n",
        "      host: default (127.0.0.1)\n",
        "    plain:\n      stripes: default (1)\n    rbd:\n      access: default (kernelspace)\n      pool: default (rbd)\n    sharedfile: default ({})\n",
    ] {
        assert!(info.contains(line), "{line:?} not in:\n{info}");
    }
    let info = trimmed(vc.ok("gnt-cluster", &["info"]));
    assert!(
        info.contains(
            "Default disk parameters:\n  blockdev:\n  diskless:\n  drbd:\n    c-delay-target: 1\n"
        ),
        "{info}"
    );
    vc.ok("gnt-group", &["add", "rack2"]);
    let err = vc.fails("gnt-group", &["add", "rack2"]);
    assert!(err.contains("already exists"), "{err}");
    vc.ok("gnt-group", &["assign-nodes", "rack2", "node3"]);
    vc.ok("gnt-group", &["rename", "rack2", "rack3"]);
    let groups = vc.list("gnt-group", "name,node_cnt,node_list", &[]);
    assert_eq!(
        groups,
        vec![
            vec!["default", "2", "node1,node2"],
            vec!["rack3", "1", "node3"]
        ]
    );
    let err = vc.fails("gnt-group", &["remove", "rack3"]);
    assert!(err.contains("not empty"), "{err}");
    vc.ok("gnt-group", &["assign-nodes", "default", "node3"]);
    vc.ok("gnt-group", &["remove", "rack3"]);
    assert_eq!(vc.list("gnt-group", "name", &[]), vec![vec!["default"]]);

    // Removing a node: it leaves the config and forgets the cluster.
    let err = vc.fails("gnt-node", &["remove", "node1"]);
    assert!(err.contains("master node"), "{err}");
    vc.ok("gnt-node", &["remove", "node3"]);
    assert_eq!(
        vc.list("gnt-node", "name", &[]),
        vec![vec!["node1"], vec!["node2"]]
    );
    assert!(!vc.root(3).join("var/lib/ganeti/server.pem").exists());
}

#[test]
fn instance_life_cycle_on_two_nodes() {
    let vc = VCluster::up("0.12", 3);
    vc.add_instance("node2", "inst1", &["-t", "file", "--disk", "0:size=64M"]);
    vc.add_instance("node3", "inst2", &["-t", "diskless"]);
    assert_eq!(
        vc.list("gnt-instance", "name,pnode,status,disk.sizes", &[]),
        vec![
            vec!["inst1", "node2", "running", "64"],
            vec!["inst2", "node3", "running", ""],
        ]
    );
    // The disk is a sparse file of the right size in node2's tree.
    let disk_dir = vc.root(2).join("srv/ganeti/file-storage/inst1");
    let files: Vec<_> = std::fs::read_dir(&disk_dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].metadata().unwrap().len(), 64 * 1024 * 1024);

    vc.ok("gnt-instance", &["shutdown", "inst1"]);
    assert_eq!(
        vc.list("gnt-instance", "status", &["inst1"]),
        vec![vec!["ADMIN_down"]]
    );
    vc.ok("gnt-instance", &["startup", "inst1"]);
    assert_eq!(
        vc.list("gnt-instance", "status", &["inst1"]),
        vec![vec!["running"]]
    );
    vc.ok("gnt-instance", &["reboot", "inst2"]);
    assert_eq!(
        vc.list("gnt-instance", "status", &["inst2"]),
        vec![vec!["running"]]
    );

    // Rename needs the instance down.
    let err = vc.fails(
        "gnt-instance",
        &[
            "rename",
            "-f",
            "--no-name-check",
            "--no-ip-check",
            "inst1",
            "web1",
        ],
    );
    assert!(err.contains("cannot rename"), "{err}");
    vc.ok("gnt-instance", &["shutdown", "inst1"]);
    vc.ok(
        "gnt-instance",
        &[
            "rename",
            "-f",
            "--no-name-check",
            "--no-ip-check",
            "inst1",
            "web1",
        ],
    );
    assert_eq!(
        vc.list("gnt-instance", "name,status", &[]),
        vec![vec!["inst2", "running"], vec!["web1", "ADMIN_down"]]
    );
    vc.ok("gnt-instance", &["remove", "-f", "web1"]);
    vc.ok("gnt-instance", &["remove", "-f", "inst2"]);
    assert!(vc.list("gnt-instance", "name", &[]).is_empty());
    assert_eq!(
        std::fs::read_dir(&disk_dir).map(|d| d.count()).unwrap_or(0),
        0
    );
    // Nothing runs on the nodes any more.
    for k in 2..=3 {
        let dir = vc.root(k).join("var/run/ganeti/fake-hypervisor");
        let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "instances left on node{k}");
    }
}

#[test]
fn list_with_fields_and_filters() {
    let vc = VCluster::up("0.13", 3);
    for (name, node) in [("web1", "node2"), ("web2", "node3"), ("db1", "node2")] {
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
                "-B",
                "maxmem=256",
                name,
            ],
        );
    }
    let rows = vc.list(
        "gnt-instance",
        "name,pnode,be/maxmem",
        &["-F", "pnode == \"node2\""],
    );
    assert_eq!(
        rows,
        vec![vec!["db1", "node2", "256"], vec!["web1", "node2", "256"]]
    );
    let rows = vc.list("gnt-instance", "name", &["-F", "name =~ /^web/"]);
    assert_eq!(rows, vec![vec!["web1"], vec!["web2"]]);
    let rows = vc.list("gnt-instance", "name,oper_ram", &["web2", "db1"]);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r[1] == "256"), "{rows:?}");
    let err = vc.fails("gnt-instance", &["list", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    // Header and unit formatting of the default list.
    let out = vc.ok("gnt-instance", &["list", "-o", "name,be/maxmem"]);
    assert!(out.starts_with("Instance ConfigMaxMem\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("web1 ") && l.ends_with(" 256M")),
        "{out}"
    );
    let nodes = vc.list("gnt-node", "name,pinst_cnt,pinst_list", &[]);
    assert_eq!(nodes[1], vec!["node2", "2", "db1,web1"]);
}

#[test]
fn jobs_list_info_watch_cancel_and_depend() {
    let vc = VCluster::up("0.14", 3);
    let mut c = vc.luxi();
    // A long job, one queued behind it through a dependency, one that
    // needs it to succeed.
    let long = c
        .submit_job(vec![
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 2.0, "repeat": 1}),
        ])
        .unwrap();
    let blocked = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0,
                                 "depends": [[long, []]]})])
        .unwrap();
    let after = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0,
                                 "depends": [[long, ["success"]]]})])
        .unwrap();
    let cancel = vc.ok("gnt-job", &["cancel", &blocked.to_string()]);
    assert!(
        cancel.contains("canceled") || cancel.contains("Canceled"),
        "{cancel}"
    );
    assert_eq!(vc.wait_job(blocked), "canceled");
    let watch = vc.ok("gnt-job", &["watch", &long.to_string()]);
    // Ganeti's words: iterations count from 0 to repeat - 1.
    assert!(
        watch.contains(" - INFO: Test delay iteration 0/0"),
        "{watch}"
    );
    assert_eq!(vc.wait_job(long), "success");
    assert_eq!(vc.wait_job(after), "success");
    // A job that depends on a failed one fails too, naming it.
    let bad = c
        .submit_job(vec![
            json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": "nosuch"}),
        ])
        .unwrap();
    let dep = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0,
                                 "depends": [[bad, ["success"]]]})])
        .unwrap();
    assert_eq!(vc.wait_job(bad), "error");
    assert_eq!(vc.wait_job(dep), "error");
    let jobs = vc.list("gnt-job", "id,status", &[]);
    assert!(
        jobs.contains(&vec![blocked.to_string(), "canceled".into()]),
        "{jobs:?}"
    );
    assert!(
        jobs.contains(&vec![after.to_string(), "success".into()]),
        "{jobs:?}"
    );
    let info = vc.ok("gnt-job", &["info", &bad.to_string()]);
    assert!(info.contains("OP_INSTANCE_STARTUP"), "{info}");
    assert!(info.contains("Instance 'nosuch' not known"), "{info}");
}

#[test]
fn drain_flag_refuses_new_jobs() {
    let vc = VCluster::up("0.15", 2);
    vc.ok("gnt-cluster", &["queue", "drain"]);
    let info = vc.ok("gnt-cluster", &["queue", "info"]);
    assert!(info.contains("The drain flag is set"), "{info}");
    let err = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "tiny",
            "-n",
            "node2",
            "--no-name-check",
            "--no-ip-check",
            "i1",
        ],
    );
    // Ganeti 3.0's luxid refuses with a GenericError, one job (SubmitJob)
    // or several (SubmitManyJobs) alike.
    assert!(
        err.contains("Unhandled Ganeti error: Queue drained"),
        "{err}"
    );
    vc.ok("gnt-cluster", &["queue", "undrain"]);
    vc.add_instance("node2", "i1", &["-t", "diskless"]);
    vc.ok("gnt-cluster", &["queue", "drain"]);
    let err = vc.fails("gnt-instance", &["shutdown", "i1"]);
    assert_eq!(err.trim(), "Unhandled Ganeti error: Queue drained");
    vc.ok("gnt-cluster", &["queue", "undrain"]);
}

#[test]
fn offline_node_shows_offline_and_is_refused() {
    let vc = VCluster::up("0.16", 3);
    vc.ok("gnt-node", &["modify", "--offline", "yes", "node3"]);
    let rows = vc.list("gnt-node", "name,offline,mfree,role", &[]);
    assert_eq!(rows[2], vec!["node3", "Y", "*", "O"]);
    assert_ne!(rows[1][2], "*");
    let err = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "tiny",
            "-n",
            "node3",
            "--no-name-check",
            "--no-ip-check",
            "i1",
        ],
    );
    assert!(err.contains("offline node node3"), "{err}");
    vc.ok(
        "gnt-node",
        &["modify", "--force", "--offline", "no", "node3"],
    );
    vc.add_instance("node3", "i1", &["-t", "diskless"]);
}

#[test]
fn verify_is_clean_then_reports_an_instance_stopped_behind_its_back() {
    let vc = VCluster::up("0.17", 3);
    vc.add_instance("node2", "inst1", &["-t", "diskless"]);
    let out = vc.ok("gnt-cluster", &["verify"]);
    assert!(!out.contains("ERROR"), "{out}");
    // Stop the instance behind masterd's back: the fake hypervisor's state
    // file on node2 goes away.
    std::fs::remove_file(vc.root(2).join("var/run/ganeti/fake-hypervisor/inst1")).unwrap();
    let out = vc.gnt("gnt-cluster", &["verify"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify should fail:\n{text}");
    assert!(
        text.contains("ERROR: instance inst1: instance not running on its primary node node2"),
        "{text}"
    );
    assert_eq!(
        vc.list("gnt-instance", "status", &["inst1"]),
        vec![vec!["ERROR_down"]]
    );
}

#[test]
fn migrate_and_failover_move_a_running_instance() {
    let vc = VCluster::up("0.18", 3);
    vc.add_instance("node2", "mover", &["-t", "diskless"]);
    let out = vc.ok(
        "gnt-instance",
        &["migrate", "-f", "--target-node", "node3", "mover"],
    );
    // Ganeti's steps for disks every node reaches, each line after its
    // ctime(3) date.
    let steps = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.get(25..).unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(
        steps(&out),
        [
            "Migrating instance mover",
            "* checking disk consistency between source and target",
            "* closing instance disks on node node3",
            "* opening instance disks on node node2 in shared mode",
            "* opening instance disks on node node3 in shared mode",
            "* preparing node3 to accept the instance",
            "* migrating instance to node3",
            "* starting memory transfer",
            "* memory transfer complete",
            "* closing instance disks on node node2",
            "* opening instance disks on node node3 in exclusive mode",
            "* done",
        ],
        "{out}"
    );
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["mover"]),
        vec![vec!["node3", "running"]]
    );
    // Only the target runs it now.
    assert!(!vc
        .root(2)
        .join("var/run/ganeti/fake-hypervisor/mover")
        .exists());
    assert!(vc
        .root(3)
        .join("var/run/ganeti/fake-hypervisor/mover")
        .exists());
    let out = vc.ok(
        "gnt-instance",
        &["failover", "-f", "--target-node", "node1", "mover"],
    );
    assert_eq!(
        steps(&out),
        [
            "Failover instance mover",
            "* checking disk consistency between source and target",
            "* shutting down instance on source node",
            "* closing instance disks on node node3",
            "* deactivating the instance's disks on source node",
            "* activating the instance's disks on target node node1",
            "* starting the instance on the target node node1",
        ],
        "{out}"
    );
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["mover"]),
        vec![vec!["node1", "running"]]
    );
    // File disks live on one node: no migration.
    vc.add_instance("node2", "fixed", &["-t", "file", "--disk", "0:size=16M"]);
    let err = vc.fails(
        "gnt-instance",
        &["migrate", "-f", "--target-node", "node3", "fixed"],
    );
    assert!(err.contains("does not allow migrations"), "{err}");
    let out = vc.ok("gnt-cluster", &["verify"]);
    assert!(!out.contains("ERROR"), "{out}");
}

#[test]
fn os_query_and_diagnose_see_the_shipped_os_on_every_node() {
    let vc = VCluster::up("0.19", 3);
    let mut c = vc.luxi();
    let r = c
        .query(
            "os",
            &["name", "valid", "variants"],
            serde_json::Value::Null,
        )
        .unwrap();
    assert_eq!(
        r["data"],
        json!([[[0, "tiny"], [0, true], [0, ["default", "verbose"]]]]),
        "{r}"
    );
    let out = vc.ok("gnt-os", &["list"]);
    assert!(out.lines().any(|l| l.trim() == "tiny+default"), "{out}");
    // An OS missing on one node is not valid.
    std::fs::remove_file(vc.root(3).join("srv/ganeti/os/tiny")).unwrap();
    let r = c
        .query("os", &["name", "valid"], serde_json::Value::Null)
        .unwrap();
    assert_eq!(r["data"], json!([[[0, "tiny"], [0, false]]]), "{r}");
}

#[test]
fn hail_places_instances_when_no_node_is_given() {
    let vc = VCluster::up("0.20", 3);
    // node2 is already busy: hail should prefer the emptier nodes.
    vc.add_instance("node2", "big", &["-t", "diskless", "-B", "maxmem=2048"]);
    let out = vc.ok(
        "gnt-instance",
        // Diskless: the virtual nodes share the host's file system, whose
        // free space hail (rightly) finds short of its reserve on a busy host.
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "tiny",
            "-I",
            "hail",
            "--no-name-check",
            "--no-ip-check",
            "placed",
        ],
    );
    assert!(out.contains("via iallocator hail"), "{out}");
    let rows = vc.list("gnt-instance", "name,pnode,status", &["placed"]);
    assert_eq!(rows[0][2], "running");
    assert_ne!(rows[0][1], "node2", "hail picked the busiest node");
    // A request no node can satisfy fails with hail's reason, and leaves
    // nothing behind.
    let err = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "tiny",
            "-I",
            "hail",
            "-B",
            "maxmem=100000000",
            "--no-name-check",
            "--no-ip-check",
            "huge",
        ],
    );
    assert!(err.contains("iallocator"), "{err}");
    assert_eq!(vc.list("gnt-instance", "name", &[]).len(), 2);
}

/// `gnt-instance move`: a running file instance is shut down, its disk is
/// copied to the target node over NBD with TLS (what was written on the
/// source is there), the source keeps no file, and the instance runs on
/// the target.
#[test]
fn a_file_instance_moves_to_another_node_with_its_data() {
    let vc = VCluster::up("0.21", 2);
    vc.add_instance("node1", "mv1", &["-t", "file", "--disk", "0:size=16M"]);
    let disk_files = |k: usize| -> Vec<String> {
        let dir = vc.root(k).join("srv/ganeti/file-storage/mv1");
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let files = disk_files(1);
    assert_eq!(files.len(), 1, "{files:?}");
    let marker = b"moved with its data";
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&files[0])
            .unwrap();
        f.seek(SeekFrom::Start(9 << 20)).unwrap();
        f.write_all(marker).unwrap();
        f.sync_all().unwrap();
    }
    let err = vc.fails("gnt-instance", &["move", "-f", "-n", "node1", "mv1"]);
    assert!(err.contains("already on the node node1"), "{err}");

    vc.ok("gnt-instance", &["move", "-f", "-n", "node2", "mv1"]);
    assert_eq!(disk_files(1), Vec::<String>::new(), "node1 keeps nothing");
    let moved = disk_files(2);
    assert_eq!(moved.len(), 1, "{moved:?}");
    let data = std::fs::read(&moved[0]).unwrap();
    assert_eq!(data.len(), 16 << 20);
    assert_eq!(&data[9 << 20..(9 << 20) + marker.len()], marker);
    assert_eq!(
        vc.list("gnt-instance", "pnode,status", &["mv1"]),
        vec![vec!["node2", "running"]]
    );
    // Nothing of the copy is left: no export daemon, no runtime file.
    let run = vc.root(1).join("var/run/ganeti/drbd");
    let left: Vec<String> = std::fs::read_dir(&run)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".out"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(left, Vec::<String>::new());
}

/// `gnt-cluster redist-conf` (`OP_CLUSTER_REDIST_CONF`): a node that lost
/// an ssconf file and the RAPI users file gets them back from the master.
#[test]
fn redist_conf_sends_the_nodes_their_files_again() {
    let vc = VCluster::up("0.22", 2);
    let users = vc.root(1).join("var/lib/ganeti/rapi/users");
    std::fs::create_dir_all(users.parent().unwrap()).unwrap();
    std::fs::write(&users, "jack abc123 write\n").unwrap();
    let ssconf = vc.root(2).join("var/lib/ganeti/ssconf_cluster_name");
    // The master sends a new node its ssconf files in the background:
    // wait for them before taking one away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ssconf.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never came",
            ssconf.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_file(&ssconf).unwrap();
    vc.ok("gnt-cluster", &["redist-conf"]);
    assert!(ssconf.exists(), "the ssconf file is back");
    let copied = vc.root(2).join("var/lib/ganeti/rapi/users");
    assert_eq!(
        std::fs::read_to_string(copied).unwrap(),
        "jack abc123 write\n"
    );
}

/// `gnt-instance batch-create -I hail` (`OP_INSTANCE_MULTI_ALLOC`): hail
/// places the instances of the file in one multi-allocate request, and a
/// job creates each.
#[test]
fn batch_create_places_every_instance_with_one_multi_allocation() {
    let vc = VCluster::up("0.23", 3);
    let file = vc.root(1).join("batch.json");
    let def = |name: &str| {
        json!({"instance_name": name, "mode": "create", "disk_template": "diskless", "os_type": "tiny",
               "name_check": false, "ip_check": false, "nics": [{}],
               "beparams": {"maxmem": 128, "minmem": 128}})
    };
    std::fs::write(&file, json!([def("b1"), def("b2")]).to_string()).unwrap();
    let out = vc.ok(
        "gnt-instance",
        &["batch-create", "-I", "hail", file.to_str().unwrap()],
    );
    assert!(out.contains("All instances created successfully."), "{out}");
    let rows = vc.list("gnt-instance", "name,status", &["b1", "b2"]);
    assert_eq!(rows, vec![vec!["b1", "running"], vec!["b2", "running"]]);
    // Nodes on some entries only: refused before anything is made.
    let mut mixed = def("b3");
    mixed["pnode"] = json!("node1");
    std::fs::write(&file, json!([mixed, def("b4")]).to_string()).unwrap();
    let err = vc.fails(
        "gnt-instance",
        &["batch-create", "-I", "hail", file.to_str().unwrap()],
    );
    assert!(
        err.contains("providing pnode/snode while others do not"),
        "{err}"
    );
    assert_eq!(vc.list("gnt-instance", "name", &[]).len(), 2);
}

/// `gnt-cluster modify --ipolicy-bounds-specs/--ipolicy-std-specs`: the
/// new bounds apply to the next instance, bad specs are refused.
#[test]
fn the_instance_policy_bounds_change_with_gnt_cluster_modify() {
    let vc = VCluster::up("0.24", 2);
    let err = vc.fails(
        "gnt-cluster",
        &[
            "modify",
            "--ipolicy-bounds-specs",
            "min:cpu-count=2,disk-count=1,disk-size=1,memory-size=64,nic-count=0,spindle-use=1/\
             max:cpu-count=1,disk-count=16,disk-size=1T,memory-size=32g,nic-count=8,spindle-use=12",
        ],
    );
    assert!(
        err.contains("Invalid specification of min/max values for cpu-count: 2/1"),
        "{err}"
    );
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--ipolicy-bounds-specs",
            "min:cpu-count=1,disk-count=1,disk-size=1,memory-size=512,nic-count=0,spindle-use=1/\
             max:cpu-count=8,disk-count=16,disk-size=1T,memory-size=32g,nic-count=8,spindle-use=12",
            "--ipolicy-std-specs",
            "memory-size=1g",
        ],
    );
    let err = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "tiny",
            "-n",
            "node1",
            "-B",
            "maxmem=128",
            "--no-name-check",
            "--no-ip-check",
            "small",
        ],
    );
    assert!(err.contains("memory-size"), "{err}");
}
