//! `OP_CLUSTER_RENEW_CRYPTO`, `OP_CLUSTER_RENAME`, `OP_CLUSTER_POST_INIT`,
//! `OP_RESTRICTED_COMMAND` and `OP_EXT_STORAGE_DIAGNOSE` against fake
//! nodes.

use serde_json::json;

use super::env;

/// Gives the fake master the certificate files a real one has.
fn master_certs(e: &super::Env) -> String {
    let ca = rpc::tls::create_cluster_ca("cluster.example.com").unwrap();
    rpc::tls::write_cluster_ca(&e.master.paths, &ca, true).unwrap();
    let pem = rpc::tls::create_node_cert(&ca, "node1", "127.0.0.1".parse().unwrap()).unwrap();
    rpc::tls::write_node_cert(&e.master.paths, &pem).unwrap();
    ca.cert_pem
}

#[tokio::test]
async fn renew_crypto_stages_everywhere_then_activates_the_master_last() {
    let e = env(3);
    let old_ca = master_certs(&e);
    e.must(json!({"OP_ID": "OP_CLUSTER_RENEW_CRYPTO", "node_certificates": true}))
        .await;
    assert_eq!(
        e.nodes.calls(),
        vec![
            "node2:crypto_stage",
            "node3:crypto_stage",
            "node1:crypto_stage",
            "node2:crypto_activate",
            "node3:crypto_activate",
            "node1:crypto_activate",
        ]
    );
    let paths = &e.master.paths;
    let new_ca = std::fs::read_to_string(paths.cluster_ca_cert()).unwrap();
    assert_ne!(new_ca, old_ca);
    // The master's files make a working pair with the new CA's key.
    rpc::tls::client_config(paths).unwrap();
    let ca = rpc::tls::read_cluster_ca(paths).unwrap();
    rpc::tls::create_node_cert(&ca, "node4", "127.0.0.4".parse().unwrap()).unwrap();
}

#[tokio::test]
async fn renew_crypto_that_cannot_stage_on_a_node_changes_nothing() {
    let e = env(3);
    let old_ca = master_certs(&e);
    // The second stage (node3) fails.
    e.nodes.fail_call(2);
    let (status, result) = e
        .run(json!({"OP_ID": "OP_CLUSTER_RENEW_CRYPTO", "node_certificates": true}))
        .await;
    assert_eq!(status, "error");
    assert!(
        result.to_string().contains("nothing was changed"),
        "{result}"
    );
    assert!(result.to_string().contains("node3"), "{result}");
    // What was staged is dropped; nothing was activated.
    assert_eq!(
        e.nodes.calls(),
        vec![
            "node2:crypto_stage",
            "node3:crypto_stage",
            "node1:crypto_stage",
            "node2:crypto_abort",
            "node1:crypto_abort",
        ]
    );
    let ca = std::fs::read_to_string(e.master.paths.cluster_ca_cert()).unwrap();
    assert_eq!(ca, old_ca);
}

#[tokio::test]
async fn renew_crypto_skips_offline_nodes_and_does_nothing_unasked() {
    let e = env(2);
    master_certs(&e);
    e.must(json!({"OP_ID": "OP_CLUSTER_RENEW_CRYPTO"})).await;
    assert!(e.nodes.calls().is_empty());
    let mut n2 = e
        .master
        .config
        .read()
        .node_by_name("node2")
        .unwrap()
        .clone();
    n2.offline = true;
    let mut ch = crate::config::Changes::new();
    ch.node(n2);
    e.master.config.commit(ch).unwrap();
    e.must(json!({"OP_ID": "OP_CLUSTER_RENEW_CRYPTO", "node_certificates": true}))
        .await;
    assert_eq!(
        e.nodes.calls(),
        vec!["node1:crypto_stage", "node1:crypto_activate"]
    );
}

#[tokio::test]
async fn restricted_command_answers_per_node_in_the_order_named() {
    let e = env(3);
    let (status, result) = e
        .run(json!({"OP_ID": "OP_RESTRICTED_COMMAND", "command": "hello",
                    "nodes": ["node3", "node1"]}))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([[true, "hello from node3\n"], [true, "hello from node1\n"]])
    );
    let (_, result) = e
        .run(json!({"OP_ID": "OP_RESTRICTED_COMMAND", "command": "other",
                    "nodes": ["node2"]}))
        .await;
    assert_eq!(
        result,
        json!([[
            false,
            "Command 'other' on node 'node2' failed: Executing command 'other' failed"
        ]])
    );
    let (status, result) = e
        .run(json!({"OP_ID": "OP_RESTRICTED_COMMAND", "command": "hello",
                    "nodes": ["nosuch"]}))
        .await;
    assert_eq!(status, "error");
    assert!(result.to_string().contains("nosuch"), "{result}");
}

#[tokio::test]
async fn extstorage_diagnose_merges_the_nodes_answers() {
    let e = env(2);
    let (status, result) = e
        .run(json!({"OP_ID": "OP_EXT_STORAGE_DIAGNOSE",
                    "output_fields": ["name", "nodegroup_status", "parameters"]}))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(
        result,
        json!([
            ["flaky", {"default": false}, [["pool", "The pool"]]],
            ["good", {"default": true}, [["pool", "The pool"]]]
        ])
    );
    let (status, result) = e
        .run(json!({"OP_ID": "OP_EXT_STORAGE_DIAGNOSE", "output_fields": ["bogus"]}))
        .await;
    assert_eq!(status, "error");
    assert!(result
        .to_string()
        .contains("Unknown output fields selected: bogus"));
}

#[tokio::test]
async fn rename_resolves_the_new_name_and_updates_the_cluster() {
    let e = env(2);
    let hosts = e.master.paths.root().join("etc/hosts");
    std::fs::create_dir_all(hosts.parent().unwrap()).unwrap();
    std::fs::write(
        &hosts,
        "127.0.0.1 cluster.example.com\n127.1.2.3 new.example.com\n",
    )
    .unwrap();
    let (status, result) = e
        .run(json!({"OP_ID": "OP_CLUSTER_RENAME", "name": "cluster.example.com"}))
        .await;
    assert_eq!(status, "error");
    assert!(
        result
            .to_string()
            .contains("Neither the name nor the IP address"),
        "{result}"
    );
    let (status, result) = e
        .run(json!({"OP_ID": "OP_CLUSTER_RENAME", "name": "new.example.com"}))
        .await;
    assert_eq!(status, "success", "{result}");
    assert_eq!(result, json!("new.example.com"));
    // The master IP went down before the change and up after it.
    let ip_calls: Vec<String> = e
        .nodes
        .calls()
        .into_iter()
        .filter(|c| c.contains("master_ip"))
        .collect();
    assert_eq!(
        ip_calls,
        [
            "node1:node_deactivate_master_ip",
            "node1:node_activate_master_ip"
        ]
    );
    let c = e.master.config.read().cluster.clone();
    assert_eq!(
        (c.cluster_name.as_str(), c.master_ip.as_str()),
        ("new.example.com", "127.1.2.3")
    );
    assert_eq!(
        std::fs::read_to_string(e.master.paths.ssconf("cluster_name"))
            .unwrap()
            .trim_end(),
        "new.example.com"
    );
}

#[tokio::test]
async fn post_init_runs_the_hooks_on_the_master_only() {
    let e = env(3);
    let (status, result) = e.run(json!({"OP_ID": "OP_CLUSTER_POST_INIT"})).await;
    assert_eq!((status.as_str(), result), ("success", json!(true)));
    assert_eq!(e.nodes.calls(), vec!["node1:hooks_runner"]);
}
