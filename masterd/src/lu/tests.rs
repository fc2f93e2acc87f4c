//! The logical units in-process: a master with its configuration and job
//! queue in a temporary directory, talking to fake nodes
//! ([`FakeNodes`]). Every unit that changes nodes is failed at each of its
//! node calls in turn, and must leave nothing behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use objects::paths::Paths;
use objects::{Cluster, Node, NodeGroup};
use serde_json::{json, Value};

use crate::config::{Changes, ConfigStore};
use crate::executor::Executor;
use crate::jobqueue::{JobQueue, QueueOptions};
use crate::master::Master;
use crate::rpc::fake::{FakeNodes, NodeState, SHARED};
use crate::rpc::Rpc;

mod backup;
mod cluster_ops;
mod network;
mod oob;
mod watcher;

struct Env {
    _dir: tempfile::TempDir,
    master: Arc<Master>,
    nodes: Arc<FakeNodes>,
    queue: Arc<JobQueue>,
}

/// A cluster of `n` fake nodes, `node1` the master, with the fake
/// hypervisor and the file, sharedfile and diskless templates.
fn env(n: usize) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    std::fs::create_dir_all(paths.data_dir()).unwrap();
    let mut cluster = Cluster::new("cuuid", "cluster.example.com", "n1", "127.0.0.1", 1.0);
    cluster.enabled_disk_templates = ["file", "sharedfile", "diskless", "drbd"]
        .map(String::from)
        .to_vec();
    let group = NodeGroup::new("g", "default", 1.0);
    let node = |i: usize| {
        Node::new(
            &format!("n{i}"),
            &format!("node{i}"),
            &format!("127.0.0.{i}"),
            "g",
            1.0,
        )
    };
    let config = ConfigStore::create(&paths.config_db(), cluster, group, node(1)).unwrap();
    let mut ch = Changes::new();
    for i in 2..=n {
        ch.node(node(i));
    }
    config.commit(ch).unwrap();
    let nodes = Arc::new(FakeNodes::default());
    let master = Master::new(paths.clone(), config, Rpc::with_transport(nodes.clone()));
    let queue = JobQueue::open(
        &paths.queue_db(),
        QueueOptions::default(),
        Executor::new(&master),
    )
    .unwrap();
    master.set_queue(queue.clone());
    queue.start();
    Env {
        _dir: dir,
        master,
        nodes,
        queue,
    }
}

impl Env {
    /// Runs a job of one opcode; returns its status and result.
    async fn run(&self, op: Value) -> (String, Value) {
        let id = self.queue.submit(vec![op]).await.expect("job submitted");
        let fields = vec!["status".to_string(), "opresult".to_string()];
        let mut prev = Value::Null;
        loop {
            let r = self
                .queue
                .wait_for_job_change(id, &fields, prev.clone(), json!(0), Duration::from_secs(10))
                .await
                .expect("job exists");
            if r == json!("nochange") {
                continue;
            }
            let status = r[0][0].as_str().unwrap_or_default().to_string();
            if matches!(status.as_str(), "success" | "error" | "canceled") {
                return (status, r[0][1][0].clone());
            }
            prev = r[0].clone();
        }
    }

    async fn must(&self, op: Value) {
        let (status, result) = self.run(op.clone()).await;
        assert_eq!(status, "success", "{op}: {result}");
    }

    /// The instances of the configuration, by name, as JSON.
    fn instances(&self) -> BTreeMap<String, Value> {
        self.master
            .config
            .read()
            .instances
            .values()
            .map(|i| (i.name.clone(), serde_json::to_value(i).unwrap()))
            .collect()
    }

    /// What the nodes hold.
    fn on_nodes(&self) -> BTreeMap<String, NodeState> {
        self.nodes.state()
    }
}

/// The opcode to create `name` on `node`, running, with `disks` file
/// disks (of the template `template`) of 1 GiB and one NIC: the smallest
/// instance the default policy allows.
fn create(name: &str, node: &str, template: &str, disks: usize) -> Value {
    json!({
        "OP_ID": "OP_INSTANCE_CREATE",
        "instance_name": name,
        "mode": "create",
        "disk_template": template,
        "disks": (0..disks).map(|_| json!({"size": 1024})).collect::<Vec<_>>(),
        "nics": [{}],
        "os_type": "tiny",
        "pnode": node,
        "beparams": {"maxmem": 256, "minmem": 256, "vcpus": 1},
        "name_check": false,
        "ip_check": false,
        "start": true,
    })
}

impl Env {
    /// What the nodes hold that the configuration does not account for: a
    /// disk of no instance (or of an instance that has no such disk on
    /// that node), an instance running that is not in the configuration or
    /// not on its primary node.
    fn orphans(&self) -> Vec<String> {
        let cfg = self.master.config.read();
        let node_uuid = |name: &str| {
            cfg.nodes
                .values()
                .find(|n| n.name == name)
                .map(|n| n.uuid.clone())
        };
        let by_name: BTreeMap<&str, &objects::Instance> = cfg
            .instances
            .values()
            .map(|i| (i.name.as_str(), i))
            .collect();
        let mut out = Vec::new();
        for (node, st) in self.nodes.state() {
            let uuid = node_uuid(&node).unwrap_or_default();
            for (disk, made_for) in &st.disks {
                // Shared storage holds the disks of instances on any node.
                let known = cfg.instances.values().any(|i| {
                    i.disks.iter().any(|d| {
                        d.uuid == *disk
                            && (node == SHARED || d.nodes.contains(&uuid) || i.primary_node == uuid)
                    })
                });
                if !known {
                    out.push(format!("disk {disk} (made for {made_for}) on {node}"));
                }
            }
            for inst in st.running.keys().chain(st.incoming.keys()) {
                if by_name
                    .get(inst.as_str())
                    .is_none_or(|i| i.primary_node != uuid)
                {
                    out.push(format!("instance {inst} running on {node}"));
                }
            }
        }
        out
    }
}

