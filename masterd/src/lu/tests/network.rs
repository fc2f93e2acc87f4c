//! `OP_NETWORK_*` and NICs in networks against fake nodes: Ganeti's checks
//! and error words, and pool addresses taken and given back.

use serde_json::{json, Value};

use super::{create, env, Env};

fn add(name: &str, subnet: &str, extra: Value) -> Value {
    let mut op = json!({"OP_ID": "OP_NETWORK_ADD", "network_name": name, "network": subnet});
    for (k, v) in extra.as_object().unwrap() {
        op[k] = v.clone();
    }
    op
}

fn connect(name: &str) -> Value {
    json!({"OP_ID": "OP_NETWORK_CONNECT", "network_name": name, "group_name": "default",
           "network_mode": "bridged", "network_link": "br0"})
}

/// `create` with one NIC in network `net` at `ip`.
fn create_in(name: &str, net: &str, ip: &str) -> Value {
    let mut op = create(name, "node1", "diskless", 0);
    op["nics"] = json!([{"network": net, "ip": ip}]);
    op
}

/// The usage map of network `name` (`X` taken, `.` free).
fn map(e: &Env, name: &str) -> String {
    let cfg = e.master.config.read();
    objects::network::AddressPool::of(cfg.network_by_name(name).unwrap())
        .unwrap()
        .map()
}

async fn fails_with(e: &Env, op: Value, words: &str) {
    let (status, result) = e.run(op.clone()).await;
    assert_eq!(status, "error", "{op}: {result}");
    assert!(result.to_string().contains(words), "{op}: {result}");
}

#[tokio::test]
async fn a_new_network_reserves_its_edges_gateway_and_the_nodes_addresses() {
    let e = env(2);
    e.must(add("net1", "127.0.0.0/29", json!({"gateway": "127.0.0.6"})))
        .await;
    // 0 and 7 (edges), 1 and 2 (the nodes), 6 (the gateway).
    assert_eq!(map(&e, "net1"), "XXX...XX");
    e.must(add(
        "quiet",
        "127.0.0.0/29",
        json!({"conflicts_check": false}),
    ))
    .await;
    assert_eq!(
        map(&e, "quiet"),
        "X......X",
        "overlapping networks are allowed"
    );
}

#[tokio::test]
async fn bad_networks_are_refused_with_ganetis_words() {
    let e = env(1);
    e.must(add("net1", "10.0.0.0/24", json!({}))).await;
    fails_with(
        &e,
        add("net1", "10.1.0.0/24", json!({})),
        "already exists as a network",
    )
    .await;
    fails_with(
        &e,
        add("n2", "10.0.0.0/24", json!({"gateway": "10.0.1.1"})),
        "10.0.0.0/24 does not contain 10.0.1.1",
    )
    .await;
    fails_with(
        &e,
        add("n2", "10.0.0.0/31", json!({})),
        "please specify at least a /30",
    )
    .await;
    fails_with(
        &e,
        add(
            "n2",
            "10.0.0.0/24",
            json!({"add_reserved_ips": ["10.0.9.9"]}),
        ),
        "Cannot reserve IP address '10.0.9.9'",
    )
    .await;
    fails_with(
        &e,
        add("n2", "10.0.0.0/24", json!({"mac_prefix": "aa:bb"})),
        "Invalid MAC address prefix",
    )
    .await;
    assert_eq!(e.master.config.read().networks.len(), 1);
}

