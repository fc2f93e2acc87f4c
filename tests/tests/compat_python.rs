//! Compatibility with Ganeti 3.0's own Python command-line tools.
//!
//! Debian's `ganeti-3.0` package (unpacked by `scripts/python-ganeti.sh`, not
//! installed) provides the real `gnt-instance`, `gnt-node`, ... of Ganeti
//! 3.0.2. They run here against a ganeti-rs virtual cluster (ganeti-masterd
//! and three ganeti-noded) and must give the same answers as our CLIs, and
//! what they change must be seen by ours.
//!
//! Needs the workspace binaries built first (`cargo build --workspace
//! --bins`), like the other end-to-end tests, and Debian's python3 with the
//! modules ganeti-3.0 depends on, which `scripts/python-ganeti.sh` installs
//! with apt. When that fails the test fails; set
//! `GANETI_SKIP_PYTHON_ORACLE=1` to skip it on purpose.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::json;
use tests::rapi_client::RapiClient;
use tests::{repo_root, VCluster};

/// Seconds a Python command may take before it counts as hung.
const PY_TIMEOUT_SECS: &str = "120";

/// The unpacked Python tools: the directory holding `gnt-instance` and the
/// `ganeti` package, or `None` when skipping was asked for.
fn python_tools() -> Option<PathBuf> {
    if std::env::var("GANETI_SKIP_PYTHON_ORACLE").as_deref() == Ok("1") {
        eprintln!("GANETI_SKIP_PYTHON_ORACLE=1: not comparing with Ganeti's Python tools");
        return None;
    }
    let script = repo_root().join("scripts/python-ganeti.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): Debian's Ganeti 3.0 Python tools or their python3 modules \
         could not be installed; set GANETI_SKIP_PYTHON_ORACLE=1 to skip this test.\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        dir.join("gnt-instance").is_file() && dir.join("ganeti").is_dir(),
        "{} printed {}, which holds no gnt-instance and ganeti package",
        script.display(),
        dir.display()
    );
    Some(dir)
}