/// Runs `op` once to count its node calls, then once more per call on a
/// fresh cluster made by `setup`, failing that call. Whatever the outcome,
/// nothing may be left on a node that the configuration does not account
/// for; and a failed job that left the configuration's instances as they
/// were must have left the nodes as they were too. (A job may fail after
/// its config commit and keep what it committed, as Ganeti keeps a created
/// instance that fails to start.) Returns the number of calls tried.
async fn fails_cleanly_at_every_call<F, Fut>(setup: F, op: Value) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Env>,
{
    let e = setup().await;
    let before = e.nodes.call_count();
    e.must(op.clone()).await;
    let calls = e.nodes.call_count() - before;
    let names = e.nodes.calls()[before..].to_vec();
    assert!(calls > 0, "{op} made no node call");
    assert_eq!(e.orphans(), Vec::<String>::new(), "{op} succeeded");
    for k in 1..=calls {
        let e = setup().await;
        let start = (e.instances(), e.on_nodes());
        e.nodes.fail_call(k);
        let (status, result) = e.run(op.clone()).await;
        let call = &names[k - 1];
        assert!(
            matches!(status.as_str(), "success" | "error"),
            "failing call {k} ({call}): {status} {result}"
        );
        // A leftover is only allowed where the job failed saying so: a
        // step after the commit that must be finished by hand on that node.
        let text = result.to_string();
        let named = |o: &String| {
            status == "error"
                && text.contains("by hand")
                && o.rsplit(" on ")
                    .next()
                    .is_some_and(|n| text.contains(&format!("node {n}")))
        };
        let orphans: Vec<String> = e.orphans().into_iter().filter(|o| !named(o)).collect();
        assert_eq!(
            orphans,
            Vec::<String>::new(),
            "failing call {k} ({call}), job {status} with {result}"
        );
        if status == "error" && e.instances() == start.0 {
            assert_eq!(
                e.on_nodes(),
                start.1,
                "failing call {k} ({call}) changed the nodes but not the config: {result}"
            );
        }
    }
    calls
}

#[tokio::test]
async fn instance_create_fails_cleanly_at_every_call() {
    let n =
        fails_cleanly_at_every_call(|| async { env(2) }, create("inst1", "node2", "file", 2)).await;
    assert!(n >= 4, "create made {n} calls");
}

/// Two nodes and `inst1`, running on node1, with the template `template`
/// (`drbd`: mirrored to node2).
async fn with_instance(template: &str) -> Env {
    let e = env(2);
    let disks = if template == "diskless" { 0 } else { 1 };
    let mut op = create("inst1", "node1", template, disks);
    if template == "drbd" {
        op["snode"] = json!("node2");
    }
    e.must(op).await;
    e
}

/// The opcode to create `name` with `disks` drbd disks on `pnode`,
/// mirrored to `snode`.
fn create_drbd(name: &str, pnode: &str, snode: &str, disks: usize) -> Value {
    let mut op = create(name, pnode, "drbd", disks);
    op["snode"] = json!(snode);
    op
}

