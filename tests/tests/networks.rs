//! IP networks on a virtual cluster: `gnt-network` add, connect, list,
//! info, modify, tags, disconnect and remove; instances with NICs in a
//! network (`ip=pool` and given addresses, taken from and given back to the
//! pool); and the bad input Ganeti refuses.
//!
//! Needs the workspace binaries built first (`cargo build --workspace
//! --bins`), like the other end-to-end tests.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::VCluster;

/// `name|free_count|reserved_count|inst_list|map` of network `net`, the
/// instances sorted (Ganeti lists them in UUID order).
fn usage(vc: &VCluster, net: &str) -> Vec<String> {
    let mut row = vc
        .list(
            "gnt-network",
            "name,free_count,reserved_count,inst_list,map",
            &[net],
        )
        .remove(0);
    let mut insts: Vec<&str> = row[3].split(',').collect();
    insts.sort();
    row[3] = insts.join(",");
    row
}

#[test]
fn networks_hand_out_addresses_to_instances_and_refuse_bad_input() {
    let vc = VCluster::up("0.100", 2);

    // A /28 with a gateway, one address reserved by hand, two tags. The
    // nodes' addresses (127.0.100.1 and .2) are in it: reserved too.
    let out = vc.ok(
        "gnt-network",
        &[
            "add",
            "--network=127.0.100.0/28",
            "--gateway=127.0.100.14",
            "--add-reserved-ips=127.0.100.13",
            "--tags=a,b",
            "net1",
        ],
    );
    assert!(
        out.contains("Reserved IP address of node 'node2' (127.0.100.2)"),
        "{out}"
    );
    assert_eq!(
        vc.list(
            "gnt-network",
            "name,network,gateway,mac_prefix,group_list,tags",
            &[]
        ),
        vec![vec![
            "net1",
            "127.0.100.0/28",
            "127.0.100.14",
            "-",
            "",
            "a,b"
        ]]
    );
    assert_eq!(
        usage(&vc, "net1"),
        vec!["net1", "10", "6", "", "XXX..........XXX"]
    );

    // Bad networks.
    let e = vc.fails("gnt-network", &["add", "--network=127.0.100.0/28", "net1"]);
    assert!(
        e.contains("Desired network name 'net1' already exists as a network"),
        "{e}"
    );
    let e = vc.fails(
        "gnt-network",
        &["add", "--network=10.1.0.0/24", "--gateway=10.2.0.1", "bad"],
    );
    assert!(e.contains("10.1.0.0/24 does not contain 10.2.0.1"), "{e}");
    let e = vc.fails("gnt-network", &["add", "--network=10.1.0.1/24", "bad"]);
    assert!(e.contains("host bits set"), "{e}");
    let e = vc.fails("gnt-network", &["add", "--network=10.0.0.0/8", "bad"]);
    assert!(e.contains("please specify at most a /16 network"), "{e}");
    let e = vc.fails("gnt-network", &["add", "bad"]);
    assert!(e.contains("The --network option must be given"), "{e}");
    assert_eq!(vc.list("gnt-network", "name", &[]), vec![vec!["net1"]]);

    // A NIC in a network the node's group is not connected to.
    let e = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-o",
            "tiny",
            "-n",
            "node1",
            "--no-name-check",
            "--no-ip-check",
            "-t",
            "diskless",
            "--net",
            "0:network=net1,ip=pool",
            "inst1",
        ],
    );
    assert!(
        e.contains("No netparams found for network net1. Probably not connected"),
        "{e}"
    );

    // Connected to the default group: NICs take its mode and link.
    vc.ok(
        "gnt-network",
        &["connect", "-N", "mode=bridged,link=br100", "net1"],
    );
    assert_eq!(
        vc.list("gnt-network", "group_list", &["net1"]),
        vec![vec!["default (bridged, br100, )"]]
    );
    vc.add_instance(
        "node1",
        "inst1",
        &["-t", "diskless", "--net", "0:network=net1,ip=pool"],
    );
    vc.add_instance(
        "node2",
        "inst2",
        &["-t", "diskless", "--net", "0:network=net1,ip=127.0.100.7"],
    );
    assert_eq!(
        vc.list(
            "gnt-instance",
            "name,nic.ips,nic.networks.names,nic.modes,nic.links,nic.network.name/0",
            &[]
        ),
        vec![
            vec![
                "inst1",
                "127.0.100.3",
                "['net1']",
                "bridged",
                "br100",
                "net1"
            ],
            vec![
                "inst2",
                "127.0.100.7",
                "['net1']",
                "bridged",
                "br100",
                "net1"
            ],
        ]
    );
    assert_eq!(
        usage(&vc, "net1"),
        vec!["net1", "8", "8", "inst1,inst2", "XXXX...X.....XXX"]
    );

    // Addresses in use, outside the network, or in a network the NIC is
    // not in.
    for (ip, net) in [("127.0.100.7", "net1"), ("10.9.9.9", "net1")] {
        let e = vc.fails(
            "gnt-instance",
            &[
                "add",
                "-o",
                "tiny",
                "-n",
                "node1",
                "--no-name-check",
                "--no-ip-check",
                "-t",
                "diskless",
                "--net",
                &format!("0:network={net},ip={ip}"),
                "inst3",
            ],
        );
        assert!(
            e.contains(&format!(
                "IP address {ip} already in use or does not belong to network net1"
            )),
            "{e}"
        );
    }
    let e = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-o",
            "tiny",
            "-n",
            "node1",
            "--no-name-check",
            "--no-ip-check",
            "-t",
            "diskless",
            "--net",
            "0:ip=127.0.100.9",
            "inst3",
        ],
    );
    assert!(
        e.contains(
            "The requested IP address (127.0.100.9) belongs to network net1, but the target \
             NIC does not."
        ),
        "{e}"
    );
    let e = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-o",
            "tiny",
            "-n",
            "node1",
            "--no-name-check",
            "--no-ip-check",
            "-t",
            "diskless",
            "--net",
            "0:ip=pool",
            "inst3",
        ],
    );
    assert!(
        e.contains("ip=pool, parameter network must be passed"),
        "{e}"
    );
    // The failed creates took no address.
    assert_eq!(usage(&vc, "net1")[1], "8");

    // An overlapping network may be added (as in Ganeti), but connecting it
    // to a group whose instances use addresses in its range is refused.
    vc.ok("gnt-network", &["add", "--network=127.0.100.0/29", "net2"]);
    let e = vc.fails(
        "gnt-network",
        &["connect", "-N", "link=br2", "net2", "default"],
    );
    assert!(
        e.contains("Conflicting IP addresses found")
            && e.contains("inst1: nic0/127.0.100.3")
            && e.contains("inst2: nic0/127.0.100.7"),
        "{e}"
    );
    vc.ok("gnt-network", &["remove", "net2"]);

    // A network in use can be neither disconnected nor removed.
    let e = vc.fails("gnt-network", &["disconnect", "net1", "default"]);
    assert!(e.contains("Conflicting IP addresses found"), "{e}");
    let e = vc.fails("gnt-network", &["remove", "net1"]);
    assert!(e.contains("Network still connected"), "{e}");

    // NIC changes: a second NIC from the pool, a new address for the first.
    vc.ok(
        "gnt-instance",
        &[
            "modify",
            "--net",
            "add:network=net1,ip=pool",
            "--net",
            "0:ip=127.0.100.5",
            "inst1",
        ],
    );
    assert_eq!(
        vc.list("gnt-instance", "nic.ips", &["inst1"]),
        vec![vec!["127.0.100.5,127.0.100.4"]]
    );
    let e = vc.fails(
        "gnt-instance",
        &["modify", "--net", "1:ip=127.0.100.7", "inst1"],
    );
    assert!(
        e.contains("IP 127.0.100.7 not available in network net1"),
        "{e}"
    );
    vc.ok("gnt-instance", &["modify", "--net", "1:remove", "inst1"]);
    assert_eq!(
        usage(&vc, "net1"),
        vec!["net1", "8", "8", "inst1,inst2", "XXX..X.X.....XXX"]
    );

    // Network changes: reservations by hand, a gateway and reservations at
    // once is refused.
    vc.ok(
        "gnt-network",
        &[
            "modify",
            "--add-reserved-ips=127.0.100.10",
            "--remove-reserved-ips=127.0.100.13",
            "--mac-prefix=aa:00:01",
            "net1",
        ],
    );
    assert_eq!(
        vc.list("gnt-network", "external_reservations,mac_prefix", &["net1"]),
        vec![vec![
            "127.0.100.0, 127.0.100.1, 127.0.100.2, 127.0.100.10, 127.0.100.14, 127.0.100.15",
            "aa:00:01"
        ]]
    );
    let e = vc.fails(
        "gnt-network",
        &[
            "modify",
            "--gateway=127.0.100.1",
            "--add-reserved-ips=127.0.100.9",
            "net1",
        ],
    );
    assert!(
        e.contains("Cannot modify gateway and reserved ips at once"),
        "{e}"
    );
    // NICs added now take the network's MAC prefix.
    vc.ok(
        "gnt-instance",
        &["modify", "--net", "add:network=net1", "inst2"],
    );
    let macs = vc.list("gnt-instance", "nic.mac/1", &["inst2"]);
    assert!(macs[0][0].starts_with("aa:00:01:"), "{macs:?}");

    // Tags.
    vc.ok("gnt-network", &["add-tags", "net1", "c"]);
    vc.ok("gnt-network", &["remove-tags", "net1", "a"]);
    assert_eq!(vc.ok("gnt-network", &["list-tags", "net1"]), "b\nc\n");

    // The details.
    let info = vc.ok("gnt-network", &["info", "net1"]);
    for line in [
        "Network name: net1",
        "  Subnet: 127.0.100.0/28",
        "  Gateway: 127.0.100.14",
        "  Mac Prefix: aa:00:01",
        "  Size: 16",
        "  Free: 8 (50.00%)",
        "        0 XXX..X.X..X...XX",
        "    default (mode:bridged link:br100 vlan:)",
        "  used by 2 instances:",
        "    inst1: 0:127.0.100.5",
        "    inst2: 0:127.0.100.7",
    ] {
        assert!(info.contains(line), "no {line:?} in:\n{info}");
    }

    // Removing the instances gives their addresses back; then the network
    // can go.
    vc.ok("gnt-instance", &["remove", "-f", "inst1"]);
    vc.ok("gnt-instance", &["remove", "-f", "inst2"]);
    assert_eq!(
        usage(&vc, "net1"),
        vec!["net1", "10", "6", "", "XXX.......X...XX"]
    );
    vc.ok("gnt-network", &["disconnect", "net1"]);
    vc.ok("gnt-network", &["remove", "net1"]);
    assert!(vc.list("gnt-network", "name", &[]).is_empty());
}