/// Output of one command: what the comparisons look at.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Answer {
    fn from(o: Output) -> Self {
        Answer {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

struct Compat {
    vc: VCluster,
    py: PathBuf,
}

impl Compat {
    /// Runs Ganeti's Python `cmd` on the master node (Debian's python3).
    fn python(&self, cmd: &str, args: &[&str]) -> Answer {
        let out = Command::new("timeout")
            .arg(PY_TIMEOUT_SECS)
            .arg("/usr/bin/python3")
            .arg(self.py.join(cmd))
            .args(args)
            .env("PYTHONPATH", &self.py)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // Deterministic set order (Ganeti prints some sets as they iterate).
            .env("PYTHONHASHSEED", "0")
            .env("GANETI_ROOTDIR", self.vc.root(1))
            .env("GANETI_HOSTNAME", "node1")
            .output()
            .unwrap_or_else(|e| panic!("running Python {cmd}: {e}"));
        let a = Answer::from(out);
        assert_ne!(
            a.code,
            Some(124),
            "Python {cmd} {args:?} did not finish in {PY_TIMEOUT_SECS} s"
        );
        assert!(
            !a.stderr.contains("Traceback (most recent call last)"),
            "Python {cmd} {args:?} crashed:\n{}",
            a.stderr
        );
        a
    }

    /// Runs our `cmd` on the master node.
    fn ours(&self, cmd: &str, args: &[&str]) -> Answer {
        self.vc.gnt(cmd, args).into()
    }

    /// Asserts both give the same exit code, standard output and standard
    /// error; returns the answer.
    fn same(&self, cmd: &str, args: &[&str]) -> Answer {
        let ours = self.ours(cmd, args);
        let theirs = self.python(cmd, args);
        assert_eq!(
            ours, theirs,
            "{cmd} {args:?}: ours (left) and Ganeti's Python (right) differ"
        );
        ours
    }

    /// Runs Python `cmd`, which must succeed; returns its standard output.
    fn python_ok(&self, cmd: &str, args: &[&str]) -> String {
        let a = self.python(cmd, args);
        assert_eq!(
            a.code,
            Some(0),
            "Python {cmd} {args:?} failed:\n{}\n{}",
            a.stdout,
            a.stderr
        );
        a.stdout
    }

    /// `name:pnode:status` of every instance, by our CLI.
    fn our_status(&self) -> String {
        self.vc.ok(
            "gnt-instance",
            &[
                "list",
                "-o",
                "name,pnode,status",
                "--no-headers",
                "--separator=:",
            ],
        )
    }
}

#[test]
fn python_tools_agree_with_ours() {
    let Some(py) = python_tools() else {
        return;
    };
    let c = Compat {
        vc: VCluster::up("0.90", 3),
        py,
    };

    // An instance created by our CLI, one by Ganeti's.
    c.vc.add_instance("node2", "inst1", &["-t", "file", "--disk", "0:size=100M"]);
    c.python_ok(
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
            "--no-start",
            "inst2",
        ],
    );
    assert_eq!(
        c.our_status(),
        "inst1:node2:running\ninst2:node3:ADMIN_down\n"
    );

    // Lists: default fields, chosen fields, separators.
    let list = c.same("gnt-instance", &["list"]);
    assert!(
        list.stdout.starts_with("Instance ") && list.stdout.contains("inst2"),
        "{}",
        list.stdout
    );
    c.same(
        "gnt-instance",
        &[
            "list",
            "-o",
            "name,pnode,status",
            "--no-headers",
            "--separator=:",
        ],
    );
    c.same(
        "gnt-instance",
        &[
            "list",
            "-o",
            "name,pnode,snodes,admin_state,oper_state,be/memory,disk.sizes,nic.macs,disk_template",
        ],
    );
    // DFree is the host's live free disk space: it may move between the two
    // runs, so it is left out; every other default column is compared.
    c.same(
        "gnt-node",
        &[
            "list",
            "-o",
            "name,dtotal,mtotal,mnode,mfree,pinst_cnt,sinst_cnt",
        ],
    );
    c.same(
        "gnt-node",
        &["list", "-o", "name,pip,sip,role,group,offline,drained"],
    );
    let jobs = c.same("gnt-job", &["list"]);
    assert!(
        jobs.stdout.contains("INSTANCE_CREATE(inst2)"),
        "{}",
        jobs.stdout
    );
    c.same("gnt-group", &["list"]);
    c.same("gnt-os", &["list"]);
    c.same("gnt-os", &["diagnose"]);

    // No networks and no job filters on this cluster: empty lists.
    assert_eq!(
        c.python_ok("gnt-network", &["list"]),
        "Network Subnet Gateway MacPrefix GroupList Tags\n"
    );
    assert_eq!(c.python_ok("gnt-filter", &["list", "--no-headers"]), "");

    // Errors: same message, same exit code.
    let missing = c.same("gnt-instance", &["info", "nosuch"]);
    assert_ne!(missing.code, Some(0));

    // Python shuts down and starts the instance our CLI created.
    c.python_ok("gnt-instance", &["shutdown", "inst1"]);
    assert_eq!(
        c.our_status(),
        "inst1:node2:ADMIN_down\ninst2:node3:ADMIN_down\n"
    );
    c.python_ok("gnt-instance", &["startup", "inst1"]);
    assert_eq!(
        c.our_status(),
        "inst1:node2:running\ninst2:node3:ADMIN_down\n"
    );

    // Detailed information, after the state changes above.
    let info = c.same("gnt-instance", &["info", "inst1"]);
    for line in [
        "- Instance name: inst1",
        "State: configured to be up, actual state is up",
        "- primary: node2",
        "Disk template: file",
        "- disk/0: file, size 100M",
    ] {
        assert!(
            info.stdout.contains(line),
            "no {line:?} in:\n{}",
            info.stdout
        );
    }
    c.same("gnt-instance", &["info", "--static", "inst2"]);
    c.same("gnt-node", &["info", "node2"]);

    // Python modifies (it sends Ganeti 3.0.2's full OP_INSTANCE_SET_PARAMS).
    c.python_ok("gnt-instance", &["modify", "-B", "memory=256", "inst2"]);
    assert_eq!(
        c.vc.list("gnt-instance", "name,be/memory", &["inst2"]),
        vec![vec!["inst2", "256"]]
    );

    // gnt-cluster info (Python prints the ipolicy's min/max in its set
    // iteration order, fixed by PYTHONHASHSEED=0 to min first, as ours).
    let info = c.same("gnt-cluster", &["info"]);
    for line in [
        "Cluster name: vcluster",
        "Master node: node1",
        "  mac prefix: aa:00:00",
    ] {
        assert!(
            info.stdout.contains(line),
            "no {line:?} in:\n{}",
            info.stdout
        );
    }
}

/// The job id a `--submit` command printed (`JobID: N`).
fn submitted(out: &str) -> u64 {
    out.trim()
        .strip_prefix("JobID: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no job id in {out:?}"))
}