#[tokio::test]
async fn drbd_create_makes_both_copies_and_fails_cleanly_at_every_call() {
    let e = env(3);
    e.must(create_drbd("inst1", "node1", "node2", 2)).await;
    let state = e.on_nodes();
    assert_eq!(state["node1"].disks.len(), 2, "{state:?}");
    assert_eq!(state["node2"].disks.len(), 2, "{state:?}");
    assert!(state.get("node3").is_none_or(|n| n.disks.is_empty()));
    let first = e.nodes.calls();
    let creates: Vec<&str> = first
        .iter()
        .filter(|c| c.ends_with("blockdev_create"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        creates,
        [
            "node2:blockdev_create",
            "node2:blockdev_create",
            "node1:blockdev_create",
            "node1:blockdev_create"
        ],
        "the secondary's copies come first"
    );
    let n = fails_cleanly_at_every_call(
        || async { env(2) },
        create_drbd("inst1", "node1", "node2", 1),
    )
    .await;
    assert!(n >= 4, "create made {n} calls");
}

#[tokio::test]
async fn a_failed_drbd_create_gives_its_replication_ports_back() {
    let e = env(2);
    // The first call creates the secondary's copy of disk 0; failing it
    // fails the job before anything is left.
    e.nodes.fail_call(1);
    let (status, _) = e.run(create_drbd("inst1", "node1", "node2", 2)).await;
    assert_eq!(status, "error");
    let c = e.master.config.cluster();
    let mut pool = c.tcpudp_port_pool.clone();
    pool.sort();
    assert_eq!(
        pool,
        vec![objects::FIRST_DRBD_PORT, objects::FIRST_DRBD_PORT + 1],
        "both ports are back in the pool"
    );
    e.must(create_drbd("inst1", "node1", "node2", 1)).await;
    e.must(json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": "inst1"}))
        .await;
    assert_eq!(e.master.config.cluster().tcpudp_port_pool.len(), 2);
}

#[tokio::test]
async fn drbd_refuses_a_missing_or_same_secondary_and_other_targets() {
    let e = env(3);
    let (status, result) = e.run(create("inst1", "node1", "drbd", 1)).await;
    assert_eq!(status, "error");
    assert!(
        result.to_string().contains("need a mirror node"),
        "{result}"
    );
    let (status, result) = e.run(create_drbd("inst1", "node1", "node1", 1)).await;
    assert_eq!(status, "error");
    assert!(
        result
            .to_string()
            .contains("The secondary node cannot be the primary node"),
        "{result}"
    );
    e.must(create_drbd("inst1", "node1", "node2", 1)).await;
    let (status, result) = e
        .run(
            json!({"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "inst1",
                    "target_node": "node3"}),
        )
        .await;
    assert_eq!(status, "error");
    assert!(
        result
            .to_string()
            .contains("cannot be migrated to arbitrary nodes"),
        "{result}"
    );
    // To its secondary it goes, named or not, and the copies swap roles.
    e.must(json!({"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "inst1"}))
        .await;
    let inst = e.instances()["inst1"].clone();
    let node2 = e
        .master
        .config
        .read()
        .node_by_name("node2")
        .unwrap()
        .uuid
        .clone();
    assert_eq!(inst["primary_node"], json!(node2));
    let disk_nodes = &inst["disks"][0]["nodes"];
    assert_eq!(disk_nodes.as_array().unwrap().len(), 2, "{disk_nodes}");
    assert_eq!(disk_nodes[0], json!(node2));
}

#[tokio::test]
async fn drbd_failover_migrate_and_remove_fail_cleanly_at_every_call() {
    fails_cleanly_at_every_call(
        || with_instance("drbd"),
        json!({"OP_ID": "OP_INSTANCE_FAILOVER", "instance_name": "inst1",
               "shutdown_timeout": 10}),
    )
    .await;
    fails_cleanly_at_every_call(
        || with_instance("drbd"),
        json!({"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "inst1", "mode": "live"}),
    )
    .await;
    fails_cleanly_at_every_call(
        || with_instance("drbd"),
        json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": "inst1",
               "ignore_failures": false, "shutdown_timeout": 10}),
    )
    .await;
}

#[tokio::test]
async fn instance_remove_fails_cleanly_at_every_call() {
    fails_cleanly_at_every_call(
        || with_instance("file"),
        json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": "inst1",
               "ignore_failures": false, "shutdown_timeout": 10}),
    )
    .await;
}

#[tokio::test]
async fn instance_shutdown_and_startup_fail_cleanly_at_every_call() {
    fails_cleanly_at_every_call(
        || with_instance("file"),
        json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1", "timeout": 10}),
    )
    .await;
    fails_cleanly_at_every_call(
        || async {
            let e = with_instance("file").await;
            e.must(json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1"}))
                .await;
            e
        },
        json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": "inst1"}),
    )
    .await;
}

/// `inst1` stopped, for the units that need it down.
async fn with_stopped_instance() -> Env {
    let e = with_instance("file").await;
    e.must(json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1"}))
        .await;
    e
}

#[tokio::test]
async fn instance_reinstall_fails_cleanly_at_every_call() {
    fails_cleanly_at_every_call(
        with_stopped_instance,
        json!({"OP_ID": "OP_INSTANCE_REINSTALL", "instance_name": "inst1"}),
    )
    .await;
}

#[tokio::test]
async fn instance_rename_fails_cleanly_at_every_call() {
    fails_cleanly_at_every_call(
        with_stopped_instance,
        json!({"OP_ID": "OP_INSTANCE_RENAME", "instance_name": "inst1",
               "new_name": "inst2", "name_check": false, "ip_check": false}),
    )
    .await;
}

#[tokio::test]
async fn instance_failover_fails_cleanly_at_every_call() {
    for template in ["sharedfile", "diskless"] {
        fails_cleanly_at_every_call(
            || with_instance(template),
            json!({"OP_ID": "OP_INSTANCE_FAILOVER", "instance_name": "inst1",
                   "target_node": "node2", "shutdown_timeout": 10}),
        )
        .await;
    }
}

#[tokio::test]
async fn instance_migrate_fails_cleanly_at_every_call() {
    for template in ["sharedfile", "diskless"] {
        fails_cleanly_at_every_call(
            || with_instance(template),
            json!({"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "inst1",
                   "target_node": "node2", "mode": "live"}),
        )
        .await;
    }
}

#[tokio::test]
async fn node_add_and_remove_fail_cleanly_at_every_call() {
    fails_cleanly_at_every_call(
        || async { env(2) },
        json!({"OP_ID": "OP_NODE_ADD", "node_name": "node3", "primary_ip": "127.0.0.3"}),
    )
    .await;
    fails_cleanly_at_every_call(
        || async { env(3) },
        json!({"OP_ID": "OP_NODE_REMOVE", "node_name": "node3"}),
    )
    .await;
}

#[tokio::test]
async fn a_failed_undo_is_named_in_the_error_and_what_it_left_is_the_only_leftover() {
    let e = env(2);
    // Calls: create disk 0, create disk 1, OS install (fails), then the
    // undo: remove disk 1 (fails), remove disk 0.
    e.nodes.fail_calls(&[3, 4]);
    let (status, result) = e.run(create("inst1", "node2", "file", 2)).await;
    assert_eq!(status, "error");
    let msg = result[1][0].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("Could not add os for instance inst1 on node node2"),
        "{msg}"
    );
    assert!(
        msg.contains("could not remove disk 1 on node node2"),
        "{msg}"
    );
    assert!(e.instances().is_empty());
    let orphans = e.orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert!(
        orphans[0].contains("made for inst1) on node2"),
        "{orphans:?}"
    );
}

#[tokio::test]
async fn recreate_disks_fails_cleanly_at_every_call() {
    // Making the disks again where they are leaves nothing anyway.
    fails_cleanly_at_every_call(
        with_stopped_instance,
        json!({"OP_ID": "OP_INSTANCE_RECREATE_DISKS", "instance_name": "inst1"}),
    )
    .await;
    // Moving them: until the commit a failure undoes the new copies; after
    // it, an old copy that cannot be removed fails the job, named.
    fails_cleanly_at_every_call(
        with_stopped_instance,
        json!({"OP_ID": "OP_INSTANCE_RECREATE_DISKS", "instance_name": "inst1",
               "nodes": ["node2"]}),
    )
    .await;
    // A running instance's disks are not made again.
    let e = with_instance("file").await;
    let (status, result) = e
        .run(json!({"OP_ID": "OP_INSTANCE_RECREATE_DISKS", "instance_name": "inst1"}))
        .await;
    assert_eq!(status, "error");
    assert!(result.to_string().contains("is running"), "{result}");
}

#[tokio::test]
async fn verify_disks_finds_the_instance_whose_mirror_lost_a_copy() {
    let e = with_instance("drbd").await;
    let verify = json!({"OP_ID": "OP_GROUP_VERIFY_DISKS", "group_name": "default"});
    let (status, result) = e.run(verify.clone()).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([{}, [], {}]));
    e.nodes.lose_disks("node2");
    let (_, result) = e.run(verify).await;
    assert_eq!(result, json!([{}, ["inst1"], {}]));
    // The cluster-wide opcode runs one such job per group.
    let (status, result) = e.run(json!({"OP_ID": "OP_CLUSTER_VERIFY_DISKS"})).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result["jobs"].as_array().map(Vec::len), Some(1), "{result}");
}

#[tokio::test]
async fn replace_disks_to_a_new_secondary_fails_cleanly_at_every_call() {
    let setup = || async {
        let e = env(3);
        e.must(create_drbd("inst1", "node1", "node2", 1)).await;
        e
    };
    let e = setup().await;
    e.must(
        json!({"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": "inst1",
                  "mode": "replace_new_secondary", "remote_node": "node3"}),
    )
    .await;
    let state = e.on_nodes();
    assert!(
        state.get("node2").is_none_or(|n| n.disks.is_empty()),
        "{state:?}"
    );
    assert_eq!(state["node3"].disks.len(), 1, "{state:?}");
    fails_cleanly_at_every_call(
        setup,
        json!({"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": "inst1",
               "mode": "replace_new_secondary", "remote_node": "node3"}),
    )
    .await;
}

#[tokio::test]
async fn replace_disks_refuses_what_it_cannot_do() {
    let e = with_instance("drbd").await;
    for (op, want) in [
        (
            json!({"mode": "replace_on_primary"}),
            "not supported by ganeti-rs yet",
        ),
        (
            json!({"mode": "replace_new_secondary"}),
            "either an iallocator script must be used",
        ),
        (
            json!({"mode": "replace_new_secondary", "remote_node": "node1"}),
            "is the primary node",
        ),
        (
            json!({"mode": "replace_new_secondary", "remote_node": "node2"}),
            "already the secondary",
        ),
        (
            json!({"mode": "replace_on_secondary", "remote_node": "node2"}),
            "only be used when changing",
        ),
        (
            json!({"mode": "replace_auto", "disks": [0]}),
            "Cannot specify disks",
        ),
    ] {
        let mut op = op;
        op["OP_ID"] = json!("OP_INSTANCE_REPLACE_DISKS");
        op["instance_name"] = json!("inst1");
        let (status, result) = e.run(op.clone()).await;
        assert_eq!(status, "error", "{op}");
        assert!(result.to_string().contains(want), "{op}: {result}");
    }
    let file = env(2);
    file.must(create("inst2", "node1", "file", 1)).await;
    let (_, result) = file
        .run(
            json!({"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": "inst2",
                    "mode": "replace_on_secondary"}),
        )
        .await;
    assert!(
        result
            .to_string()
            .contains("only run replace disks for DRBD8"),
        "{result}"
    );
}

/// `OP_NODE_SET_PARAMS` for node `name` with `fields`.
fn node_modify(name: &str, fields: Value) -> Value {
    let mut op = json!({"OP_ID": "OP_NODE_SET_PARAMS", "node_name": name});
    if let (Some(op), Some(f)) = (op.as_object_mut(), fields.as_object()) {
        op.extend(f.clone());
    }
    op
}

#[tokio::test]
async fn undraining_a_node_promotes_it_back_when_the_candidate_pool_is_short() {
    let e = env(3);
    let mc = |name: &str| {
        e.master
            .config
            .read()
            .node_by_name(name)
            .map(|n| (n.master_candidate, n.drained))
    };
    assert_eq!(mc("node3"), Some((true, false)));
    let (status, result) = e.run(node_modify("node3", json!({"drained": true}))).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([["master_candidate", "False"], ["drained", "True"]])
    );
    assert_eq!(mc("node3"), Some((false, true)));
    let (status, result) = e.run(node_modify("node3", json!({"drained": false}))).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([["master_candidate", "True"], ["drained", "False"]])
    );
    assert_eq!(mc("node3"), Some((true, false)));
}

