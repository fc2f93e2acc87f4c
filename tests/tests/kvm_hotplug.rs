//! Hotplug into a real QEMU (TCG, the test guest): `gnt-instance modify
//! --hotplug` adds a disk and a NIC to the running guest, a live
//! migration carries them to the target's QEMU at the same PCI slots, and
//! removing them unplugs them with nothing left behind (no tap, no
//! drive); a stopped instance is not hotplugged into.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use tests::guest::{add_guest, kvm_cluster_with, qmp, serial_socket, Serial, BOOT_LINE};
use tests::VCluster;

/// The devices on QEMU's PCI bus 0 that have an id: id to slot.
fn pci_ids(vc: &VCluster, node: usize, name: &str) -> BTreeMap<String, u64> {
    let buses = qmp(vc, node, name, "query-pci");
    buses[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some((d["qdev_id"].as_str()?.to_string(), d["slot"].as_u64()?)))
        .filter(|(id, _)| !id.is_empty())
        .collect()
}

/// The names of QEMU's block nodes.
fn block_nodes(vc: &VCluster, node: usize, name: &str) -> Vec<String> {
    qmp(vc, node, name, "query-named-block-nodes")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["node-name"].as_str().map(String::from))
        .collect()
}

/// The tap devices of instance `name` on node `node` (its runtime file).
fn taps(vc: &VCluster, node: usize, name: &str) -> Vec<String> {
    let f = vc
        .root(node)
        .join("var/run/ganeti/kvm-hypervisor/conf")
        .join(format!("{name}.runtime"));
    let rt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
    rt["taps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// The UUIDs of `field` (`disk.uuids`, `nic.uuids`) of `guest1`.
fn uuids(vc: &VCluster, field: &str) -> Vec<String> {
    vc.list("gnt-instance", field, &["guest1"])[0][0]
        .split(',')
        .map(|u| u.trim_matches(|c| "[]' ".contains(c)).to_string())
        .collect()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A bridge of the test's own, without addresses (no traffic leaves it),
/// deleted when dropped.
struct Bridge(&'static str);

impl Bridge {
    fn new(name: &'static str) -> Bridge {
        if link_exists(name) {
            let _ = Command::new("ip").args(["link", "del", name]).status();
        }
        let ok = Command::new("ip")
            .args(["link", "add", name, "type", "bridge"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot create bridge {name}");
        Bridge(name)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", self.0]).status();
    }
}

#[test]
fn disks_and_nics_are_hotplugged_migrated_and_unplugged() {
    let bridge = Bridge::new("gnthp150");
    let vc = kvm_cluster_with("0.150", 2, "");
    add_guest(&vc, "node1", "guest1");
    let mut serial = Serial::connect(&serial_socket(&vc, "guest1"));
    serial.counter();
    let before = pci_ids(&vc, 1, "guest1");

    // A disk: made on the node, then plugged into the running QEMU.
    let out = vc.ok(
        "gnt-instance",
        &["modify", "--hotplug", "--disk", "add:size=8M", "guest1"],
    );
    assert!(out.contains("disk/1 -> hotplug:done"), "{out}");
    let uuid = uuids(&vc, "disk.uuids")[1].clone();
    let id: String = uuid.rsplitn(3, '-').last().unwrap().to_string();
    let (drive, device) = (format!("disk-{id}"), format!("disk-{id}-dev"));
    let after_disk = pci_ids(&vc, 1, "guest1");
    assert!(
        after_disk.contains_key(&device),
        "{device} not in {after_disk:?}"
    );
    let nodes = block_nodes(&vc, 1, "guest1");
    assert!(nodes.contains(&drive), "{drive} not in {nodes:?}");

    // A NIC on the bridge: its tap joins the bridge.
    let out = vc.ok(
        "gnt-instance",
        &[
            "modify",
            "--hotplug",
            "--net",
            "add:link=gnthp150",
            "guest1",
        ],
    );
    assert!(out.contains("nic.0 -> hotplug:done"), "{out}");
    let tap = taps(&vc, 1, "guest1").pop().expect("a tap for the NIC");
    assert!(
        Path::new("/sys/class/net")
            .join(&tap)
            .join("master")
            .exists(),
        "tap {tap} is not on the bridge"
    );
    let nic_uuid = uuids(&vc, "nic.uuids")[0].clone();
    let nic = format!("nic-{}", nic_uuid.rsplitn(3, '-').last().unwrap());
    let plugged = pci_ids(&vc, 1, "guest1");
    assert!(plugged.contains_key(&nic), "{plugged:?}");

    // A live migration starts the target's QEMU with the same devices at
    // the same slots; the guest goes on.
    vc.ok(
        "gnt-instance",
        &["migrate", "-f", "--target-node", "node2", "guest1"],
    );
    let on_target = pci_ids(&vc, 2, "guest1");
    assert_eq!(on_target, plugged, "the devices moved to other slots");
    assert!(!link_exists(&tap), "the source's tap {tap} is left");
    let mut serial2 = Serial::connect(&serial_socket(&vc, "guest1"));
    serial2.counter();
    assert!(!serial2.seen.iter().any(|l| l == BOOT_LINE), "rebooted");
    drop(serial);

    // Unplugged again on the target: the guest ejects them, their drive
    // and tap go.
    let target_tap = taps(&vc, 2, "guest1").pop().unwrap();
    assert!(link_exists(&target_tap));
    let out = vc.ok(
        "gnt-instance",
        &["modify", "--hotplug", "--net", "remove", "guest1"],
    );
    assert!(out.contains("NIC/0 -> hotplug:done"), "{out}");
    assert!(!link_exists(&target_tap), "tap {target_tap} is left");
    let out = vc.ok(
        "gnt-instance",
        &["modify", "--hotplug", "--disk", "remove", "guest1"],
    );
    assert!(out.contains("disk/1 -> hotplug:done"), "{out}");
    let after = pci_ids(&vc, 2, "guest1");
    assert!(
        !after.contains_key(&device) && !after.contains_key(&nic),
        "{after:?}"
    );
    assert!(!block_nodes(&vc, 2, "guest1").contains(&drive));
    assert_eq!(
        vc.list(
            "gnt-instance",
            "disk_template,disk.count,nic.count",
            &["guest1"]
        ),
        vec![vec!["sharedfile", "1", "0"]]
    );
    assert_eq!(after.len(), before.len(), "{before:?} / {after:?}");
    serial2.counter();

    // A stopped instance: --hotplug is refused, --hotplug-if-possible
    // changes it for the next start.
    vc.ok("gnt-instance", &["shutdown", "guest1"]);
    let err = vc.fails(
        "gnt-instance",
        &["modify", "--hotplug", "--disk", "add:size=8M", "guest1"],
    );
    assert!(
        err.contains(
            "Hotplug is not possible: Hotplug is not supported: Instance is probably down"
        ),
        "{err}"
    );
    let out = vc.ok(
        "gnt-instance",
        &[
            "modify",
            "--hotplug-if-possible",
            "--disk",
            "add:size=8M",
            "guest1",
        ],
    );
    assert!(
        out.contains("Modification will take place without hotplugging."),
        "{out}"
    );
    assert_eq!(
        vc.list("gnt-instance", "disk.count", &["guest1"]),
        vec![vec!["2"]]
    );

    vc.ok("gnt-instance", &["remove", "-f", "guest1"]);
    drop(bridge);
}

#[test]
fn devices_of_the_start_keep_their_slots_after_one_is_unplugged() {
    let bridge = Bridge::new("gnthp151");
    let vc = kvm_cluster_with("0.151", 2, "");
    vc.add_instance(
        "node1",
        "guest1",
        &[
            "-t",
            "sharedfile",
            "--disk",
            "0:size=8M",
            "--disk",
            "1:size=8M",
            "--net",
            "0:link=gnthp151",
            "-B",
            "maxmem=128,minmem=128",
        ],
    );
    let mut serial = Serial::connect(&serial_socket(&vc, "guest1"));
    serial.counter();
    let booted = pci_ids(&vc, 1, "guest1");
    assert!(booted.contains_key("disk0-dev") && booted.contains_key("nic0"));

    // The first disk goes: the second and the NIC stay where they are,
    // here and on a migration target (which has one device fewer before
    // them on its command line).
    let out = vc.ok(
        "gnt-instance",
        &["modify", "--hotplug", "--disk", "0:remove", "guest1"],
    );
    assert!(out.contains("disk/0 -> hotplug:done"), "{out}");
    let mut left = booted.clone();
    left.remove("disk0-dev");
    assert_eq!(pci_ids(&vc, 1, "guest1"), left);
    vc.ok(
        "gnt-instance",
        &["migrate", "-f", "--target-node", "node2", "guest1"],
    );
    assert_eq!(pci_ids(&vc, 2, "guest1"), left);
    let mut serial2 = Serial::connect(&serial_socket(&vc, "guest1"));
    serial2.counter();
    assert!(!serial2.seen.iter().any(|l| l == BOOT_LINE), "rebooted");
    drop(serial);

    let tap = taps(&vc, 2, "guest1").pop().unwrap();
    vc.ok("gnt-instance", &["remove", "-f", "guest1"]);
    assert!(!link_exists(&tap), "tap {tap} is left");
    drop(bridge);
}