#[tokio::test]
async fn pool_addresses_are_taken_by_creates_and_given_back_by_removes() {
    let e = env(1);
    e.must(add("net1", "192.0.2.0/29", json!({}))).await;
    fails_with(
        &e,
        create_in("i1", "net1", "pool"),
        "No netparams found for network net1",
    )
    .await;
    e.must(connect("net1")).await;
    e.must(create_in("i1", "net1", "pool")).await;
    e.must(create_in("i2", "net1", "192.0.2.5")).await;
    assert_eq!(map(&e, "net1"), "XX...X.X");
    let inst = &e.instances()["i1"];
    assert_eq!(inst["nics"][0]["ip"], "192.0.2.1");
    assert_eq!(inst["nics"][0]["nicparams"]["link"], "br0");
    fails_with(
        &e,
        create_in("i3", "net1", "192.0.2.5"),
        "IP address 192.0.2.5 already in use or does not belong to network net1",
    )
    .await;
    fails_with(
        &e,
        create_in("i3", "net1", "10.0.0.1"),
        "does not belong to network net1",
    )
    .await;
    let mut op = create("i3", "node1", "diskless", 0);
    op["nics"] = json!([{"ip": "192.0.2.3"}]);
    fails_with(
        &e,
        op,
        "belongs to network net1, but the target NIC does not",
    )
    .await;
    assert_eq!(map(&e, "net1"), "XX...X.X", "failed creates took nothing");
    e.must(json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": "i1"}))
        .await;
    assert_eq!(map(&e, "net1"), "X....X.X");
}

#[tokio::test]
async fn a_create_that_fails_on_a_node_gives_its_address_back() {
    let setup = || async {
        let e = env(1);
        e.must(add("net1", "192.0.2.0/29", json!({}))).await;
        e.must(connect("net1")).await;
        e
    };
    // With a file disk: node calls before the instance is recorded.
    let op = || {
        let mut op = create("i1", "node1", "file", 1);
        op["nics"] = json!([{"network": "net1", "ip": "pool"}]);
        op
    };
    let e = setup().await;
    let before = map(&e, "net1");
    let first = e.nodes.call_count();
    e.must(op()).await;
    let calls = e.nodes.call_count() - first;
    let mut undone = 0;
    for k in 1..=calls {
        let e = setup().await;
        e.nodes.fail_call(k);
        let (status, result) = e.run(op()).await;
        if e.instances().is_empty() {
            assert_eq!(status, "error", "failing call {k}: {result}");
            assert_eq!(map(&e, "net1"), before, "failing call {k}: {result}");
            undone += 1;
        } else {
            assert_eq!(map(&e, "net1"), "XX.....X", "failing call {k}: {result}");
        }
    }
    assert!(
        undone > 0,
        "no failed call undid the create ({calls} calls)"
    );
}

#[tokio::test]
async fn connected_or_used_networks_cannot_be_disconnected_or_removed() {
    let e = env(1);
    e.must(add("net1", "192.0.2.0/29", json!({}))).await;
    e.must(connect("net1")).await;
    e.must(create_in("i1", "net1", "pool")).await;
    let remove = json!({"OP_ID": "OP_NETWORK_REMOVE", "network_name": "net1"});
    let disconnect =
        json!({"OP_ID": "OP_NETWORK_DISCONNECT", "network_name": "net1", "group_name": "default"});
    fails_with(&e, remove.clone(), "Network still connected").await;
    fails_with(&e, disconnect.clone(), "Conflicting IP addresses found").await;
    // An overlapping network cannot join the group that uses its range.
    e.must(add("net2", "192.0.2.0/30", json!({}))).await;
    fails_with(
        &e,
        connect("net2"),
        "inst: nic0/192.0.2.1".replace("inst", "i1").as_str(),
    )
    .await;
    let mut quiet = connect("net2");
    quiet["conflicts_check"] = json!(false);
    e.must(quiet).await;
    e.must(json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": "i1"}))
        .await;
    e.must(disconnect).await;
    e.must(remove).await;
    assert!(e.master.config.read().network_by_name("net1").is_none());
}

#[tokio::test]
async fn a_gateway_used_by_an_instance_is_refused() {
    let e = env(1);
    e.must(add("net1", "192.0.2.0/29", json!({}))).await;
    e.must(connect("net1")).await;
    e.must(create_in("i1", "net1", "192.0.2.4")).await;
    let set = |extra: Value| {
        let mut op = json!({"OP_ID": "OP_NETWORK_SET_PARAMS", "network_name": "net1"});
        for (k, v) in extra.as_object().unwrap() {
            op[k] = v.clone();
        }
        op
    };
    fails_with(
        &e,
        set(json!({"gateway": "192.0.2.4"})),
        "Gateway IP address '192.0.2.4' is already reserved",
    )
    .await;
    fails_with(
        &e,
        set(json!({"gateway": "192.0.2.1", "add_reserved_ips": ["192.0.2.2"]})),
        "Cannot modify gateway and reserved ips at once",
    )
    .await;
    e.must(set(json!({"gateway": "192.0.2.1"}))).await;
    assert_eq!(map(&e, "net1"), "XX..X..X");
    e.must(set(json!({"gateway": "none", "add_reserved_ips": null})))
        .await;
    assert_eq!(map(&e, "net1"), "X...X..X");
}

#[tokio::test]
async fn nic_changes_take_and_give_back_addresses() {
    let e = env(1);
    e.must(add("net1", "192.0.2.0/29", json!({}))).await;
    e.must(connect("net1")).await;
    e.must(create_in("i1", "net1", "pool")).await;
    let modify = |nics: Value| json!({"OP_ID": "OP_INSTANCE_SET_PARAMS", "instance_name": "i1", "nics": nics});
    e.must(modify(json!([["add", {"network": "net1", "ip": "pool"}]])))
        .await;
    assert_eq!(map(&e, "net1"), "XXX....X");
    e.must(modify(json!([["modify", 0, {"ip": "192.0.2.6"}]])))
        .await;
    assert_eq!(map(&e, "net1"), "X.X...XX");
    fails_with(
        &e,
        modify(json!([["modify", 1, {"ip": "192.0.2.6"}]])),
        "IP 192.0.2.6 not available in network net1",
    )
    .await;
    fails_with(
        &e,
        modify(json!([["modify", 1, {"link": "br9"}]])),
        "Not allowed to change link or mode",
    )
    .await;
    e.must(modify(json!([["remove", 1, {}]]))).await;
    assert_eq!(map(&e, "net1"), "X.....XX");
}