#[tokio::test]
async fn demoting_a_candidate_below_the_pool_size_needs_auto_promote() {
    let e = env(3);
    e.master
        .config
        .commit({
            let mut cfg = e.master.config.read().cluster.clone();
            cfg.candidate_pool_size = 2;
            let mut ch = Changes::new();
            ch.cluster(cfg);
            ch
        })
        .unwrap();
    // Three candidates for a pool of two: node2 may step down (node1 and
    // node3 remain); then draining node3 would leave one, unless node2 is
    // promoted again.
    let (status, result) = e
        .run(node_modify("node2", json!({"master_candidate": false})))
        .await;
    assert_eq!(status, "success", "{result}");
    let (status, result) = e.run(node_modify("node3", json!({"drained": true}))).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result.to_string().contains("Not enough master candidates"),
        "{result}"
    );
    let (status, result) = e
        .run(node_modify(
            "node3",
            json!({"drained": true, "auto_promote": true}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    let cfg = e.master.config.read();
    let node2 = cfg.node_by_name("node2").unwrap();
    assert!(node2.master_candidate, "auto_promote refilled the pool");
}

#[tokio::test]
async fn unsetting_a_flag_that_is_not_set_changes_nothing() {
    let e = env(2);
    let (status, result) = e.run(node_modify("node2", json!({"offline": false}))).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([]));
    let (status, result) = e.run(node_modify("node2", json!({"powered": false}))).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result
            .to_string()
            .contains("does not support out-of-band handling"),
        "{result}"
    );
}

#[tokio::test]
async fn create_refuses_what_the_instance_policy_forbids_unless_told_to_ignore_it() {
    let e = env(2);
    let mut op = create("inst1", "node1", "file", 1);
    op["disks"] = json!([{"size": 64}]);
    let (status, result) = e.run(op.clone()).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result.to_string().contains(
            "Instance allocation to group g (default) violates policy: \
             disk-size/0 value 64 is not in range [1024, 1048576]"
        ),
        "{result}"
    );
    assert!(e.instances().is_empty());
    op["ignore_ipolicy"] = json!(true);
    e.must(op).await;
}

#[tokio::test]
async fn a_diskless_instance_is_created_without_running_the_os_scripts() {
    let e = env(2);
    let mut op = create("inst1", "node1", "diskless", 0);
    op["disks"] = json!([]);
    let before = e.nodes.call_count();
    e.must(op).await;
    let calls = e.nodes.calls()[before..].to_vec();
    assert!(
        !calls.iter().any(|c| c.contains("os_add")),
        "no OS script ran: {calls:?}"
    );
}

#[tokio::test]
async fn a_jobs_input_shows_the_uuids_its_names_resolved_to() {
    let e = env(2);
    e.must(create("inst1", "node1", "file", 1)).await;
    let uuid = e
        .master
        .config
        .read()
        .instance_by_name("inst1")
        .map(|i| i.uuid.clone())
        .unwrap();
    let op = json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1",
                    "instance_uuid": null, "admin_state_source": null});
    let id = e.queue.submit(vec![op]).await.unwrap();
    let fields = vec!["status".to_string(), "ops".to_string()];
    let mut prev = Value::Null;
    let ops = loop {
        let r = e
            .queue
            .wait_for_job_change(id, &fields, prev.clone(), json!(0), Duration::from_secs(10))
            .await
            .unwrap();
        if r == json!("nochange") {
            continue;
        }
        if r[0][0] == json!("success") {
            break r[0][1].clone();
        }
        prev = r[0].clone();
    };
    assert_eq!(ops[0]["instance_uuid"], json!(uuid), "{ops}");
    assert_eq!(ops[0]["admin_state_source"], json!("admin"), "{ops}");
}

/// `OP_INSTANCE_SET_PARAMS` of `inst1` with `fields`.
fn modify(fields: Value) -> Value {
    let mut op = json!({"OP_ID": "OP_INSTANCE_SET_PARAMS", "instance_name": "inst1"});
    for (k, v) in fields.as_object().unwrap() {
        op[k] = v.clone();
    }
    op
}