/// Job filter rules: added by Ganeti's Python `gnt-filter`, shown alike by
/// both, acting on jobs (PAUSE holds a job until the rule is deleted,
/// REJECT cancels one), changed and deleted by ours.
#[test]
fn gnt_filter_rules_hold_and_refuse_jobs_and_both_tools_agree() {
    let Some(py) = python_tools() else {
        return;
    };
    let c = Compat {
        vc: VCluster::up("0.59", 2),
        py,
    };
    let held = r#"[["opcode", ["=", "group_name", "held"]]]"#;
    let uuid = c
        .python_ok(
            "gnt-filter",
            &[
                "add",
                "--priority=5",
                "--predicates",
                held,
                "--action=PAUSE",
                "--reason=maintenance",
            ],
        )
        .trim()
        .to_string();
    assert_eq!(uuid.len(), 36, "{uuid}");
    let list = c.same(
        "gnt-filter",
        &["list", "-o", "uuid,priority,predicates,action"],
    );
    for part in [
        uuid.as_str(),
        "[['opcode', ['==', 'group_name', 'held']]]",
        "PAUSE",
    ] {
        assert!(list.stdout.contains(part), "no {part:?} in {}", list.stdout);
    }
    let info = c.same("gnt-filter", &["info", &uuid]);
    assert!(
        info.stdout
            .contains("  Reason trail: [['gnt:user', 'maintenance', "),
        "{}",
        info.stdout
    );
    c.same("gnt-filter", &["list-fields"]);
    let missing = c.same(
        "gnt-filter",
        &["list", "00000000-0000-4000-8000-000000000000"],
    );
    assert_ne!(missing.code, Some(0));

    // The rule holds the job it matches; a job it does not match runs.
    let submit = |name: &str| {
        let out = c.vc.gnt("gnt-group", &["add", "--submit", name]);
        assert!(out.status.success(), "{out:?}");
        // Ganeti prints the job id on standard error.
        submitted(&String::from_utf8_lossy(&out.stderr))
    };
    let job = submit("held");
    c.vc.ok("gnt-group", &["add", "probe"]);
    let status = |id: u64| c.vc.list("gnt-job", "status", &[&id.to_string()])[0][0].clone();
    assert_eq!(status(job), "queued");
    c.vc.ok("gnt-filter", &["delete", &uuid]);
    assert_eq!(c.vc.wait_job(job), "success");
    let err = c.vc.fails("gnt-filter", &["delete", &uuid]);
    assert!(err.contains("does not exist"), "{err}");

    // REJECT, with the UUID given: the matching job is canceled.
    let same = c.vc.ok(
        "gnt-filter",
        &[
            "replace",
            "--predicates",
            r#"[["opcode", ["=", "group_name", "refused"]]]"#,
            "--action=REJECT",
            &uuid,
        ],
    );
    assert_eq!(same.trim(), uuid);
    let job = submit("refused");
    assert_eq!(c.vc.wait_job(job), "canceled");
    assert_eq!(
        c.vc.list("gnt-group", "name", &[]).len(),
        3,
        "default, held, probe"
    );
    let bad = c.same("gnt-filter", &["add", "--action=DROP"]);
    assert!(bad.stderr.contains("malformed FilterAction"), "{bad:?}");
}

