//! Exports and imports (`OP_BACKUP_*`, `OP_INSTANCE_CREATE` in import
//! mode) against fake nodes, whose exports are directories of files in
//! memory.

use serde_json::{json, Value};

use super::{disks_of, fails_cleanly_at_every_call, stopped, with_instance, Env};

fn export_to(node: &str) -> Value {
    json!({"OP_ID": "OP_BACKUP_EXPORT", "instance_name": "inst1", "target_node": node,
           "mode": "local"})
}

fn import_from(node: Option<&str>, pnode: &str, name: &str) -> Value {
    let mut op = json!({
        "OP_ID": "OP_INSTANCE_CREATE", "instance_name": name, "mode": "import",
        "disk_template": "file", "pnode": pnode, "src_path": "inst1",
        "name_check": false, "ip_check": false, "start": false,
    });
    if let Some(n) = node {
        op["src_node"] = json!(n);
    }
    op
}

fn refused(r: (String, Value), what: &str) {
    assert_eq!(r.0, "error", "{}", r.1);
    assert!(r.1.to_string().contains(what), "{what}: {}", r.1);
}

/// The exports (and staging directories) of each node.
fn exports(e: &Env) -> Vec<String> {
    e.on_nodes()
        .into_iter()
        .flat_map(|(node, st)| st.exports.into_keys().map(move |x| format!("{node}:{x}")))
        .collect()
}

/// `inst1` stopped, exported to node2 and removed.
async fn exported_and_removed() -> Env {
    let e = stopped("file").await;
    e.must(export_to("node2")).await;
    e.must(json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": "inst1"}))
        .await;
    e
}

#[tokio::test]
async fn an_export_to_another_node_fails_cleanly_at_every_call() {
    let n = fails_cleanly_at_every_call(|| stopped("file"), export_to("node2")).await;
    assert!(n >= 7, "the export made {n} calls");
    fails_cleanly_at_every_call(|| stopped("file"), export_to("node1")).await;
}

#[tokio::test]
async fn an_export_is_finalized_on_the_target_and_nothing_else_is_left() {
    let e = stopped("file").await;
    let (status, result) = e.run(export_to("node2")).await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!([true, [true]]));
    assert_eq!(exports(&e), ["node2:inst1"]);
    let st = e.on_nodes();
    let files = &st["node2"].exports["inst1"];
    let disk = disks_of(&e)[0].2.clone();
    assert!(files.contains_key(&disk), "{files:?}");
    let ini = &files["config.ini"];
    assert!(ini.contains("[export]\nversion = 0\n"), "{ini}");
    assert!(ini.contains(&format!("disk0_dump = {disk}\n")), "{ini}");
    assert!(ini.contains("disk0_size = 1024\n"), "{ini}");
    // A new export to node1 replaces the one on node2.
    e.must(export_to("node1")).await;
    assert_eq!(exports(&e), ["node1:inst1"]);
    let pool = &e.master.config.read().cluster.tcpudp_port_pool;
    assert!(!pool.is_empty(), "the copy's port went back to the pool");
}

#[tokio::test]
async fn a_running_instance_is_exported_only_under_ganetis_rules() {
    let e = with_instance("file").await;
    refused(
        e.run(export_to("node2")).await,
        "you did not allow the instance to remain offline for a longer time through the \
         --long-sleep option",
    );
    let mut live = export_to("node2");
    live["shutdown"] = json!(false);
    refused(e.run(live.clone()).await, "you requested a live export");
    live["remove_instance"] = json!(true);
    refused(
        e.run(live).await,
        "Can not remove instance without shutting it down before",
    );
    refused(e.run(export_to("node9")).await, "node9");
    let mut remote = export_to("node2");
    remote["mode"] = json!("remote");
    refused(e.run(remote).await, "Remote export mode");
    assert_eq!(exports(&e), Vec::<String>::new());
    assert!(e.on_nodes()["node1"].running.contains_key("inst1"));
    // With --long-sleep it is stopped for the copy and started again.
    let mut long = export_to("node2");
    long["long_sleep"] = json!(true);
    let before = e.nodes.call_count();
    e.must(long.clone()).await;
    let calls = e.nodes.calls()[before..].to_vec();
    let shutdown = calls.iter().position(|c| c == "node1:instance_shutdown");
    let dump = calls.iter().position(|c| c == "node1:export_disk_dump");
    let start = calls.iter().position(|c| c == "node1:instance_start");
    assert!(shutdown < dump && dump < start, "{calls:?}");
    assert!(e.on_nodes()["node1"].running.contains_key("inst1"));
    // A failed export starts it again too.
    let finalize = calls
        .iter()
        .position(|c| c == "node2:finalize_export")
        .unwrap();
    let e = with_instance("file").await;
    e.nodes.fail_call(finalize + 1);
    let (status, result) = e.run(long).await;
    assert_eq!(status, "error", "{result}");
    assert!(e.on_nodes()["node1"].running.contains_key("inst1"));
    assert_eq!(exports(&e), Vec::<String>::new());
}