/// `inst1` (of `template`) stopped.
async fn stopped(template: &str) -> Env {
    let e = with_instance(template).await;
    e.must(json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1"}))
        .await;
    e
}

/// The disks of `inst1` in the configuration: (iv_name, size, uuid).
fn disks_of(e: &Env) -> Vec<(String, u64, String)> {
    let cfg = e.master.config.read();
    let inst = cfg.instance_by_name("inst1").unwrap();
    inst.disks
        .iter()
        .map(|d| (d.iv_name.clone(), d.size, d.uuid.clone()))
        .collect()
}

#[tokio::test]
async fn adding_and_removing_disks_fails_cleanly_at_every_call() {
    for template in ["file", "drbd"] {
        // Added to a running instance, for its next start.
        fails_cleanly_at_every_call(
            || with_instance(template),
            modify(json!({"disks": [["add", -1, {"size": 1024}]]})),
        )
        .await;
        fails_cleanly_at_every_call(
            || stopped(template),
            modify(json!({"disks": [["add", 0, {"size": 1024, "mode": "ro"}]]})),
        )
        .await;
        fails_cleanly_at_every_call(
            || async {
                let e = stopped(template).await;
                e.must(modify(json!({"disks": [["add", -1, {"size": 1024}]]})))
                    .await;
                e
            },
            modify(json!({"disks": [["remove", 0, {}]]})),
        )
        .await;
    }
}

#[tokio::test]
async fn a_disk_added_and_removed_lands_where_asked_on_every_node_of_the_instance() {
    let e = stopped("drbd").await;
    let (status, result) = e
        .run(modify(
            json!({"disks": [["add", 0, {"size": 2048, "name": "scratch"}]]}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([["disk/0", "add:size=2048,mode=rw"]]));
    let disks = disks_of(&e);
    assert_eq!(
        disks
            .iter()
            .map(|d| (d.0.as_str(), d.1))
            .collect::<Vec<_>>(),
        [("disk/0", 2048), ("disk/1", 1024)]
    );
    let state = e.on_nodes();
    for node in ["node1", "node2"] {
        assert!(
            state[node].disks.contains_key(&disks[0].2),
            "{node} holds the new mirrored disk: {state:?}"
        );
    }
    let pool_before = e.master.config.read().cluster.tcpudp_port_pool.len();
    let (status, result) = e
        .run(modify(json!({"disks": [["remove", "scratch", {}]]})))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([["disk/0", "remove"]]));
    let after = disks_of(&e);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, "disk/0", "renumbered");
    assert_eq!(after[0].2, disks[1].2);
    let state = e.on_nodes();
    for node in ["node1", "node2"] {
        assert!(!state[node].disks.contains_key(&disks[0].2), "{state:?}");
    }
    assert_eq!(
        e.master.config.read().cluster.tcpudp_port_pool.len(),
        pool_before + 1,
        "the removed disk's port went back to the pool"
    );
    assert_eq!(e.orphans(), Vec::<String>::new());
}

#[tokio::test]
async fn disk_changes_refuse_what_ganeti_refuses() {
    let e = with_instance("file").await;
    let refused = |r: (String, Value), what: &str| {
        assert_eq!(r.0, "error", "{}", r.1);
        assert!(r.1.to_string().contains(what), "{what}: {}", r.1);
    };
    refused(
        e.run(modify(json!({"disks": [["remove", 0, {}]]}))).await,
        "can't remove volume from a running instance without using hotplug",
    );
    refused(
        e.run(modify(json!({"disks": [["add", 5, {"size": 1024}]]})))
            .await,
        "Got disk index 5, but there are only 1",
    );
    refused(
        e.run(modify(json!({"disks": [["modify", 0, {"size": 2048}]]})))
            .await,
        "use grow-disk",
    );
    refused(
        e.run(modify(
            json!({"disks": [["add", -1, {"size": 1024, "name": "a"}],
                                       ["add", -1, {"size": 1024, "name": "a"}]]}),
        ))
        .await,
        "disk name 'a' already used",
    );
    refused(
        e.run(modify(json!({"disks": [["add", -1, {"size": 16}]]})))
            .await,
        "violates policy",
    );
    refused(
        e.run(modify(
            json!({"hotplug": true, "disks": [["add", -1, {"size": 1024}]]}),
        ))
        .await,
        "Hotplug is not possible",
    );
    // Nothing of the refused changes was made.
    assert_eq!(disks_of(&e).len(), 1);
    assert_eq!(e.orphans(), Vec::<String>::new());
    let d = e.run(modify(
        json!({"disks": [["modify", 0, {"mode": "ro", "name": "root"}]]}),
    ));
    assert_eq!(
        d.await.1,
        json!([["disk.mode/0", "ro"], ["disk.name/0", "root"]])
    );
}

/// `inst1` (file disks, running) made a kvm instance.
async fn kvm_instance() -> Env {
    let e = with_instance("file").await;
    let mut inst = e
        .master
        .config
        .read()
        .instance_by_name("inst1")
        .unwrap()
        .clone();
    inst.hypervisor = objects::Hypervisor::Kvm;
    let mut ch = Changes::new();
    ch.instance(inst);
    e.master.config.commit(ch).unwrap();
    e
}

impl Env {
    /// The log messages of the last job.
    fn last_log(&self) -> Vec<String> {
        let jobs = self
            .queue
            .query_jobs(None, &["id".to_string(), "oplog".to_string()])
            .unwrap();
        let last = jobs
            .into_iter()
            .flatten()
            .max_by_key(|j| j[0].as_u64())
            .unwrap();
        last[1][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l[3].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn hotplugs(&self, node: &str) -> Vec<String> {
        self.on_nodes()
            .get(node)
            .map(|s| s.hotplugs.clone())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn hotplug_adds_and_removes_disks_and_nics_of_a_running_kvm_instance() {
    let e = kvm_instance().await;
    let (status, result) = e
        .run(modify(
            json!({"hotplug": true, "disks": [["add", -1, {"size": 1024}]]}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([
            ["disk/1", "add:size=1024,mode=rw"],
            ["disk/1", "hotplug:done"]
        ])
    );
    assert_eq!(
        e.last_log(),
        [
            " - INFO: Trying to hotplug device...",
            " - INFO: Hotplug done."
        ]
    );
    assert_eq!(e.hotplugs("node1"), vec!["hotadd disk 1 inst1"]);

    // Removing a disk of a running instance is allowed with hotplug.
    let (status, result) = e
        .run(modify(
            json!({"hotplug": true, "disks": [["remove", 1, {}]]}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([["disk/1", "remove"], ["disk/1", "hotplug:done"]])
    );
    assert_eq!(disks_of(&e).len(), 1);

    for op in [
        json!(["add", -1, {"mac": "aa:00:00:11:22:33"}]),
        json!(["modify", 1, {"link": "br1"}]),
        json!(["remove", 1, {}]),
    ] {
        let (status, result) = e.run(modify(json!({"hotplug": true, "nics": [op]}))).await;
        assert_eq!(status, "success", "{op}: {result}");
        let last = result.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last[1], "hotplug:done", "{op}: {result}");
    }
    assert_eq!(
        e.hotplugs("node1"),
        vec![
            "hotadd disk 1 inst1",
            "hotdel disk 1 inst1",
            "hotadd nic 1 inst1",
            "hotmod nic 1 inst1",
            "hotdel nic 1 inst1"
        ]
    );
    assert_eq!(e.orphans(), Vec::<String>::new());
}

#[tokio::test]
async fn a_disk_that_cannot_be_unplugged_is_kept_and_a_nic_change_goes_on() {
    let remove = modify(json!({"hotplug": true, "disks": [["remove", 0, {}]]}));
    // Which call is the hotplug, in a run that succeeds.
    let e = kvm_instance().await;
    let start = e.nodes.call_count();
    e.must(remove.clone()).await;
    let n = e.nodes.calls()[start..]
        .iter()
        .position(|c| c == "node1:hotplug_device")
        .unwrap()
        + 1;

    let e = kvm_instance().await;
    e.nodes.fail_call(n);
    let (status, result) = e.run(remove).await;
    assert_eq!(status, "error");
    assert!(
        result
            .to_string()
            .contains("Disk 0 of instance inst1 is kept"),
        "{result}"
    );
    assert_eq!(disks_of(&e).len(), 1);
    assert_eq!(e.orphans(), Vec::<String>::new());

    // A NIC whose hotplug fails is changed for the next start, as Ganeti's.
    let start = e.nodes.call_count();
    e.must(modify(json!({"hotplug": true, "nics": [["add", -1, {}]]})))
        .await;
    let n = e.nodes.calls()[start..]
        .iter()
        .position(|c| c == "node1:hotplug_device")
        .unwrap()
        + 1;
    e.nodes.fail_call(n);
    let (status, result) = e
        .run(modify(json!({"hotplug": true, "nics": [["add", -1, {}]]})))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result[1], json!(["nic.2", "hotplug:failed"]), "{result}");
    assert!(e
        .last_log()
        .iter()
        .any(|l| l.starts_with(" - WARNING: Could not hotplug device: ")));
}

#[tokio::test]
async fn hotplug_is_refused_or_skipped_where_it_is_not_possible() {
    // A hypervisor without hotplug: refused with --hotplug...
    let e = with_instance("file").await;
    let (status, result) = e
        .run(modify(json!({"hotplug": true, "nics": [["add", -1, {}]]})))
        .await;
    assert_eq!(status, "error");
    assert!(
        result.to_string().contains(
            "Hotplug is not possible: Hotplug is not supported: Hotplug is not supported by \
             this hypervisor"
        ),
        "{result}"
    );
    // ... made at the next start with --hotplug-if-possible.
    let (status, result) = e
        .run(modify(
            json!({"hotplug_if_possible": true, "nics": [["add", -1, {}]]}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        e.last_log(),
        [
            " - WARNING: Hotplug is not supported: Hotplug is not supported by this hypervisor",
            " - INFO: Modification will take place without hotplugging."
        ]
    );
    assert!(e.hotplugs("node1").is_empty());

    // A stopped kvm instance.
    let e = kvm_instance().await;
    e.must(json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1"}))
        .await;
    let (status, result) = e
        .run(modify(
            json!({"hotplug": true, "disks": [["add", -1, {"size": 1024}]]}),
        ))
        .await;
    assert_eq!(status, "error");
    assert!(
        result.to_string().contains("Instance is probably down"),
        "{result}"
    );
    assert_eq!(disks_of(&e).len(), 1, "nothing was added");
    let (status, result) = e
        .run(modify(
            json!({"hotplug_if_possible": true, "disks": [["remove", 0, {}]]}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([["disk/0", "remove"]]));
    assert!(e.hotplugs("node1").is_empty());
}

#[tokio::test]
async fn nics_are_added_changed_and_removed_with_ganetis_change_descriptions() {
    let e = with_instance("file").await;
    let (status, result) = e
        .run(modify(
            json!({"nics": [["add", -1, {"mac": "aa:00:00:11:22:33",
                                                  "ip": "192.0.2.10", "name": "eth1"}]]}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([[
            "nic.1",
            "add:mac=aa:00:00:11:22:33,ip=192.0.2.10,mode=bridged,link=xen-br0,network=None"
        ]])
    );
    let (_, result) = e
        .run(modify(
            json!({"nics": [["modify", "eth1", {"ip": "none", "link": "br7"}]]}),
        ))
        .await;
    assert_eq!(
        result,
        json!([
            ["nic.ip/1", null],
            ["nic.link/1", "br7"],
            ["nic.mode/1", "bridged"],
            ["nic.vlan/1", ""]
        ]),
    );
    let nics = || {
        e.master
            .config
            .read()
            .instance_by_name("inst1")
            .unwrap()
            .nics
            .clone()
    };
    assert_eq!(nics()[1].ip, None);
    assert_eq!(nics()[1].nicparams.get("link"), Some(&json!("br7")));
    let refused = |r: (String, Value), what: &str| {
        assert_eq!(r.0, "error", "{}", r.1);
        assert!(r.1.to_string().contains(what), "{what}: {}", r.1);
    };
    refused(
        e.run(modify(
            json!({"nics": [["add", -1, {"mac": "aa:00:00:11:22:33"}]]}),
        ))
        .await,
        "MAC address 'aa:00:00:11:22:33' already in use in cluster",
    );
    refused(
        e.run(modify(json!({"nics": [["add", -1, {"network": "net1"}]]})))
            .await,
        "Network 'net1' not found",
    );
    refused(
        e.run(modify(json!({"nics": [["modify", 0, {"mode": "routed"}]]})))
            .await,
        "Cannot set the NIC IP address to None on a routed NIC",
    );
    let (status, result) = e.run(modify(json!({"nics": [["remove", 0, {}]]}))).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([["NIC/0", "remove"]]));
    assert_eq!(nics().len(), 1);
    assert_eq!(nics()[0].name.as_deref(), Some("eth1"));
}

#[tokio::test]
async fn template_conversions_fail_cleanly_at_every_call() {
    let to_drbd = modify(json!({"disk_template": "drbd", "remote_node": "node2"}));
    let n = fails_cleanly_at_every_call(|| stopped("file"), to_drbd.clone()).await;
    assert!(n >= 5, "the conversion made {n} calls");
    fails_cleanly_at_every_call(|| stopped("drbd"), modify(json!({"disk_template": "file"}))).await;
    fails_cleanly_at_every_call(
        || stopped("file"),
        modify(json!({"disk_template": "sharedfile"})),
    )
    .await;
}

#[tokio::test]
async fn a_conversion_to_drbd_copies_on_the_primary_and_leaves_only_the_new_disks() {
    let e = stopped("file").await;
    let old = disks_of(&e);
    let before = e.nodes.call_count();
    let (status, result) = e
        .run(modify(
            json!({"disk_template": "drbd", "remote_node": "node2"}),
        ))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([["disk_template", "drbd"]]));
    let calls = e.nodes.calls()[before..].to_vec();
    assert!(
        calls.contains(&"node1:blockdev_convert".to_string()),
        "{calls:?}"
    );
    let new = disks_of(&e);
    assert_eq!(new.len(), 1);
    assert_ne!(new[0].2, old[0].2, "a new disk");
    assert_eq!(new[0].1, old[0].1, "of the same size");
    let state = e.on_nodes();
    assert_eq!(state["node1"].disks.keys().collect::<Vec<_>>(), [&new[0].2]);
    assert_eq!(state["node2"].disks.keys().collect::<Vec<_>>(), [&new[0].2]);
    let cfg = e.master.config.read();
    let inst = cfg.instance_by_name("inst1").unwrap();
    assert_eq!(inst.disk_template, objects::DiskTemplate::Drbd);
    assert_eq!(inst.secondary_nodes(), ["n2"]);
}

#[tokio::test]
async fn conversions_refuse_what_ganeti_refuses() {
    let e = with_instance("file").await;
    let refused = |r: (String, Value), what: &str| {
        assert_eq!(r.0, "error", "{}", r.1);
        assert!(r.1.to_string().contains(what), "{what}: {}", r.1);
    };
    refused(
        e.run(modify(
            json!({"disk_template": "drbd", "remote_node": "node2"}),
        ))
        .await,
        "is marked to be up, cannot change disk template",
    );
    e.must(json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1"}))
        .await;
    refused(
        e.run(modify(json!({"disk_template": "drbd"}))).await,
        "needs the new secondary node",
    );
    refused(
        e.run(modify(
            json!({"disk_template": "drbd", "remote_node": "node1"}),
        ))
        .await,
        "is the same as the primary node",
    );
    refused(
        e.run(modify(json!({"disk_template": "file"}))).await,
        "Instance already has disk template file",
    );
    refused(
        e.run(modify(json!({"disk_template": "plain"}))).await,
        "is not enabled for this cluster",
    );
    refused(
        e.run(modify(json!({"disk_template": "diskless"}))).await,
        "Conversion to the 'diskless' disk template is not supported",
    );
    refused(
        e.run(modify(
            json!({"disk_template": "drbd", "remote_node": "node2",
                             "disks": [["add", -1, {"size": 1024}]]}),
        ))
        .await,
        "Disk template conversion and other disk changes not supported at the same time",
    );
    refused(
        e.run(modify(
            json!({"remote_node": "node2", "beparams": {"vcpus": 2}}),
        ))
        .await,
        "only used by a disk template conversion",
    );
    assert_eq!(e.orphans(), Vec::<String>::new());
    assert_eq!(
        e.master
            .config
            .read()
            .instance_by_name("inst1")
            .unwrap()
            .disk_template,
        objects::DiskTemplate::File
    );
}

fn move_to(node: &str) -> Value {
    json!({"OP_ID": "OP_INSTANCE_MOVE", "instance_name": "inst1", "target_node": node})
}

#[tokio::test]
async fn instance_move_fails_cleanly_at_every_call() {
    let n = fails_cleanly_at_every_call(|| with_instance("file"), move_to("node2")).await;
    assert!(n >= 8, "the move made {n} calls");
    fails_cleanly_at_every_call(|| stopped("file"), move_to("node2")).await;
}

#[tokio::test]
async fn a_moved_instance_runs_on_the_target_with_its_disks_only_there() {
    let e = with_instance("file").await;
    let before = e.nodes.call_count();
    e.must(move_to("node2")).await;
    let calls = e.nodes.calls()[before..].to_vec();
    let order: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| {
            c.contains("instance_shutdown")
                || c.contains("disk_")
                || c.contains("blockdev_create")
                || c.contains("blockdev_remove")
                || c.contains("instance_start")
        })
        .collect();
    assert_eq!(
        order,
        [
            "node1:instance_shutdown",
            "node2:blockdev_create",
            "node1:disk_export_start",
            "node2:disk_import",
            "node1:disk_export_stop",
            "node1:blockdev_remove",
            "node2:instance_start"
        ]
    );
    let state = e.on_nodes();
    let disk = disks_of(&e)[0].2.clone();
    assert!(state["node2"].disks.contains_key(&disk));
    assert!(
        !state.contains_key("node1"),
        "node1 holds nothing: {state:?}"
    );
    assert!(state["node2"].running.contains_key("inst1"));
    let cfg = e.master.config.read();
    let inst = cfg.instance_by_name("inst1").unwrap();
    assert_eq!(inst.primary_node, "n2");
    assert_eq!(inst.disks[0].nodes, ["n2"]);
    let pool = &cfg.cluster.tcpudp_port_pool;
    assert!(!pool.is_empty(), "the copy's port went back to the pool");
}

#[tokio::test]
async fn instance_move_refuses_what_ganeti_refuses() {
    let refused = |r: (String, Value), what: &str| {
        assert_eq!(r.0, "error", "{}", r.1);
        assert!(r.1.to_string().contains(what), "{what}: {}", r.1);
    };
    let e = with_instance("drbd").await;
    refused(
        e.run(move_to("node2")).await,
        "Instance disk 0 has disk type drbd and is not suitable for copying",
    );
    let e = with_instance("file").await;
    refused(
        e.run(move_to("node1")).await,
        "Instance inst1 is already on the node node1",
    );
    refused(e.run(move_to("node9")).await, "node9");
    let mut op = move_to("node2");
    op["compress"] = json!("gzip");
    refused(e.run(op).await, "Compression 'gzip'");
    assert_eq!(e.orphans(), Vec::<String>::new());
}

#[tokio::test]
async fn read_opcodes_answer_what_the_luxi_read_calls_answer() {
    let e = with_instance("file").await;
    let (status, r) = e
        .run(
            json!({"OP_ID": "OP_QUERY", "what": "instance", "fields": ["name", "pnode"],
                    "qfilter": ["=", "name", "inst1"]}),
        )
        .await;
    assert_eq!(status, "success", "{r}");
    assert_eq!(r["data"], json!([[[0, "inst1"], [0, "node1"]]]));
    assert_eq!(r["fields"][1]["name"], json!("pnode"));
    let (_, r) = e
        .run(json!({"OP_ID": "OP_QUERY_FIELDS", "what": "node", "fields": ["name"]}))
        .await;
    assert_eq!(r["fields"][0]["name"], json!("name"));
    let (_, r) = e.run(json!({"OP_ID": "OP_CLUSTER_QUERY"})).await;
    assert_eq!(r["name"], json!("cluster.example.com"));
    assert_eq!(r["master"], json!("node1"));
    let (_, r) = e
        .run(json!({"OP_ID": "OP_CLUSTER_CONFIG_QUERY",
                    "output_fields": ["cluster_name", "master_node"]}))
        .await;
    assert_eq!(r, json!(["cluster.example.com", "node1"]));
    let (status, r) = e
        .run(json!({"OP_ID": "OP_QUERY", "what": "nosuch", "fields": ["name"]}))
        .await;
    assert_eq!(status, "error");
    assert!(r.to_string().contains("unknown resource"), "{r}");
    let (status, r) = e
        .run(json!({"OP_ID": "OP_CLUSTER_CONFIG_QUERY", "output_fields": ["bogus"]}))
        .await;
    assert_eq!(status, "error");
    assert!(r.to_string().contains("bogus"), "{r}");
    let err = e
        .queue
        .submit(vec![
            json!({"OP_ID": "OP_QUERY", "what": "node", "fields": ["name"],
                            "use_locking": true}),
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("use_locking"), "{err}");
}

#[tokio::test]
async fn the_console_of_a_running_instance_is_its_hypervisors_and_a_stopped_one_has_none() {
    let e = with_instance("file").await;
    let op = json!({"OP_ID": "OP_INSTANCE_CONSOLE", "instance_name": "inst1"});
    let (status, r) = e.run(op.clone()).await;
    assert_eq!(status, "success", "{r}");
    assert_eq!(r["instance"], json!("inst1"));
    assert_eq!(r["kind"], json!("msg"));
    e.must(json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": "inst1"}))
        .await;
    let (status, r) = e.run(op).await;
    assert_eq!(status, "error");
    assert!(
        r.to_string()
            .contains("Instance inst1 is not running (state ADMIN_down)"),
        "{r}"
    );
}

#[tokio::test]
async fn a_multi_allocation_with_nodes_given_submits_one_create_job_each() {
    let e = env(2);
    let mut a = create("a1", "node1", "file", 1);
    let mut b = create("b1", "node2", "file", 1);
    for op in [&mut a, &mut b] {
        op.as_object_mut().unwrap().remove("OP_ID");
    }
    let (status, r) = e
        .run(json!({"OP_ID": "OP_INSTANCE_MULTI_ALLOC", "instances": [a, b]}))
        .await;
    assert_eq!(status, "success", "{r}");
    assert_eq!(r["allocatable"], json!(["a1", "b1"]));
    assert_eq!(r["failed"], json!([]));
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for j in jobs {
        assert_eq!(j[0], json!(true), "{r}");
        let id = j[1].as_u64().unwrap();
        let mut prev = Value::Null;
        loop {
            let st = e
                .queue
                .wait_for_job_change(
                    id,
                    &["status".into()],
                    prev.clone(),
                    json!(0),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            if st == json!("nochange") {
                continue;
            }
            if st[0][0] == json!("success") {
                break;
            }
            assert_ne!(st[0][0], json!("error"), "{st}");
            prev = st[0].clone();
        }
    }
    let names: Vec<String> = e.instances().into_keys().collect();
    assert_eq!(names, ["a1", "b1"]);
    let dup = create("a1", "node1", "file", 1);
    let (status, r) = e
        .run(json!({"OP_ID": "OP_INSTANCE_MULTI_ALLOC", "instances": [dup.clone(), dup]}))
        .await;
    assert_eq!(status, "error");
    assert!(
        r.to_string().contains("duplicate instance names: a1"),
        "{r}"
    );
}

#[tokio::test]
async fn the_policys_bounds_and_standard_specs_change_and_are_checked() {
    let e = env(2);
    let spec = |mem: u64, disk: u64| {
        json!({"cpu-count": 1, "disk-count": 1, "disk-size": disk, "memory-size": mem,
               "nic-count": 1, "spindle-use": 1})
    };
    let set = |ip: Value| json!({"OP_ID": "OP_CLUSTER_SET_PARAMS", "ipolicy": ip});
    let refused = |r: (String, Value), what: &str| {
        assert_eq!(r.0, "error", "{}", r.1);
        assert!(r.1.to_string().contains(what), "{what}: {}", r.1);
    };
    refused(
        e.run(set(
            json!({"minmax": [{"min": spec(512, 1024), "max": spec(256, 2048)}]}),
        ))
        .await,
        "Invalid instance policy: Invalid specification of min/max values for memory-size: \
         512/256",
    );
    refused(
        e.run(set(json!({"minmax": [{"min": spec(128, 1024)}]})))
            .await,
        "Missing instance specification",
    );
    refused(
        e.run(set(json!({"std": {"memory-size": 1 << 30}}))).await,
        "Invalid std specifications",
    );
    refused(
        e.run(set(json!({"std": {"bogus": 1}}))).await,
        "Unknown parameter 'bogus'",
    );
    let before = e.master.config.read().cluster.ipolicy.clone();
    assert_eq!(
        e.master.config.read().cluster.ipolicy,
        before,
        "nothing changed"
    );
    // (This test cluster's policy allows every template: narrowed to the
    // enabled ones, as Ganeti's init does.)
    e.must(set(json!({
        "minmax": [{"min": spec(128, 2048), "max": spec(4096, 8192)}],
        "std": {"disk-size": 4096},
        "disk-templates": ["file", "sharedfile", "diskless", "drbd"],
    })))
    .await;
    let ip = e.master.config.read().cluster.ipolicy.clone();
    assert_eq!(ip["minmax"][0]["min"]["disk-size"], json!(2048));
    assert_eq!(ip["std"]["disk-size"], json!(4096));
    assert_eq!(
        ip["std"]["memory-size"], before["std"]["memory-size"],
        "the other standard specs stay"
    );
    // The new bounds apply: a 1 GiB disk is now too small.
    let (status, r) = e.run(create("inst1", "node1", "file", 1)).await;
    assert_eq!(status, "error");
    assert!(r.to_string().contains("disk-size"), "{r}");
}