/// `gnt-debug` (the test opcodes): ours and Ganeti's Python tool against
/// our master. Ganeti's own job queue test (`test-jobqueue`, which follows
/// `OP_TEST_JQUEUE` jobs through a socket handshake, checks priorities and
/// dependencies) passes; delays on nodes, iallocator requests and answers,
/// submitted opcode files and secret OS parameters work, and the secret
/// never shows.
#[test]
fn gnt_debug_runs_the_test_opcodes_and_ganetis_job_queue_test_passes() {
    let Some(py) = python_tools() else {
        return;
    };
    let c = Compat {
        vc: VCluster::up("0.26", 2),
        py,
    };
    let jq = c.python_ok("gnt-debug", &["test-jobqueue"]);
    assert!(jq.contains("Job queue test successful"), "{jq}");

    c.vc.ok("gnt-debug", &["delay", "-n", "node2", "0.2"]);
    let err = c.vc.fails("gnt-debug", &["delay", "-n", "nosuch", "1"]);
    assert!(err.contains("Node 'nosuch' not known"), "{err}");

    let alloc = [
        "-m", "allocate", "-t", "file", "--disks", "100", "-o", "tiny", "newinst",
    ];
    let input = c.vc.ok(
        "gnt-debug",
        &[&["iallocator", "--dir", "in"][..], &alloc[..]].concat(),
    );
    let input: serde_json::Value = serde_json::from_str(input.trim()).expect("the request is JSON");
    assert_eq!(input["request"]["type"], "allocate");
    assert_eq!(input["request"]["disks"][0]["size"], 100);
    assert!(input["nodes"]["node2"].is_object(), "{input}");
    let answer = c.vc.ok(
        "gnt-debug",
        &[
            &["iallocator", "--dir", "out", "-I", "hail"][..],
            &alloc[..],
        ]
        .concat(),
    );
    assert!(answer.contains(r#""success":true"#), "{answer}");
    let py_answer = c.python_ok(
        "gnt-debug",
        &[
            &["iallocator", "--dir", "out", "-I", "hail"][..],
            &alloc[..],
        ]
        .concat(),
    );
    assert_eq!(py_answer, answer);

    let file = c.vc.root(1).join("ops.json");
    std::fs::write(&file, r#"[{"OP_ID": "OP_TEST_DELAY", "duration": 0}]"#).unwrap();
    let path = file.to_str().unwrap();
    c.vc.ok(
        "gnt-debug",
        &["submit-job", "--job-repeat", "2", "--op-repeat", "3", path],
    );
    c.python_ok("gnt-debug", &["submit-job", path]);
    let rows = c.vc.list("gnt-job", "summary,status", &[]);
    assert!(
        rows.iter()
            .any(|r| r[0] == "TEST_DELAY,TEST_DELAY,TEST_DELAY" && r[1] == "success"),
        "{rows:?}"
    );

    let out = c.vc.gnt(
        "gnt-debug",
        &["test-osparams", "--os-parameters-secret", "pw=very-s3cret"],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Secret OS parameters received: pw"), "{text}");
    let rows = c.vc.list("gnt-job", "id,summary", &[]);
    let id = &rows
        .iter()
        .find(|r| r[1] == "TEST_OS_PARAMS")
        .expect("the test-osparams job")[0];
    let jobs = c.vc.ok("gnt-job", &["info", id]);
    assert!(
        !jobs.contains("very-s3cret"),
        "the secret shows in gnt-job info"
    );
    assert!(jobs.contains("pw: <redacted>"), "{jobs}");
}

#[test]
fn python_gnt_network_and_rapi_client_agree_with_ours() {
    let Some(py) = python_tools() else {
        return;
    };
    let c = Compat {
        vc: VCluster::up("0.101", 2),
        py,
    };

    // One network added by Ganeti's tool, one by ours; both connected.
    c.python_ok(
        "gnt-network",
        &[
            "add",
            "--network=127.0.101.0/28",
            "--gateway=127.0.101.14",
            "--add-reserved-ips=127.0.101.10",
            "--tags=t1,t2",
            "pnet",
        ],
    );
    c.vc.ok(
        "gnt-network",
        &[
            "add",
            "--network=192.0.2.0/29",
            "--mac-prefix=aa:00:02",
            "onet",
        ],
    );
    c.python_ok("gnt-network", &["connect", "-N", "link=brp", "pnet"]);
    c.vc.ok(
        "gnt-network",
        &["connect", "-N", "mode=routed,link=rt0", "onet", "default"],
    );
    // An instance with a NIC from each pool, made by Ganeti's tool.
    c.python_ok(
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
            "--no-start",
            "--net",
            "0:network=pnet,ip=pool",
            "--net",
            "1:network=onet,ip=192.0.2.3",
            "inst1",
        ],
    );
    assert_eq!(
        c.vc.list(
            "gnt-instance",
            "nic.ips,nic.networks.names,nic.modes",
            &["inst1"]
        ),
        vec![vec![
            "127.0.101.3,192.0.2.3",
            "['pnet', 'onet']",
            "bridged,routed"
        ]]
    );

    // Lists, details, fields and tags read the same.
    c.same("gnt-network", &["list"]);
    c.same(
        "gnt-network",
        &[
            "list",
            "-o",
            "name,network,gateway,network6,gateway6,mac_prefix,free_count,reserved_count,\
             map,group_list,group_cnt,inst_list,inst_cnt,external_reservations,tags,serial_no",
            "--separator=|",
        ],
    );
    let info = c.same("gnt-network", &["info"]);
    for line in [
        "Network name: onet",
        "Network name: pnet",
        "  Free: 9 (56.25%)",
        "  Free: 5 (62.50%)",
        "    inst1: 0:127.0.101.3",
        "    inst1: 1:192.0.2.3",
        "    default (mode:routed link:rt0 vlan:)",
    ] {
        assert!(
            info.stdout.contains(line),
            "no {line:?} in:\n{}",
            info.stdout
        );
    }
    c.same("gnt-network", &["list-fields"]);
    c.same("gnt-network", &["list-tags", "pnet"]);
    c.same("gnt-instance", &["info", "--static", "inst1"]);

    // Errors: same message, same exit code.
    for args in [
        &["remove", "pnet"][..],
        &["disconnect", "pnet"],
        &["add", "nonet"],
        &["add", "--network=127.0.101.0/28", "pnet"],
        &["modify", "pnet"],
        &[
            "modify",
            "--gateway=127.0.101.1",
            "--add-reserved-ips=127.0.101.9",
            "pnet",
        ],
    ] {
        let a = c.same("gnt-network", args);
        assert_ne!(a.code, Some(0), "{args:?}");
    }

    // Ganeti's tool changes what ours then reads.
    c.python_ok(
        "gnt-network",
        &[
            "modify",
            "--add-reserved-ips=127.0.101.11",
            "--mac-prefix=aa:00:03",
            "pnet",
        ],
    );
    c.python_ok("gnt-network", &["add-tags", "pnet", "t3"]);
    assert_eq!(
        c.vc.list("gnt-network", "mac_prefix,tags,free_count", &["pnet"]),
        vec![vec!["aa:00:03", "t1,t2,t3", "8"]]
    );

    // Ganeti's RAPI client: read, create, connect, disconnect, remove.
    std::fs::write(c.vc.paths().rapi_users(), "admin adminpw write\n").unwrap();
    let mut r = RapiClient::start(&c.py, &c.vc.master_ip(), 5080);
    r.as_user("admin", "adminpw");
    let nets = r.ok("GetNetworks", json!([]), json!({}));
    assert_eq!(nets, json!(["onet", "pnet"]));
    let pnet = r.ok("GetNetwork", json!(["pnet"]), json!({}));
    assert_eq!(pnet["network"], "127.0.101.0/28");
    assert_eq!(pnet["gateway"], "127.0.101.14");
    assert_eq!(pnet["inst_list"], json!(["inst1"]));
    assert_eq!(
        pnet["group_list"],
        json!([["default", "bridged", "brp", ""]])
    );
    r.job_ok(
        "CreateNetwork",
        json!(["rnet", "10.20.0.0/24"]),
        json!({"gateway": "10.20.0.1", "tags": "r"}),
    );
    r.job_ok(
        "ConnectNetwork",
        json!(["rnet", "default", "bridged", "br9"]),
        json!({}),
    );
    r.job_ok(
        "ModifyNetwork",
        json!(["rnet"]),
        json!({"add_reserved_ips": ["10.20.0.9"]}),
    );
    assert_eq!(
        c.vc.list(
            "gnt-network",
            "gateway,group_list,tags,free_count",
            &["rnet"]
        ),
        vec![vec!["10.20.0.1", "default (bridged, br9, )", "r", "252"]]
    );
    r.job_ok("DisconnectNetwork", json!(["rnet", "default"]), json!({}));
    r.job_ok("DeleteNetwork", json!(["rnet"]), json!({}));
    assert_eq!(
        c.vc.list("gnt-network", "name", &[]),
        vec![vec!["onet"], vec!["pnet"]]
    );

    // Removing the instance frees its addresses; then the networks go.
    c.python_ok("gnt-instance", &["remove", "-f", "inst1"]);
    c.python_ok("gnt-network", &["disconnect", "pnet"]);
    c.python_ok("gnt-network", &["remove", "pnet"]);
    c.vc.ok("gnt-network", &["disconnect", "onet"]);
    c.vc.ok("gnt-network", &["remove", "onet"]);
    c.same("gnt-network", &["list"]);
}