#[tokio::test]
async fn an_export_with_remove_instance_removes_it_after_the_export() {
    let e = with_instance("file").await;
    let mut op = export_to("node2");
    op["remove_instance"] = json!(true);
    e.must(op).await;
    assert!(e.instances().is_empty());
    assert_eq!(e.orphans(), Vec::<String>::new());
    assert_eq!(exports(&e), ["node2:inst1"]);
}

#[tokio::test]
async fn an_import_recreates_the_instance_from_its_export() {
    let e = exported_and_removed().await;
    let before = e.nodes.call_count();
    e.must(import_from(Some("node2"), "node1", "inst1")).await;
    let calls = e.nodes.calls()[before..].to_vec();
    assert!(
        calls.contains(&"node1:import_disk_dump".to_string()),
        "{calls:?}"
    );
    let inst = &e.instances()["inst1"];
    assert_eq!(inst["os"], "tiny");
    assert_eq!(inst["disks"][0]["size"], 1024);
    assert_eq!(inst["beparams"]["maxmem"], 256);
    assert_eq!(inst["primary_node"], "n1");
    // The dumps copied to node1 are gone; the export stays.
    assert_eq!(exports(&e), ["node2:inst1"]);
    assert_eq!(e.orphans(), Vec::<String>::new());
    // Without a source node, the export is looked for; under another
    // name (and a new MAC: inst1 keeps its own), the rename script runs.
    let before = e.nodes.call_count();
    let mut op = import_from(None, "node2", "inst2");
    op["nics"] = json!([{}]);
    e.must(op).await;
    let calls = e.nodes.calls()[before..].to_vec();
    assert!(
        calls.contains(&"node2:instance_run_rename".to_string()),
        "{calls:?}"
    );
}

#[tokio::test]
async fn an_import_fails_cleanly_at_every_call() {
    let n = fails_cleanly_at_every_call(
        exported_and_removed,
        import_from(Some("node2"), "node1", "inst1"),
    )
    .await;
    assert!(n >= 6, "the import made {n} calls");
    fails_cleanly_at_every_call(
        exported_and_removed,
        import_from(Some("node2"), "node2", "inst1"),
    )
    .await;
}

#[tokio::test]
async fn an_import_of_a_missing_export_changes_nothing() {
    let e = exported_and_removed().await;
    let start = (e.instances(), e.on_nodes());
    let mut op = import_from(Some("node1"), "node1", "inst1");
    refused(e.run(op.clone()).await, "No export or invalid export found");
    op["src_node"] = Value::Null;
    op["src_path"] = json!("nosuch");
    refused(
        e.run(op.clone()).await,
        "No export found for relative path nosuch",
    );
    op["src_path"] = json!("/etc/passwd");
    refused(e.run(op.clone()).await, "requires a source node option");
    op["src_node"] = json!("node2");
    refused(
        e.run(op).await,
        "imports only exports in the export directory",
    );
    assert_eq!((e.instances(), e.on_nodes()), start);
}

#[tokio::test]
async fn backup_remove_removes_every_export_of_the_instance() {
    let e = exported_and_removed().await;
    let start = e.on_nodes();
    // Nothing of that name: Ganeti's message, and nothing changes.
    let remove = |name: &str| json!({"OP_ID": "OP_BACKUP_REMOVE", "instance_name": name});
    e.must(remove("nosuch")).await;
    assert_eq!(e.on_nodes(), start);
    e.must(remove("inst1")).await;
    assert_eq!(exports(&e), Vec::<String>::new());
}

#[tokio::test]
async fn the_export_query_lists_each_export_by_node() {
    let e = exported_and_removed().await;
    let fields = vec!["node".to_string(), "export".to_string()];
    let resp = crate::query::query(&e.master, "export", &fields, &luxi::query::Filter::Empty)
        .await
        .unwrap();
    let rows = serde_json::to_value(&resp.data).unwrap();
    assert_eq!(rows, json!([[[0, "node2"], [0, "inst1"]]]));
}
