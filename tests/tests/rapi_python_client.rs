//! RAPI v2 as Ganeti's own Python client sees it: `ganeti.rapi.client`
//! of Debian's `ganeti-3.0` package drives a 3-node virtual cluster
//! through `ganeti-rapi` (started by `gnt-cluster init`): cluster
//! information, bulk listings, an instance's life cycle, tags on every
//! kind of object, a filtered query, jobs and their long poll, groups and
//! node roles, and the 401, 403 and 404 answers.
//!
//! Needs the workspace binaries built first, and Debian's python3 with the
//! modules ganeti-3.0 depends on (`scripts/python-ganeti.sh` installs
//! them); `GANETI_SKIP_PYTHON_ORACLE=1` skips it on purpose.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use tests::rapi_client::{python_ganeti, RapiClient};
use tests::VCluster;

const PORT: u16 = 5080;

fn no() -> Value {
    json!({})
}

fn status_of(c: &mut RapiClient, inst: &str) -> (String, String) {
    let i = c.ok("GetInstance", json!([inst]), no());
    (
        i["status"].as_str().unwrap_or_default().to_string(),
        i["pnode"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn ganetis_python_client_drives_a_virtual_cluster() {
    let Some(tools) = python_ganeti() else {
        return;
    };
    let vc = VCluster::up("0.50", 3);
    let users = vc.paths().rapi_users();
    std::fs::write(
        &users,
        "# test users\nadmin adminpw write\nviewer viewerpw read\n",
    )
    .unwrap();
    let mut c = RapiClient::start(&tools, &vc.master_ip(), PORT);

    // The cluster, anonymously.
    assert_eq!(c.ok("GetVersion", json!([]), no()), json!(2));
    let features = c.ok("GetFeatures", json!([]), no());
    assert!(features
        .as_array()
        .unwrap()
        .contains(&json!("instance-create-reqv1")));
    let info = c.ok("GetInfo", json!([]), no());
    assert_eq!(info["name"], "vcluster");
    assert_eq!(info["master"], "node1");
    assert_eq!(
        c.ok("GetNodes", json!([]), no()),
        json!(["node1", "node2", "node3"])
    );
    let nodes = c.ok("GetNodes", json!([]), json!({"bulk": true}));
    let roles: Vec<(&str, &str)> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("node1", "M"), ("node2", "C"), ("node3", "C")]);
    assert_eq!(nodes[0]["mtotal"], 8192);
    assert_eq!(c.ok("GetInstances", json!([]), no()), json!([]));
    let oses = c.ok("GetOperatingSystems", json!([]), no());
    assert!(
        oses.as_array().unwrap().contains(&json!("tiny+default")),
        "{oses}"
    );

    // Writes need credentials with `write`; unknown names are 404.
    let create = json!(["create", "web1", "diskless", [], [{}]]);
    let create_kw = json!({"os": "tiny", "pnode": "node2", "name_check": false, "ip_check": false});
    let e = c
        .call("CreateInstance", create.clone(), create_kw.clone())
        .unwrap_err();
    assert_eq!(e.code, 401, "{e:?}");
    let e = c
        .as_user("viewer", "viewerpw")
        .call("CreateInstance", create.clone(), create_kw.clone())
        .unwrap_err();
    assert_eq!(e.code, 403, "{e:?}");
    let e = c
        .as_user("admin", "wrong")
        .call("CreateInstance", create.clone(), create_kw.clone())
        .unwrap_err();
    assert_eq!(e.code, 401, "{e:?}");
    c.as_user("admin", "adminpw");
    for (method, arg) in [
        ("GetInstance", json!("nosuch")),
        ("GetNode", json!("nosuch")),
        ("GetGroup", json!("nosuch")),
        ("GetJobStatus", json!(99999)),
    ] {
        let e = c.call(method, json!([arg]), no()).unwrap_err();
        assert_eq!(e.code, 404, "{method}: {e:?}");
    }

    // An instance's life cycle.
    c.job_ok("CreateInstance", create, create_kw);
    let web1 = c.ok("GetInstance", json!(["web1"]), no());
    assert_eq!(web1["pnode"], "node2");
    assert_eq!(web1["status"], "running");
    assert_eq!(web1["beparams"]["memory"], web1["beparams"]["maxmem"]);
    let bulk = c.ok("GetInstances", json!([]), json!({"bulk": true}));
    assert_eq!(bulk[0]["name"], "web1");
    assert_eq!(bulk[0]["admin_state"], "up");
    c.job_ok("ShutdownInstance", json!(["web1"]), no());
    assert_eq!(status_of(&mut c, "web1").0, "ADMIN_down");
    c.job_ok("StartupInstance", json!(["web1"]), no());
    assert_eq!(status_of(&mut c, "web1").0, "running");
    c.job_ok(
        "RebootInstance",
        json!(["web1"]),
        json!({"reboot_type": "hard"}),
    );
    assert_eq!(status_of(&mut c, "web1").0, "running");
    c.job_ok(
        "ModifyInstance",
        json!(["web1"]),
        json!({"beparams": {"maxmem": 256}}),
    );
    let web1 = c.ok("GetInstance", json!(["web1"]), no());
    assert_eq!(web1["beparams"]["maxmem"], 256);
    assert_eq!(web1["custom_beparams"]["maxmem"], 256);
    c.job_ok(
        "MigrateInstance",
        json!(["web1"]),
        json!({"target_node": "node3"}),
    );
    assert_eq!(
        status_of(&mut c, "web1"),
        ("running".into(), "node3".into())
    );
    c.job_ok(
        "FailoverInstance",
        json!(["web1"]),
        json!({"target_node": "node1"}),
    );
    assert_eq!(
        status_of(&mut c, "web1"),
        ("running".into(), "node1".into())
    );
    c.job_ok("ShutdownInstance", json!(["web1"]), no());
    c.job_ok(
        "RenameInstance",
        json!(["web1", "web2"]),
        json!({"ip_check": false, "name_check": false}),
    );
    assert_eq!(
        c.call("GetInstance", json!(["web1"]), no())
            .unwrap_err()
            .code,
        404
    );
    assert_eq!(
        vc.ok(
            "gnt-instance",
            &[
                "list",
                "-o",
                "name,pnode,status",
                "--no-headers",
                "--separator=:"
            ]
        ),
        "web2:node1:ADMIN_down\n"
    );

    // Tags on every kind of object.
    c.job_ok("AddClusterTags", json!([["c1", "c2"]]), no());
    assert_eq!(c.ok("GetClusterTags", json!([]), no()), json!(["c1", "c2"]));
    c.job_ok("DeleteClusterTags", json!([["c1"]]), no());
    assert_eq!(c.ok("GetClusterTags", json!([]), no()), json!(["c2"]));
    for (kind, name) in [
        ("Node", "node2"),
        ("Instance", "web2"),
        ("Group", "default"),
    ] {
        c.job_ok(&format!("Add{kind}Tags"), json!([name, ["t1", "t2"]]), no());
        assert_eq!(
            c.ok(&format!("Get{kind}Tags"), json!([name]), no()),
            json!(["t1", "t2"]),
            "{kind}"
        );
        c.job_ok(&format!("Delete{kind}Tags"), json!([name, ["t2"]]), no());
        assert_eq!(
            c.ok(&format!("Get{kind}Tags"), json!([name]), no()),
            json!(["t1"]),
            "{kind}"
        );
    }
    assert_eq!(
        c.ok("GetInstance", json!(["web2"]), no())["tags"],
        json!(["t1"])
    );
    // No network of that name: tagging it is a job the master fails
    // ("Network 'net1' not found"), as from the command line.
    let id = c.ok("AddNetworkTags", json!(["net1", ["n"]]), no());
    assert_eq!(c.wait_job(&id), "error");

    // A query with a filter, and field definitions.
    let q = c.ok(
        "Query",
        json!(["instance", ["name", "pnode", "admin_state"]]),
        json!({"qfilter": ["=", "name", "web2"]}),
    );
    assert_eq!(q["data"], json!([[[0, "web2"], [0, "node1"], [0, "down"]]]));
    let q = c.ok(
        "Query",
        json!(["node", ["name"]]),
        json!({"qfilter": ["=~", "name", "^node[23]$"]}),
    );
    assert_eq!(q["data"], json!([[[0, "node2"]], [[0, "node3"]]]));
    let f = c.ok(
        "QueryFields",
        json!(["node"]),
        json!({"fields": ["name", "mfree"]}),
    );
    assert_eq!(f["fields"][1]["name"], "mfree");
    assert_eq!(f["fields"][1]["kind"], "unit");

    // Jobs.
    let ids = c.ok("GetJobs", json!([]), no());
    assert!(ids.as_array().unwrap().len() >= 10, "{ids}");
    let jobs = c.ok("GetJobs", json!([]), json!({"bulk": true}));
    let create_job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["summary"] == json!(["INSTANCE_CREATE(web1)"]))
        .unwrap_or_else(|| panic!("no INSTANCE_CREATE(web1) in {jobs}"))
        .clone();
    assert_eq!(create_job["status"], "success");
    let job = c.ok("GetJobStatus", json!([create_job["id"]]), no());
    assert_eq!(job["opresult"], json!([["node2"]]));
    assert_eq!(job["ops"][0]["OP_ID"], "OP_INSTANCE_CREATE");
    // The reason trail names the RAPI resource.
    let trail = job["ops"][0]["reason"].to_string();
    assert!(trail.contains("gnt:library:rlib2:instances"), "{trail}");

    // Groups and node roles.
    c.job_ok("CreateGroup", json!(["rack2"]), no());
    assert_eq!(
        c.ok("GetGroups", json!([]), no()),
        json!(["default", "rack2"])
    );
    c.job_ok("AssignGroupNodes", json!(["rack2", ["node3"]]), no());
    let rack2 = c.ok("GetGroup", json!(["rack2"]), no());
    assert_eq!(rack2["node_list"], json!(["node3"]));
    assert_eq!(
        c.ok("GetNode", json!(["node3"]), no())["group.uuid"],
        rack2["uuid"]
    );
    c.job_ok(
        "ModifyGroup",
        json!(["rack2"]),
        json!({"alloc_policy": "last_resort"}),
    );
    assert_eq!(
        c.ok("GetGroup", json!(["rack2"]), no())["alloc_policy"],
        "last_resort"
    );
    c.job_ok("RenameGroup", json!(["rack2", "rack3"]), no());
    c.job_ok("AssignGroupNodes", json!(["default", ["node3"]]), no());
    c.job_ok("DeleteGroup", json!(["rack3"]), no());
    assert_eq!(c.ok("GetGroups", json!([]), no()), json!(["default"]));
    assert_eq!(c.ok("GetNodeRole", json!(["node1"]), no()), "master");
    assert_eq!(
        c.ok("GetNodeRole", json!(["node3"]), no()),
        "master-candidate"
    );
    c.job_ok("SetNodeRole", json!(["node3", "drained"]), no());
    assert_eq!(c.ok("GetNodeRole", json!(["node3"]), no()), "drained");
    // Undrained while the candidate pool (10) is short of the 3 nodes:
    // Ganeti promotes the node back, and so do we.
    c.job_ok("SetNodeRole", json!(["node3", "regular"]), no());
    assert_eq!(
        c.ok("GetNodeRole", json!(["node3"]), no()),
        "master-candidate"
    );
    c.job_ok("SetNodeRole", json!(["node3", "master-candidate"]), no());
    assert_eq!(
        c.ok("GetNodeRole", json!(["node3"]), no()),
        "master-candidate"
    );

    // Job filter rules: added, read, replaced and deleted.
    let preds = json!([["opcode", ["=", "OP_ID", "OP_INSTANCE_REBOOT"]]]);
    let uuid = c.ok("AddFilter", json!([10, preds, "PAUSE"]), no());
    let uuid = uuid
        .as_str()
        .expect("AddFilter answers with a UUID")
        .to_string();
    assert_eq!(c.ok("GetFilters", json!([]), no()), json!([uuid]));
    let rule = c.ok("GetFilter", json!([uuid]), no());
    assert_eq!(rule["priority"], json!(10));
    assert_eq!(rule["action"], json!("PAUSE"));
    assert_eq!(
        rule["predicates"],
        json!([["opcode", ["==", "OP_ID", "OP_INSTANCE_REBOOT"]]])
    );
    assert_eq!(rule["reason_trail"][0][0], json!("gnt:client"));
    c.ok(
        "ReplaceFilter",
        json!([uuid, 1, [], ["RATE_LIMIT", 2]]),
        no(),
    );
    let bulk = c.ok("GetFilters", json!([]), json!({"bulk": true}));
    assert_eq!(bulk[0]["action"], json!(["RATE_LIMIT", 2]));
    c.ok("DeleteFilter", json!([uuid]), no());
    assert_eq!(c.ok("GetFilters", json!([]), no()), json!([]));

    // The end of the instance.
    c.job_ok("DeleteInstance", json!(["web2"]), no());
    assert_eq!(c.ok("GetInstances", json!([]), no()), json!([]));
}
