//! The gnt-* binaries against a fake master: the LUXI requests they send
//! and the output they print.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_luxi;

use fake_luxi::{fdef, run_with_root, stderr, stdout, FakeMaster};
use luxi::{ErrorCode, GanetiError};
use serde_json::{json, Value};

fn instance_list_reply() -> Value {
    json!({"fields": [fdef("name", "Instance", "text"), fdef("hypervisor", "Hypervisor", "text"),
        fdef("os", "OS", "text"), fdef("pnode", "Primary_node", "text"),
        fdef("status", "Status", "text"), fdef("oper_ram", "Memory", "unit")],
      "data": [[[0, "inst1.example.com"], [0, "kvm"], [0, "debootstrap"], [0, "node1"], [0, "running"], [0, 1024]],
               [[0, "i2"], [0, "fake"], [0, "noop"], [0, "node2.example.com"], [0, "ADMIN_down"], [2, null]]]})
}

#[test]
fn instance_list_prints_ganeti_table_and_sends_default_fields() {
    let m = FakeMaster::start();
    m.reply("Query", instance_list_reply());
    let o = m.run("gnt-instance", &["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Instance          Hypervisor OS          Primary_node      Status     Memory\n\
         inst1.example.com kvm        debootstrap node1             running      1.0G\n\
         i2                fake       noop        node2.example.com ADMIN_down      ?\n"
    );
    assert_eq!(
        m.requests(),
        vec![(
            "Query".to_string(),
            json!([
                "instance",
                ["name", "hypervisor", "os", "pnode", "status", "oper_ram"],
                null
            ])
        )]
    );
}

#[test]
fn instance_list_filter_and_separator() {
    let m = FakeMaster::start();
    m.reply("Query", instance_list_reply());
    let o = m.run(
        "gnt-instance",
        &[
            "list",
            "--no-headers",
            "--separator=:",
            "-o",
            "+snodes",
            r#"name =~ /^inst/ and pnode == "node1""#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "inst1.example.com:kvm:debootstrap:node1:running:1024\ni2:fake:noop:node2.example.com:ADMIN_down:?\n"
    );
    assert_eq!(
        m.requests()[0].1,
        json!([
            "instance",
            [
                "name",
                "hypervisor",
                "os",
                "pnode",
                "status",
                "oper_ram",
                "snodes"
            ],
            ["&", ["=~", "name", "^inst"], ["==", "pnode", "node1"]]
        ])
    );
}

#[test]
fn unknown_fields_warn_and_exit_14() {
    let m = FakeMaster::start();
    m.reply(
        "Query",
        json!({"fields": [fdef("name", "Node", "text"), fdef("bogus", "bogus", "unknown")],
               "data": [[[0, "node1"], [1, null]]]}),
    );
    let o = m.run("gnt-node", &["list", "-o", "name,bogus"]);
    assert_eq!(o.status.code(), Some(14));
    assert_eq!(stdout(&o), "Node  bogus\nnode1 ??\n");
    assert_eq!(stderr(&o), "Warning: Queried for unknown fields bogus\n");
}

#[test]
fn node_list_uses_units_and_offline_marks() {
    let m = FakeMaster::start();
    m.reply(
        "Query",
        json!({"fields": [fdef("name", "Node", "text"), fdef("dtotal", "DTotal", "unit"),
            fdef("dfree", "DFree", "unit"), fdef("mtotal", "MTotal", "unit"), fdef("mnode", "MNode", "unit"),
            fdef("mfree", "MFree", "unit"), fdef("pinst_cnt", "Pinst", "number"), fdef("sinst_cnt", "Sinst", "number")],
          "data": [[[0, "node1.example.com"], [0, 102400], [0, 51200], [0, 16384], [0, 1024], [0, 12000], [0, 3], [0, 0]],
                   [[0, "node2"], [4, null], [4, null], [4, null], [4, null], [4, null], [0, 0], [0, 1]]]}),
    );
    let o = m.run("gnt-node", &["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Node              DTotal DFree MTotal MNode MFree Pinst Sinst\n\
         node1.example.com 100.0G 50.0G  16.0G  1.0G 11.7G     3     0\n\
         node2                  *     *      *     *     *     0     1\n"
    );
    assert_eq!(
        m.requests()[0].1,
        json!([
            "node",
            [
                "name",
                "dtotal",
                "dfree",
                "mtotal",
                "mnode",
                "mfree",
                "pinst_cnt",
                "sinst_cnt"
            ],
            null
        ])
    );
}

#[test]
fn job_list_formats_status_and_summary_and_filters_by_id() {
    let m = FakeMaster::start();
    m.reply(
        "Query",
        json!({"fields": [fdef("id", "ID", "number"), fdef("status", "Status", "text"), fdef("summary", "Summary", "other")],
               "data": [[[0, 1], [0, "success"], [0, ["INSTANCE_STARTUP(inst1)"]]],
                        [[0, 12], [0, "running"], [0, ["CLUSTER_VERIFY", "TEST_DELAY(1)"]]]]}),
    );
    let o = m.run("gnt-job", &["list", "1", "12"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ID Status  Summary\n 1 success INSTANCE_STARTUP(inst1)\n12 running CLUSTER_VERIFY,TEST_DELAY(1)\n"
    );
    assert_eq!(
        m.requests()[0].1,
        json!([
            "job",
            ["id", "status", "summary"],
            ["|", ["==", "id", 1], ["==", "id", 12]]
        ])
    );
}

fn wfjc_running_then(final_status: &str) -> Vec<Value> {
    vec![
        json!("nochange"),
        json!([
            ["running"],
            [[1, [1795376905, 5000], "message", "Starting instance inst1"]]
        ]),
        json!([[final_status], []]),
    ]
}

#[test]
fn startup_follows_the_job_to_success() {
    let m = FakeMaster::start();
    m.reply("QueryInstances", json!([["inst1"]]));
    m.reply("SubmitManyJobs", json!([[true, 17]]));
    m.reply("QueryJobs", json!([["running"]]));
    m.reply("QueryJobs", json!([["success", ["success"], [null]]]));
    for r in wfjc_running_then("success") {
        m.reply("WaitForJobChange", r);
    }
    let o = m.run("gnt-instance", &["startup", "inst1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Waiting for job 17 for inst1 ...\nSun Nov 22 19:48:25 2026 Starting instance inst1\n"
    );
    let reqs = m.requests();
    let methods: Vec<&str> = reqs.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        [
            "QueryInstances",
            "SubmitManyJobs",
            "QueryJobs",
            "WaitForJobChange",
            "WaitForJobChange",
            "WaitForJobChange",
            "QueryJobs"
        ]
    );
    assert_eq!(reqs[0].1, json!([["inst1"], ["name"], false]));
    let op = &reqs[1].1[0][0][0];
    assert_eq!(op["OP_ID"], "OP_INSTANCE_STARTUP");
    assert_eq!(op["instance_name"], "inst1");
    assert_eq!(op["force"], false);
    assert_eq!(op["hvparams"], json!({}));
    assert_eq!(op["shutdown_timeout"], 120);
    assert_eq!(op["debug_level"], 0);
    assert_eq!(op["reason"][0][0], "gnt:client:gnt-instance");
    assert_eq!(op["reason"][0][1], "startup");
    assert_eq!(reqs[5].1, json!([17, ["status"], ["running"], 1, 60]));
    assert_eq!(reqs[6].1, json!([[17], ["status", "opstatus", "opresult"]]));
}

#[test]
fn failed_job_prints_ganeti_error_and_exits_1() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(5));
    for r in wfjc_running_then("error") {
        m.reply("WaitForJobChange", r);
    }
    m.reply(
        "QueryJobs",
        json!([[
            "error",
            ["error"],
            [[
                "OpPrereqError",
                ["Instance 'inst1' is already running", "wrong_state"]
            ]]
        ]]),
    );
    let o = m.run("gnt-instance", &["remove", "-f", "inst1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Failure: prerequisites not met for this operation:\nerror type: wrong_state, error details:\nInstance 'inst1' is already running\n"
    );
    let submit = &m.requests()[0];
    assert_eq!(submit.0, "SubmitJob");
    let op = &submit.1[0][0];
    assert_eq!(op["OP_ID"], "OP_INSTANCE_REMOVE");
    assert_eq!(op["instance_name"], "inst1");
    assert_eq!(op["ignore_failures"], false);
    assert_eq!(op["shutdown_timeout"], 120);
}

#[test]
fn submit_prints_job_id_without_waiting() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(42));
    let o = m.run(
        "gnt-instance",
        &[
            "add",
            "-t",
            "plain",
            "-n",
            "node1:node2",
            "-o",
            "debootstrap",
            "--disk",
            "0:size=1G",
            "-B",
            "maxmem=512M,vcpus=2",
            "--no-start",
            "--submit",
            "inst9",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "JobID: 42\n");
    let reqs = m.requests();
    assert_eq!(reqs.len(), 1);
    let op = &reqs[0].1[0][0];
    assert_eq!(op["OP_ID"], "OP_INSTANCE_CREATE");
    assert_eq!(op["disks"], json!([{"size": 1024}]));
    assert_eq!(op["beparams"], json!({"maxmem": 512, "vcpus": 2}));
    assert_eq!(op["pnode"], "node1");
    assert_eq!(op["snode"], "node2");
    assert_eq!(op["start"], false);
    assert_eq!(op["nics"], json!([{}]));
    assert_eq!(op["mode"], "create");
    assert_eq!(op["ip_check"], true);
}

#[test]
fn instance_info_prints_generic_info() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(3));
    m.reply("WaitForJobChange", json!([["success"], []]));
    let inst = json!({"name": "inst1", "uuid": "u1", "serial_no": 4, "ctime": 0, "mtime": 0,
        "config_state": "up", "run_state": "down", "pnode": "node1", "pnode_group_name": "default",
        "pnode_group_uuid": "g1", "snodes": [], "snodes_group_names": [], "snodes_group_uuids": [],
        "os": "noop", "os_instance": {}, "os_actual": {}, "hypervisor": "fake", "hv_instance": {},
        "hv_actual": {"migration_mode": "live"}, "be_instance": {"vcpus": 2},
        "be_actual": {"maxmem": 128, "vcpus": 2},
        "nics": [["nic0", "n-u", null, "aa:00:00:00:00:01", "bridged", "br0", "", null, null]],
        "disk_template": "diskless", "disks": []});
    m.reply(
        "QueryJobs",
        json!([["success", ["success"], [{"inst1": inst}]]]),
    );
    let o = m.run("gnt-instance", &["info", "-s", "inst1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "- Instance name: inst1\n  UUID: u1\n  Serial number: 4\n  Creation time: 1970-01-01 00:00:00\n  Modification time: 1970-01-01 00:00:00\n  State: configured to be up, actual state is down\n  Nodes: \n    - primary: node1\n      group: default (UUID g1)\n    - secondaries: \n  Operating system: noop\n  Operating system parameters: \n  Hypervisor: fake\n  Hypervisor parameters: \n    migration_mode: default (live)\n  Back-end parameters: \n    maxmem: default (128)\n    memory: default (128)\n    vcpus: 2\n  NICs: \n    - nic/0: \n      MAC: aa:00:00:00:00:01\n      IP: None\n      mode: bridged\n      link: br0\n      vlan: \n      network: None\n      UUID: n-u\n      name: nic0\n  Disk template: diskless\n  Disks: \n"
    );
    let op = &m.requests()[0].1[0][0];
    assert_eq!(op["OP_ID"], "OP_INSTANCE_QUERY_DATA");
    assert_eq!(op["instances"], json!(["inst1"]));
    assert_eq!(op["static"], true);
    assert_eq!(op["use_locking"], false);
    assert_eq!(op["dry_run"], Value::Null);
}

#[test]
fn job_watch_prints_header_log_and_failure() {
    let m = FakeMaster::start();
    for r in wfjc_running_then("error") {
        m.reply("WaitForJobChange", r);
    }
    m.reply(
        "QueryJobs",
        json!([[
            "error",
            ["success", "error"],
            [
                null,
                ["OpExecError", ["Could not start instance: kvm died"]]
            ]
        ]]),
    );
    let o = m.run("gnt-job", &["watch", "12"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "Output from job 12 follows\n--------------------------\nSun Nov 22 19:48:25 2026 Starting instance inst1\n"
    );
    assert_eq!(
        stderr(&o),
        "Job 12 failed: Failure: command execution error:\nCould not start instance: kvm died\n"
    );
    assert_eq!(m.requests()[0].1, json!(["12", ["status"], null, null, 60]));
}

#[test]
fn master_errors_on_query_are_reported() {
    let m = FakeMaster::start();
    m.fail(
        "Query",
        GanetiError::prereq("Unknown resource 'instance'", ErrorCode::Inval),
    );
    let o = m.run("gnt-instance", &["list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with(
        "Failure: prerequisites not met for this operation:\nerror type: wrong_input"
    ));
}

#[test]
fn no_master_outside_a_cluster() {
    let root = tempfile::tempdir().unwrap();
    let o = run_with_root(root.path(), "gnt-instance", &["list"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nCluster not initialized or this machine is not part of a cluster\n"
    );
}

#[test]
fn no_master_daemon_on_the_master_node() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("var/lib/ganeti");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("ssconf_master_node"), "node1\n").unwrap();
    let o = run_with_root(root.path(), "gnt-node", &["list"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Cannot communicate with the config daemon.\nIs the process running and listening for connections?\n"
    );
}

#[test]
fn malformed_query_reply_is_a_clear_error() {
    let m = FakeMaster::start();
    m.reply(
        "Query",
        json!({"fields": [fdef("name", "Node", "text")], "data": [[["bad"]]]}),
    );
    let o = m.run("gnt-node", &["list", "-o", "name"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unexpected reply to Query"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn node_modify_sends_yes_no_flags() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(8));
    let o = m.run(
        "gnt-node",
        &[
            "modify",
            "--drained",
            "yes",
            "--master-candidate",
            "no",
            "--submit",
            "node2",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let op = &m.requests()[0].1[0][0];
    assert_eq!(op["OP_ID"], "OP_NODE_SET_PARAMS");
    assert_eq!(op["node_name"], "node2");
    assert_eq!(op["drained"], true);
    assert_eq!(op["master_candidate"], false);
    assert_eq!(op["offline"], Value::Null);
}

#[test]
fn cluster_queue_drain_sets_the_flag() {
    let m = FakeMaster::start();
    m.reply("SetDrainFlag", json!(true));
    let o = m.run("gnt-cluster", &["queue", "drain"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        m.requests(),
        vec![("SetDrainFlag".to_string(), json!([true]))]
    );
}

#[test]
fn list_options_can_come_from_the_environment() {
    let m = FakeMaster::start();
    m.reply("Query", instance_list_reply());
    let o = std::process::Command::new(fake_luxi::bin_path("gnt-instance"))
        .args(["list", "inst1"])
        .env("GANETI_ROOTDIR", m.root())
        .env("GNT_INSTANCE_LIST", "--no-headers -o name,os")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        m.requests()[0].1,
        json!(["instance", ["name", "os"], ["|", ["==", "name", "inst1"]]])
    );
}

#[test]
fn partial_failure_names_the_failed_opcode() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(6));
    m.reply("WaitForJobChange", json!([["error"], []]));
    m.reply(
        "QueryJobs",
        json!([["error", ["success", "error"], [null, "disk 1 failed"]]]),
    );
    let o = m.run("gnt-instance", &["remove", "-f", "inst1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Failure: command execution error:\npartial failure (opcode 1): disk 1 failed\n"
    );
}

#[test]
fn lost_and_canceled_jobs_are_reported() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(6));
    m.reply("WaitForJobChange", json!(null));
    let o = m.run("gnt-instance", &["remove", "-f", "inst1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error checking job status: Job with id 6 lost\n"
    );

    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(7));
    m.reply("WaitForJobChange", json!([["canceled"], []]));
    m.reply("QueryJobs", json!([["canceled", ["canceled"], [null]]]));
    let o = m.run("gnt-instance", &["remove", "-f", "inst1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Unhandled Ganeti error: Job was canceled\n");
}

#[test]
fn waiting_job_is_announced_once_on_stderr() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(8));
    m.reply("WaitForJobChange", json!([["queued"], []]));
    m.reply("WaitForJobChange", json!("nochange"));
    m.reply("WaitForJobChange", json!("nochange"));
    m.reply("WaitForJobChange", json!([["success"], []]));
    m.reply("QueryJobs", json!([["success", ["success"], [null]]]));
    let o = m.run("gnt-instance", &["remove", "-f", "inst1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "Job 8 is waiting in queue\n");
    let waits: Vec<Value> = m
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "WaitForJobChange")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(waits[1], json!([8, ["status"], ["queued"], null, 60]));
}

#[test]
fn user_reason_and_options_reach_the_opcode() {
    let m = FakeMaster::start();
    m.reply("SubmitJob", json!(9));
    let o = m.run(
        "gnt-instance",
        &[
            "remove",
            "-f",
            "--submit",
            "--print-jobid",
            "--dry-run",
            "--priority",
            "high",
            "-d",
            "--reason",
            "maintenance",
            "inst1",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "9\n");
    assert_eq!(stderr(&o), "JobID: 9\n");
    let op = &m.requests()[0].1[0][0];
    assert_eq!(op["dry_run"], true);
    assert_eq!(op["priority"], -10);
    assert_eq!(op["debug_level"], 1);
    assert_eq!(op["reason"][0][0], "gnt:user");
    assert_eq!(op["reason"][0][1], "maintenance");
    assert_eq!(op["reason"][1][0], "gnt:client:gnt-instance");
    assert_eq!(op["reason"][1][1], "remove");
    assert!(op["reason"][1][2].as_u64().unwrap() > 1_600_000_000_000_000_000);
}

#[test]
fn bad_sizes_and_filters_are_refused_before_contacting_the_master() {
    let m = FakeMaster::start();
    let o = m.run(
        "gnt-instance",
        &[
            "add",
            "-t",
            "plain",
            "-o",
            "x",
            "--disk",
            "0:size=lots",
            "i",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nInvalid disk size for disk 0: Invalid format\n"
    );
    let o = m.run("gnt-instance", &["list", "name == "]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(
            "Error while parsing query filter: Failed to parse query filter 'name == '"
        ),
        "{}",
        stderr(&o)
    );
    assert!(m.requests().is_empty());
}

/// Replies of every wrong shape for the methods the commands use.
fn garbage_replies() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(7),
        json!("x"),
        json!([]),
        json!([1, 2, 3]),
        json!([[1], "x"]),
        json!([["x", [1]], [[1, 2]]]),
        json!({}),
        json!({"fields": "x", "data": 1}),
        json!({"fields": [{"name": 1}], "data": [[1]]}),
        json!({"jobs": [[1, 2, 3], "x"]}),
    ]
}

#[test]
fn bad_replies_never_crash_the_tools() {
    let commands: &[(&str, &[&str])] = &[
        ("gnt-instance", &["list"]),
        ("gnt-instance", &["info", "i1"]),
        ("gnt-instance", &["startup", "i1"]),
        ("gnt-instance", &["startup", "--all", "--force-multiple"]),
        ("gnt-instance", &["remove", "-f", "i1"]),
        ("gnt-instance", &["console", "--show-cmd", "i1"]),
        ("gnt-instance", &["change-group", "i1"]),
        ("gnt-node", &["list"]),
        ("gnt-node", &["info"]),
        ("gnt-node", &["migrate", "-f", "n1"]),
        ("gnt-node", &["evacuate", "-f", "n1"]),
        ("gnt-node", &["add", "n9"]),
        ("gnt-group", &["info"]),
        ("gnt-job", &["list"]),
        ("gnt-job", &["info", "1"]),
        ("gnt-job", &["watch", "1"]),
        ("gnt-job", &["cancel", "--pending", "-f"]),
        ("gnt-job", &["autoarchive", "all"]),
        ("gnt-cluster", &["info"]),
        ("gnt-cluster", &["version"]),
        ("gnt-cluster", &["verify"]),
        ("gnt-cluster", &["verify-disks"]),
        ("gnt-cluster", &["queue", "info"]),
        ("gnt-cluster", &["list-tags"]),
        ("gnt-os", &["list"]),
        ("gnt-os", &["diagnose"]),
    ];
    let methods = [
        "Query",
        "QueryFields",
        "QueryJobs",
        "QueryInstances",
        "QueryNodes",
        "QueryGroups",
        "QueryClusterInfo",
        "QueryConfigValues",
        "QueryTags",
        "SubmitJob",
        "SubmitManyJobs",
        "WaitForJobChange",
        "CancelJob",
        "AutoArchiveJobs",
    ];
    for garbage in garbage_replies() {
        for (bin, args) in commands {
            let m = FakeMaster::start();
            for method in methods {
                m.reply(method, garbage.clone());
            }
            // Whatever they print, a job poll must end: give it a final state.
            m.reply("WaitForJobChange", json!([["error"], []]));
            let o = m.run(bin, args);
            let err = stderr(&o);
            assert!(
                !err.contains("panicked") && o.status.code().is_some(),
                "{bin} {args:?} with replies {garbage}: {err}"
            );
        }
    }
}
