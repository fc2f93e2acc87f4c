//! `OP_OOB_COMMAND` and `OP_NODE_POWERCYCLE` against fake nodes, whose
//! out-of-band programs answer as healthy, powered machines (or fail, for a
//! program named `*fail`, or print junk, for `*junk`).

use serde_json::{json, Value};

use super::{env, Env};
use crate::config::Changes;

/// Sets the `oob_program` ndparam of the cluster (`None`) or of a node.
fn set_oob(e: &Env, node: Option<&str>, program: &str) {
    let mut ch = Changes::new();
    let cfg = e.master.config.read().clone();
    match node {
        None => {
            let mut c = cfg.cluster.clone();
            c.ndparams.insert("oob_program".into(), json!(program));
            ch.cluster(c);
        }
        Some(name) => {
            let mut n = cfg.node_by_name(name).unwrap().clone();
            n.ndparams.insert("oob_program".into(), json!(program));
            ch.node(n);
        }
    }
    e.master.config.commit(ch).unwrap();
}

fn oob(command: &str, nodes: &[&str], extra: Value) -> Value {
    let mut op = json!({"OP_ID": "OP_OOB_COMMAND", "command": command, "node_names": nodes,
                        "power_delay": 0.0});
    for (k, v) in extra.as_object().unwrap() {
        op[k] = v.clone();
    }
    op
}

fn powered(e: &Env, name: &str) -> bool {
    e.master.config.read().node_by_name(name).unwrap().powered
}

#[tokio::test]
async fn status_and_health_run_the_program_on_the_master_and_answer_per_node() {
    let e = env(3);
    set_oob(&e, None, "/usr/lib/oob");
    let (status, result) = e
        .run(oob("power-status", &["node3", "node2"], json!({})))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([[[0, "node2"], [0, {"powered": true}]], [[0, "node3"], [0, {"powered": true}]]])
    );
    let calls = e.nodes.calls();
    assert_eq!(
        calls,
        vec!["node1:run_oob", "node1:run_oob"],
        "the master runs them"
    );
    let (status, result) = e.run(oob("health", &[], json!({}))).await;
    assert_eq!(status, "success", "{result}");
    let rows = result.as_array().unwrap();
    assert_eq!(rows.len(), 3, "every node, the master too: {result}");
    assert_eq!(
        rows[0],
        json!([[0, "node1"], [0, [["disk0", "OK"], ["fan1", "WARNING"]]]])
    );
}

#[tokio::test]
async fn power_off_needs_an_offline_node_or_ignore_status_and_clears_powered() {
    let e = env(3);
    set_oob(&e, None, "/usr/lib/oob");
    let (status, result) = e.run(oob("power-off", &["node2"], json!({}))).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result
            .to_string()
            .contains("Cannot power off node node2 because it is not marked offline"),
        "{result}"
    );
    assert!(powered(&e, "node2"));
    let (status, result) = e
        .run(oob("power-off", &["node2"], json!({"ignore_status": true})))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([[[0, "node2"], [0, null]]]));
    assert!(!powered(&e, "node2"));
    let (status, result) = e.run(oob("power-on", &["node2"], json!({}))).await;
    assert_eq!(status, "success", "{result}");
    assert!(powered(&e, "node2"));
}

#[tokio::test]
async fn power_off_and_cycle_refuse_the_master_and_skip_it_when_no_node_is_named() {
    let e = env(2);
    set_oob(&e, None, "/usr/lib/oob");
    for command in ["power-off", "power-cycle"] {
        let (status, result) = e
            .run(oob(command, &["node1"], json!({"ignore_status": true})))
            .await;
        assert_eq!(status, "error", "{result}");
        let want = format!(
            "Operating on the master node node1 is not allowed for {command}; run \
             '/usr/lib/oob {command} node1' if you want to operate on the master regardless"
        );
        assert!(result.to_string().contains(&want), "{result}");
    }
    let (status, result) = e
        .run(oob("power-cycle", &[], json!({"ignore_status": true})))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([[[0, "node2"], [0, null]]]));
    assert!(powered(&e, "node1"));
}

#[tokio::test]
async fn nodes_without_a_program_are_unavailable_and_failing_programs_give_no_data() {
    let e = env(4);
    set_oob(&e, Some("node2"), "/usr/lib/oob-fail");
    set_oob(&e, Some("node3"), "/usr/lib/oob-junk");
    set_oob(&e, Some("node4"), "/usr/lib/oob");
    let (status, result) = e.run(oob("power-status", &[], json!({}))).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([
            [[0, "node1"], [3, null]],
            [[0, "node2"], [2, null]],
            [[0, "node3"], [2, null]],
            [[0, "node4"], [0, {"powered": true}]],
        ])
    );
}

#[tokio::test]
async fn unknown_commands_and_nodes_are_refused() {
    let e = env(2);
    let (status, result) = e.run(oob("reboot", &["node2"], json!({}))).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result
            .to_string()
            .contains("Invalid out-of-band command 'reboot'"),
        "{result}"
    );
    let (status, result) = e.run(oob("health", &["node9"], json!({}))).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result.to_string().contains("Node 'node9' not known"),
        "{result}"
    );
}

#[tokio::test]
async fn powercycle_asks_the_node_and_refuses_the_master_unless_forced() {
    let e = env(2);
    let op = |node: &str, force: bool| json!({"OP_ID": "OP_NODE_POWERCYCLE", "node_name": node, "force": force});
    let (status, result) = e.run(op("node1", false)).await;
    assert_eq!(status, "error", "{result}");
    assert!(
        result
            .to_string()
            .contains("The node is the master and the force parameter was not set"),
        "{result}"
    );
    let (status, result) = e.run(op("node2", false)).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!("Fake powercycle recorded"));
    assert_eq!(e.nodes.calls(), vec!["node2:node_powercycle"]);
    let (status, _) = e.run(op("node1", true)).await;
    assert_eq!(status, "success");
}
